#include "net/pcp.hpp"

#include "net/byte_io.hpp"

namespace p2p::wire {
namespace {

// IPv4 travels IPv4-mapped (::ffff:a.b.c.d) in PCP's 16-byte address fields.
void put_address(ByteWriter& w, const IpAddress& a) {
  if (const auto* v4 = std::get_if<Ipv4>(&a)) {
    for (int i = 0; i < 10; ++i) w.u8(0);
    w.u16(0xffff);
    w.u32(v4->value);
    return;
  }
  w.bytes(std::get<Ipv6>(a).bytes);
}

std::optional<IpAddress> get_address(ByteReader& r) {
  auto b = r.bytes(16);
  if (!b) return std::nullopt;
  bool mapped = true;
  for (int i = 0; i < 10; ++i) mapped = mapped && (*b)[i] == 0;
  mapped = mapped && (*b)[10] == 0xff && (*b)[11] == 0xff;
  if (mapped) {
    return Ipv4{static_cast<std::uint32_t>((*b)[12]) << 24 |
                static_cast<std::uint32_t>((*b)[13]) << 16 |
                static_cast<std::uint32_t>((*b)[14]) << 8 | (*b)[15]};
  }
  Ipv6 v6;
  std::copy(b->begin(), b->end(), v6.bytes.begin());
  return v6;
}

}  // namespace

std::vector<std::uint8_t> encode_pcp_map_request(const PcpMapRequest& r) {
  std::vector<std::uint8_t> out;
  out.reserve(kPcpMapMessageSize);
  ByteWriter w(out, kPcpMapMessageSize);
  w.u8(kPcpVersion);
  w.u8(kPcpOpcodeMap);
  w.u16(0);
  w.u32(r.lifetime);
  put_address(w, r.client);
  w.bytes(r.nonce);
  w.u8(kPcpProtocolUdp);
  w.u8(0);
  w.u16(0);
  w.u16(r.internal_port);
  w.u16(r.suggested_port);
  // No suggestion: the all-zero IPv4-mapped address (::ffff:0.0.0.0) for an IPv4 client.
  if (std::holds_alternative<Ipv4>(r.client)) {
    put_address(w, Ipv4{});
  } else {
    put_address(w, Ipv6{});
  }
  return out;
}

std::optional<PcpMapResponse> decode_pcp_map_response(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kPcpMapMessageSize || datagram.size() > kPcpMaxMessage ||
      datagram.size() % 4 != 0)
    return std::nullopt;
  ByteReader r(datagram);
  auto version = r.u8();
  auto opcode = r.u8();
  auto reserved = r.u8();
  auto result = r.u8();
  auto lifetime = r.u32();
  auto epoch = r.u32();
  auto skipped = r.bytes(12);
  if (!version || !opcode || !reserved || !result || !lifetime || !epoch || !skipped) {
    return std::nullopt;
  }
  if (*version != kPcpVersion || *opcode != (0x80 | kPcpOpcodeMap)) return std::nullopt;
  PcpMapResponse m;
  m.result = *result;
  m.lifetime = *lifetime;
  m.epoch = *epoch;
  auto nonce = r.bytes(12);
  auto protocol = r.u8();
  auto pad = r.bytes(3);
  auto internal = r.u16();
  auto external_port = r.u16();
  auto external = r.ok() ? get_address(r) : std::nullopt;
  if (!nonce || !protocol || !pad || !internal || !external_port || !external) {
    return std::nullopt;
  }
  std::copy(nonce->begin(), nonce->end(), m.nonce.begin());
  m.protocol = *protocol;
  m.internal_port = *internal;
  m.external = Endpoint{*external, *external_port};
  return m;  // options (if any) are not needed for MAP and are ignored
}

const char* pcp_result_name(std::uint8_t result) {
  static constexpr const char* kNames[] = {
      "SUCCESS",          "UNSUPP_VERSION",        "NOT_AUTHORIZED",   "MALFORMED_REQUEST",
      "UNSUPP_OPCODE",    "UNSUPP_OPTION",         "MALFORMED_OPTION", "NETWORK_FAILURE",
      "NO_RESOURCES",     "UNSUPP_PROTOCOL",       "USER_EX_QUOTA",    "CANNOT_PROVIDE_EXTERNAL",
      "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS"};
  return result < std::size(kNames) ? kNames[result] : "unknown result";
}

}  // namespace p2p::wire
