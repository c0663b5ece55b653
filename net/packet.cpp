#include "net/packet.hpp"

#include <algorithm>
#include <cstring>

#include "net/byte_io.hpp"
#include "net/stun.hpp"

namespace p2p::wire {
namespace {

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
    case static_cast<std::uint8_t>(PacketType::kCookieReply): return DatagramKind::kCookieReply;
    case static_cast<std::uint8_t>(PacketType::kRelay): return DatagramKind::kRelay;
    case static_cast<std::uint8_t>(PacketType::kRelayed): return DatagramKind::kRelayed;
    default: return DatagramKind::kUnknown;
  }
}

std::optional<HandshakeInit> parse_handshake_init(std::span<const std::uint8_t> d) {
  if (d.size() < kInitHeaderSize + kInitTrailerSize || d[0] != 0x81) return std::nullopt;
  if (d[1] != static_cast<std::uint8_t>(Pattern::kIK) &&
      d[1] != static_cast<std::uint8_t>(Pattern::kXX))
    return std::nullopt;
  ByteReader r(d.subspan(2, kInitHeaderSize - 2));
  const std::size_t noise_len = *r.u16();
  const std::uint32_t sender = *r.u32();
  if (noise_len == 0 || noise_len > d.size() - kInitHeaderSize - kInitTrailerSize)
    return std::nullopt;
  return HandshakeInit{static_cast<Pattern>(d[1]), sender, d.subspan(kInitHeaderSize, noise_len),
                       d.last(kInitTrailerSize).first(kMacSize), d.last(kMacSize)};
}

std::optional<CookieReply> parse_cookie_reply(std::span<const std::uint8_t> d) {
  if (d.size() != kCookieReplySize || d[0] != 0x85) return std::nullopt;
  ByteReader r(d.subspan(4, 4));
  return CookieReply{*r.u32(), d.subspan(8, kCookieNonceSize), d.subspan(8 + kCookieNonceSize)};
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
  h.receiver_index =
      std::uint32_t{d[4]} << 24 | std::uint32_t{d[5]} << 16 | std::uint32_t{d[6]} << 8 | d[7];
  h.counter = 0;
  for (int i = 7; i >= 0; --i) h.counter = h.counter << 8 | d[8 + i];
  h.ciphertext = d.subspan(kDataHeaderSize);
  return h;
}

std::optional<RelayFrame> parse_relay(std::span<const std::uint8_t> d) {
  if (d.size() <= kRelayHeaderSize || (d[0] != 0x86 && d[0] != 0x87)) return std::nullopt;
  ByteReader r(d.subspan(4, 4));
  RelayFrame f;
  f.type = static_cast<PacketType>(d[0]);
  f.receiver_index = *r.u32();
  f.counter = 0;
  for (int i = 7; i >= 0; --i) f.counter = f.counter << 8 | d[8 + i];
  ByteReader v(d.subspan(16, 4));
  f.vip = *v.u32();
  f.inner = d.subspan(kRelayHeaderSize);
  return f;
}

void build_handshake_init(std::vector<std::uint8_t>& out, Pattern p, std::uint32_t sender,
                          std::span<const std::uint8_t> noise, std::size_t padded_size) {
  out.clear();
  ByteWriter w(out);
  w.u8(0x81);
  w.u8(static_cast<std::uint8_t>(p));
  w.u16(static_cast<std::uint16_t>(noise.size()));
  w.u32(sender);
  w.bytes(noise);
  const std::size_t natural = out.size() + kInitTrailerSize;
  out.resize(std::max({natural, padded_size, kMinInitSize}), 0);
}

void build_cookie_reply(std::vector<std::uint8_t>& out, std::uint32_t receiver,
                        std::span<const std::uint8_t, kCookieNonceSize> nonce,
                        std::span<const std::uint8_t, kCookieSize + kTagSize> sealed) {
  out.clear();
  ByteWriter w(out);
  w.u32(0x85000000);
  w.u32(receiver);
  w.bytes(nonce);
  w.bytes(sealed);
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

void write_relay_fields(std::uint8_t* h, PacketType type, std::uint32_t receiver,
                        std::uint64_t counter, std::uint32_t vip) {
  write_data_header(h, receiver, counter);
  h[0] = static_cast<std::uint8_t>(type);
  h[16] = static_cast<std::uint8_t>(vip >> 24);
  h[17] = static_cast<std::uint8_t>(vip >> 16);
  h[18] = static_cast<std::uint8_t>(vip >> 8);
  h[19] = static_cast<std::uint8_t>(vip);
}

std::array<std::uint8_t, kRelayAdSize> relay_ad(const std::uint8_t* header,
                                                std::size_t inner_size) {
  std::array<std::uint8_t, kRelayAdSize> ad;
  std::memcpy(ad.data(), header, kRelayFieldsSize);
  const auto n = static_cast<std::uint32_t>(inner_size);
  ad[20] = static_cast<std::uint8_t>(n >> 24);
  ad[21] = static_cast<std::uint8_t>(n >> 16);
  ad[22] = static_cast<std::uint8_t>(n >> 8);
  ad[23] = static_cast<std::uint8_t>(n);
  return ad;
}

}  // namespace p2p::wire
