#include "net/packet.hpp"

#include "net/stun.hpp"

#include <cstring>

#include "net/byte_io.hpp"

namespace p2p::wire {
namespace {

constexpr std::size_t kInitHeader = 1 + 1 + 4;
constexpr std::size_t kRespHeader = 4 + 4 + 4;
constexpr std::size_t kFinalHeader = 4 + 4;

}  // namespace

DatagramKind classify(std::span<const std::uint8_t> d) {
  if (d.empty()) return DatagramKind::kUnknown;
  if (stun::is_stun(d)) return DatagramKind::kStun;
  switch (d[0]) {
    case static_cast<std::uint8_t>(PacketType::kHandshakeInit): return DatagramKind::kHandshakeInit;
    case static_cast<std::uint8_t>(PacketType::kHandshakeResp): return DatagramKind::kHandshakeResp;
    case static_cast<std::uint8_t>(PacketType::kHandshakeFinal):
      return DatagramKind::kHandshakeFinal;
    case static_cast<std::uint8_t>(PacketType::kData): return DatagramKind::kData;
    default: return DatagramKind::kUnknown;
  }
}

std::optional<HandshakeInit> parse_handshake_init(std::span<const std::uint8_t> d) {
  if (d.size() <= kInitHeader || d[0] != 0x81) return std::nullopt;
  if (d[1] != static_cast<std::uint8_t>(Pattern::kIK) &&
      d[1] != static_cast<std::uint8_t>(Pattern::kXX))
    return std::nullopt;
  ByteReader r(d.subspan(2));
  HandshakeInit m{static_cast<Pattern>(d[1]), *r.u32(), r.rest()};
  return m;
}

std::optional<HandshakeResp> parse_handshake_resp(std::span<const std::uint8_t> d) {
  if (d.size() <= kRespHeader || d[0] != 0x82) return std::nullopt;
  ByteReader r(d.subspan(4));
  auto sender = r.u32();
  auto receiver = r.u32();
  return HandshakeResp{*sender, *receiver, r.rest()};
}

std::optional<HandshakeFinal> parse_handshake_final(std::span<const std::uint8_t> d) {
  if (d.size() <= kFinalHeader || d[0] != 0x83) return std::nullopt;
  ByteReader r(d.subspan(4));
  auto receiver = r.u32();
  return HandshakeFinal{*receiver, r.rest()};
}

std::optional<DataHeader> parse_data(std::span<const std::uint8_t> d) {
  if (d.size() < kDataOverhead || d[0] != 0x84) return std::nullopt;
  DataHeader h;
  h.receiver_index = std::uint32_t{d[4]} << 24 | std::uint32_t{d[5]} << 16 |
                     std::uint32_t{d[6]} << 8 | d[7];
  h.counter = 0;
  for (int i = 7; i >= 0; --i) h.counter = h.counter << 8 | d[8 + i];
  h.ciphertext = d.subspan(kDataHeaderSize);
  return h;
}

void build_handshake_init(std::vector<std::uint8_t>& out, Pattern p, std::uint32_t sender,
                          std::span<const std::uint8_t> noise) {
  out.clear();
  ByteWriter w(out);
  w.u8(0x81);
  w.u8(static_cast<std::uint8_t>(p));
  w.u32(sender);
  w.bytes(noise);
}

void build_handshake_resp(std::vector<std::uint8_t>& out, std::uint32_t sender,
                          std::uint32_t receiver, std::span<const std::uint8_t> noise) {
  out.clear();
  ByteWriter w(out);
  w.u32(0x82000000);
  w.u32(sender);
  w.u32(receiver);
  w.bytes(noise);
}

void build_handshake_final(std::vector<std::uint8_t>& out, std::uint32_t receiver,
                           std::span<const std::uint8_t> noise) {
  out.clear();
  ByteWriter w(out);
  w.u32(0x83000000);
  w.u32(receiver);
  w.bytes(noise);
}

void write_data_header(std::uint8_t* h, std::uint32_t receiver, std::uint64_t counter) {
  h[0] = 0x84;
  h[1] = h[2] = h[3] = 0;
  h[4] = static_cast<std::uint8_t>(receiver >> 24);
  h[5] = static_cast<std::uint8_t>(receiver >> 16);
  h[6] = static_cast<std::uint8_t>(receiver >> 8);
  h[7] = static_cast<std::uint8_t>(receiver);
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
}

}  // namespace p2p::wire
