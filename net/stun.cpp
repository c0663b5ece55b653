#include "net/stun.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "net/byte_io.hpp"

namespace p2p::wire::stun {
namespace {

// The length field counts attribute bytes in a multiple of 4: the largest message.
constexpr std::size_t kMaxMessageSize = kHeaderSize + 0xFFFC;

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The 16 bytes an XOR-MAPPED-ADDRESS is xored with: cookie, then the transaction id.
std::array<std::uint8_t, 16> xor_pad(const TransactionId& id) {
  std::array<std::uint8_t, 16> pad{0x21, 0x12, 0xA4, 0x42};
  std::copy(id.begin(), id.end(), pad.begin() + 4);
  return pad;
}

// MAPPED-ADDRESS layout: [reserved][family][port u16][4 or 16 address bytes].
Expected<Endpoint, ParseError> decode_address(std::span<const std::uint8_t> v, bool xored,
                                              const TransactionId& id) {
  ByteReader r(v);
  r.skip(1);
  const auto family = r.u8();
  const auto port = r.u16();
  if (!port) return fail(ParseError::kBadAttributeLength);
  if (*family != 0x01 && *family != 0x02) return fail(ParseError::kBadAddressFamily);
  if (r.remaining() != (*family == 0x01 ? 4u : 16u)) return fail(ParseError::kBadAttributeLength);
  Endpoint e;
  e.port = xored ? static_cast<std::uint16_t>(*port ^ 0x2112) : *port;
  if (*family == 0x01) {
    const std::uint32_t a = *r.u32();
    e.address = Ipv4{xored ? a ^ kMagicCookie : a};
  } else {
    const auto pad = xor_pad(id);
    Ipv6 a{*r.array<16>()};
    for (std::size_t i = 0; i < 16; ++i) a.bytes[i] ^= xored ? pad[i] : 0;
    e.address = a;
  }
  return e;
}

void put_attr_header(ByteWriter& w, Attr type, std::size_t len) {
  w.u16(static_cast<std::uint16_t>(type));
  w.u16(static_cast<std::uint16_t>(len));
}

void put_address(ByteWriter& w, Attr type, const Endpoint& e, bool xored, const TransactionId& id) {
  const bool v4 = e.is_v4();
  put_attr_header(w, type, v4 ? 8 : 20);
  w.u8(0);
  w.u8(v4 ? 0x01 : 0x02);
  w.u16(xored ? static_cast<std::uint16_t>(e.port ^ 0x2112) : e.port);
  if (v4) {
    const std::uint32_t a = std::get<Ipv4>(e.address).value;
    w.u32(xored ? a ^ kMagicCookie : a);
  } else {
    const auto pad = xor_pad(id);
    auto b = std::get<Ipv6>(e.address).bytes;
    for (std::size_t i = 0; i < 16; ++i) b[i] ^= xored ? pad[i] : 0;
    w.bytes(b);
  }
}

void put_string(ByteWriter& w, Attr type, std::string_view s, std::size_t max) {
  s = s.substr(0, max);
  put_attr_header(w, type, s.size());
  w.bytes(as_bytes(s));
  w.align(4);
}

// Decodes one known attribute into m (first occurrence wins). Returns false for unknown types.
Expected<bool, ParseError> decode_known(std::uint16_t type, std::span<const std::uint8_t> v,
                                        Message& m) {
  ByteReader r(v);
  auto address = [&](std::optional<Endpoint>& field, bool xored) -> Expected<bool, ParseError> {
    auto e = decode_address(v, xored, m.transaction_id);
    if (!e) return fail(e.error());
    if (!field) field = *e;
    return true;
  };
  switch (static_cast<Attr>(type)) {
    case Attr::kMappedAddress:
      return address(m.mapped_address, false);
    case Attr::kXorMappedAddress:
      return address(m.xor_mapped_address, true);
    case Attr::kResponseOrigin:
      return address(m.response_origin, false);
    case Attr::kOtherAddress:
      return address(m.other_address, false);
    case Attr::kChangeRequest: {
      const auto flags = r.u32();
      if (!flags || !r.done()) return fail(ParseError::kBadAttributeLength);
      if (!m.change_request)
        m.change_request = ChangeRequest{(*flags & 0x04) != 0, (*flags & 0x02) != 0};
      return true;
    }
    case Attr::kResponsePort:
      // RFC 5780 7.5: a 16-bit port "followed by 2 bytes of padding"; senders differ on whether
      // those two bytes are counted in the length, so both 2 and 4 are accepted.
      if (v.size() != 2 && v.size() != 4) return fail(ParseError::kBadAttributeLength);
      if (!m.response_port) m.response_port = r.u16();
      return true;
    case Attr::kSoftware:
      if (v.size() > kMaxSoftwareBytes) return fail(ParseError::kTooLong);
      if (!m.software) m.software = std::string(v.begin(), v.end());
      return true;
    case Attr::kErrorCode: {
      r.skip(2);
      const auto cls = r.u8();
      const auto number = r.u8();
      if (!number) return fail(ParseError::kBadAttributeLength);
      const auto reason = r.rest();
      if (reason.size() > kMaxReasonBytes) return fail(ParseError::kTooLong);
      const unsigned hundreds = *cls & 0x07;
      if (hundreds < 3 || hundreds > 6 || *number > 99) return fail(ParseError::kBadErrorCode);
      if (!m.error_code) {
        m.error_code = ErrorCode{static_cast<std::uint16_t>(hundreds * 100 + *number),
                                 std::string(reason.begin(), reason.end())};
      }
      return true;
    }
    case Attr::kUnknownAttributes:
      if (v.size() % 2 != 0) return fail(ParseError::kBadAttributeLength);
      if (m.unknown_attributes.empty()) {
        m.unknown_attributes.reserve(v.size() / 2);
        while (auto t = r.u16()) m.unknown_attributes.push_back(*t);
      }
      return true;
    case Attr::kFingerprint:
      return true;  // verified by the caller, which knows where the message starts
  }
  return false;
}

}  // namespace

std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::kTooShort:
      return "shorter than a STUN header";
    case ParseError::kNotStun:
      return "first two bits are not 00";
    case ParseError::kBadCookie:
      return "no STUN magic cookie";
    case ParseError::kBadLength:
      return "length field does not match the datagram";
    case ParseError::kTruncatedAttribute:
      return "attribute runs past the end of the message";
    case ParseError::kBadAttributeLength:
      return "attribute has the wrong length";
    case ParseError::kBadAddressFamily:
      return "unknown address family";
    case ParseError::kBadErrorCode:
      return "ERROR-CODE out of range";
    case ParseError::kTooLong:
      return "SOFTWARE or reason phrase too long";
    case ParseError::kBadFingerprint:
      return "FINGERPRINT does not match";
    case ParseError::kAfterFingerprint:
      return "attribute after FINGERPRINT";
  }
  return "unknown STUN parse error";
}

std::uint32_t crc32(std::span<const std::uint8_t> bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : bytes) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool is_stun(std::span<const std::uint8_t> d) {
  ByteReader r(d);
  const auto type = r.u16();
  const auto len = r.u16();
  const auto cookie = r.u32();
  return d.size() >= kHeaderSize && (*type & 0xC000) == 0 && *cookie == kMagicCookie &&
         *len % 4 == 0 && *len == d.size() - kHeaderSize;
}

Expected<Message, ParseError> parse(std::span<const std::uint8_t> d) {
  ByteReader r(d);
  const auto type = r.u16();
  const auto len = r.u16();
  const auto cookie = r.u32();
  const auto id = r.array<12>();
  if (!id) return fail(ParseError::kTooShort);
  if ((*type & 0xC000) != 0) return fail(ParseError::kNotStun);
  if (*cookie != kMagicCookie) return fail(ParseError::kBadCookie);
  if (*len % 4 != 0 || *len != r.remaining()) return fail(ParseError::kBadLength);

  // Type: M11..M7 C1 M6..M4 C0 M3..M0 in the low 14 bits.
  Message m;
  m.method = static_cast<std::uint16_t>((*type & 0x000F) | ((*type & 0x00E0) >> 1) |
                                        ((*type & 0x3E00) >> 2));
  m.cls = static_cast<MessageClass>(((*type >> 4) & 0x1) | ((*type >> 7) & 0x2));
  m.transaction_id = *id;

  while (!r.done()) {
    if (m.fingerprint) return fail(ParseError::kAfterFingerprint);
    const std::size_t start = r.position();
    const auto attr = r.u16();
    const auto alen = r.u16();
    const auto value = alen ? r.bytes(*alen) : std::nullopt;
    if (!value || !r.align(4)) return fail(ParseError::kTruncatedAttribute);
    if (*attr == static_cast<std::uint16_t>(Attr::kFingerprint)) {
      const auto crc = ByteReader(*value).u32();
      if (*alen != 4) return fail(ParseError::kBadAttributeLength);
      if ((crc32(d.first(start)) ^ kFingerprintXor) != *crc)
        return fail(ParseError::kBadFingerprint);
      m.fingerprint = true;
    }
    auto known = decode_known(*attr, *value, m);
    if (!known) return fail(known.error());
    if (!*known && *attr < 0x8000 &&
        std::find(m.unknown_required.begin(), m.unknown_required.end(), *attr) ==
            m.unknown_required.end() &&
        m.unknown_required.size() < kMaxUnknownRequired) {
      m.unknown_required.push_back(*attr);
    }
  }
  return m;
}

std::vector<std::uint8_t> encode(const Message& m) {
  std::vector<std::uint8_t> out;
  out.reserve(128);
  ByteWriter w(out, kMaxMessageSize);
  const auto cls = static_cast<std::uint16_t>(m.cls);
  const std::uint16_t method = m.method & 0x0FFF;
  const auto type =
      static_cast<std::uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                                 ((method & 0x0F80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7));
  w.u16(type);
  w.u16(0);  // the length, patched below
  w.u32(kMagicCookie);
  w.bytes(m.transaction_id);

  const auto& id = m.transaction_id;
  if (m.xor_mapped_address)
    put_address(w, Attr::kXorMappedAddress, *m.xor_mapped_address, true, id);
  if (m.mapped_address) put_address(w, Attr::kMappedAddress, *m.mapped_address, false, id);
  if (m.change_request) {
    put_attr_header(w, Attr::kChangeRequest, 4);
    w.u32((m.change_request->change_ip ? 0x04u : 0u) |
          (m.change_request->change_port ? 0x02u : 0u));
  }
  if (m.response_port) {
    put_attr_header(w, Attr::kResponsePort, 2);
    w.u16(*m.response_port);
    w.align(4);
  }
  if (m.response_origin) put_address(w, Attr::kResponseOrigin, *m.response_origin, false, id);
  if (m.other_address) put_address(w, Attr::kOtherAddress, *m.other_address, false, id);
  if (m.error_code) {
    const std::string_view reason =
        std::string_view(m.error_code->reason).substr(0, kMaxReasonBytes);
    put_attr_header(w, Attr::kErrorCode, 4 + reason.size());
    w.u16(0);
    w.u8(static_cast<std::uint8_t>((m.error_code->code / 100) & 0x07));
    w.u8(static_cast<std::uint8_t>(m.error_code->code % 100));
    w.bytes(as_bytes(reason));
    w.align(4);
  }
  if (!m.unknown_attributes.empty()) {
    // A list too long for the u16 length cannot fit the message either: the writer fails.
    put_attr_header(w, Attr::kUnknownAttributes, 2 * m.unknown_attributes.size());
    for (const std::uint16_t t : m.unknown_attributes) w.u16(t);
    w.align(4);
  }
  if (m.software) put_string(w, Attr::kSoftware, *m.software, kMaxSoftwareBytes);

  if (m.fingerprint) {
    // The length field must already count the 8-byte FINGERPRINT when the CRC is taken.
    w.patch_u16(2, static_cast<std::uint16_t>(w.size() + 8 - kHeaderSize));
    const std::uint32_t crc = crc32(out) ^ kFingerprintXor;
    put_attr_header(w, Attr::kFingerprint, 4);
    w.u32(crc);
  }
  w.patch_u16(2, static_cast<std::uint16_t>(w.size() - kHeaderSize));
  if (!w.ok()) {
    std::fprintf(stderr, "fatal: STUN message longer than %zu bytes\n", kMaxMessageSize);
    std::abort();
  }
  return out;
}

Message binding_request(const TransactionId& id, std::optional<ChangeRequest> change) {
  Message m;
  m.cls = MessageClass::kRequest;
  m.method = kMethodBinding;
  m.transaction_id = id;
  m.change_request = change;
  return m;
}

// ---- Server --------------------------------------------------------------------------------

Expected<Server, std::string> Server::create(ServerConfig config) {
  if (config.primary.port == 0) return fail(std::string("STUN server needs a primary port"));
  if (!config.alternate_address) {
    if (config.alternate_port != 0) {
      return fail(std::string("alternate STUN port given without an alternate address"));
    }
    return Server(std::move(config));
  }
  if (config.alternate_address->index() != config.primary.address.index()) {
    return fail(std::string("alternate address is not of the primary address's family"));
  }
  if (*config.alternate_address == config.primary.address) {
    return fail(std::string("alternate address equals the primary address"));
  }
  if (config.alternate_port == 0 || config.alternate_port == config.primary.port) {
    return fail(
        std::string("an alternate address needs an alternate port distinct from the primary"));
  }
  return Server(std::move(config));
}

Endpoint Server::endpoint(ServerSocket s) const {
  const auto bits = static_cast<unsigned>(s);
  Endpoint e = config_.primary;
  if ((bits & 2) && config_.alternate_address) e.address = *config_.alternate_address;
  if ((bits & 1) && config_.alternate_address) e.port = config_.alternate_port;
  return e;
}

std::optional<ServerReply> Server::on_request(ServerSocket received_on, const Endpoint& source,
                                              std::span<const std::uint8_t> datagram) const {
  if (received_on != ServerSocket::kPrimary && !has_alternate()) return std::nullopt;
  auto request = parse(datagram);
  if (!request || request->cls != MessageClass::kRequest || request->method != kMethodBinding) {
    return std::nullopt;
  }

  Message r;
  r.method = kMethodBinding;
  r.transaction_id = request->transaction_id;
  if (!config_.software.empty()) r.software = config_.software;
  r.fingerprint = true;
  ServerReply reply{{}, received_on, source};

  auto unknown = request->unknown_required;
  if (request->change_request && !has_alternate()) {
    unknown.push_back(static_cast<std::uint16_t>(Attr::kChangeRequest));
  }
  if (!unknown.empty()) {
    r.cls = MessageClass::kError;
    r.error_code = ErrorCode{420, "Unknown Attribute"};
    r.unknown_attributes = std::move(unknown);
    reply.bytes = encode(r);
    return reply;
  }
  if (request->response_port) {
    if (*request->response_port == 0) {
      r.cls = MessageClass::kError;
      r.error_code = ErrorCode{400, "Bad Request"};
      reply.bytes = encode(r);
      return reply;
    }
    reply.to.port = *request->response_port;
  }

  // RFC 5780 table 1: flip the address bit for "change IP", the port bit for "change port".
  unsigned from = static_cast<unsigned>(received_on);
  if (request->change_request) {
    if (request->change_request->change_ip) from ^= 2;
    if (request->change_request->change_port) from ^= 1;
  }
  reply.from = static_cast<ServerSocket>(from);
  r.cls = MessageClass::kSuccess;
  r.xor_mapped_address = source;
  r.mapped_address = source;
  r.response_origin = endpoint(reply.from);
  if (has_alternate())
    r.other_address = endpoint(static_cast<ServerSocket>(static_cast<unsigned>(received_on) ^ 3));
  reply.bytes = encode(r);
  return reply;
}

}  // namespace p2p::wire::stun
