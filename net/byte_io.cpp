#include "net/byte_io.hpp"

namespace p2p::wire {

bool ByteWriter::room(std::size_t n) {
  if (ok_ && n <= limit_ - (out_.size() - base_)) return true;
  fail();
  return false;
}

void ByteWriter::fail() {
  if (ok_) out_.resize(base_);
  ok_ = false;
}

void ByteWriter::str8(std::string_view s) {
  if (s.size() > 0xff) return fail();
  if (!room(1 + s.size())) return;
  u8(static_cast<std::uint8_t>(s.size()));
  out_.insert(out_.end(), s.begin(), s.end());
}

void ByteWriter::blob16(std::span<const std::uint8_t> b) {
  if (b.size() > 0xffff) return fail();
  if (!room(2 + b.size())) return;
  u16(static_cast<std::uint16_t>(b.size()));
  bytes(b);
}

void ByteWriter::endpoint(const Endpoint& e) {
  if (auto* v4 = std::get_if<Ipv4>(&e.address)) {
    u8(4);
    u32(v4->value);
  } else {
    u8(6);
    bytes(std::get<Ipv6>(e.address).bytes);
  }
  u16(e.port);
}

void ByteWriter::align(std::size_t alignment) {
  const std::size_t n = (alignment - size() % alignment) % alignment;
  if (room(n)) out_.insert(out_.end(), n, 0);
}

void ByteWriter::patch_u16(std::size_t at, std::uint16_t v) {
  if (!ok_ || at > size() || size() - at < 2) return fail();
  out_[base_ + at] = static_cast<std::uint8_t>(v >> 8);
  out_[base_ + at + 1] = static_cast<std::uint8_t>(v);
}

std::optional<std::uint8_t> ByteReader::u8() {
  if (!take(1)) return std::nullopt;
  return in_[pos_++];
}

std::optional<std::uint16_t> ByteReader::u16() {
  if (!take(2)) return std::nullopt;
  std::uint16_t v = static_cast<std::uint16_t>(in_[pos_] << 8 | in_[pos_ + 1]);
  pos_ += 2;
  return v;
}

std::optional<std::uint32_t> ByteReader::u32() {
  auto hi = u16();
  auto lo = u16();
  if (!hi || !lo) return std::nullopt;
  return std::uint32_t{*hi} << 16 | *lo;
}

std::optional<std::uint64_t> ByteReader::u64() {
  auto hi = u32();
  auto lo = u32();
  if (!hi || !lo) return std::nullopt;
  return std::uint64_t{*hi} << 32 | *lo;
}

std::optional<std::span<const std::uint8_t>> ByteReader::bytes(std::size_t n) {
  if (!take(n)) return std::nullopt;
  auto s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

std::optional<std::string> ByteReader::str8(std::size_t max_len) {
  auto n = u8();
  if (!n || *n > max_len) {
    ok_ = false;
    return std::nullopt;
  }
  auto b = bytes(*n);
  if (!b) return std::nullopt;
  return std::string(b->begin(), b->end());
}

std::optional<std::span<const std::uint8_t>> ByteReader::blob16(std::size_t max_len) {
  auto n = u16();
  if (!n || *n > max_len) {
    ok_ = false;
    return std::nullopt;
  }
  return bytes(*n);
}

std::optional<Endpoint> ByteReader::endpoint() {
  auto family = u8();
  if (!family) return std::nullopt;
  Endpoint e;
  if (*family == 4) {
    auto a = u32();
    if (!a) return std::nullopt;
    e.address = Ipv4{*a};
  } else if (*family == 6) {
    auto b = array<16>();
    if (!b) return std::nullopt;
    e.address = Ipv6{*b};
  } else {
    ok_ = false;
    return std::nullopt;
  }
  auto port = u16();
  if (!port) return std::nullopt;
  e.port = *port;
  return e;
}

std::span<const std::uint8_t> ByteReader::rest() {
  if (!ok_) return {};
  auto s = in_.subspan(pos_);
  pos_ = in_.size();
  return s;
}

}  // namespace p2p::wire
