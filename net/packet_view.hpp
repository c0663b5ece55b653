// PacketView: one packet inside a caller-owned buffer, with room before it for headers and
// after it for authentication tags, so every layer (data header, relay header, the
// coordinator's data header) is written in place and nothing is copied on the hot path.
//
// Layout of a buffer: [ headroom | packet | tailroom ]. push_front() grows the packet into
// the headroom, pull_front() gives it back. The shells allocate buffers of kBufferSize with
// kHeadroom in front; the cores never allocate per packet.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

namespace p2p {

// Data header (16) + relay frame header (36, net/packet.hpp), rounded up to keep the packet
// 16-byte aligned in an aligned buffer.
inline constexpr std::size_t kHeadroom = 64;
// The peer session's tag, and room for one more.
inline constexpr std::size_t kTailroom = 32;
inline constexpr std::size_t kMaxPacket = 65535;
inline constexpr std::size_t kBufferSize = kHeadroom + kMaxPacket + kTailroom;

class PacketView {
 public:
  PacketView(std::uint8_t* buffer, std::size_t capacity, std::size_t offset, std::size_t size)
      : buf_(buffer), cap_(capacity), off_(offset), size_(size) {
    assert(offset + size <= capacity);
  }
  std::uint8_t* data() { return buf_ + off_; }
  const std::uint8_t* data() const { return buf_ + off_; }
  std::size_t size() const { return size_; }
  std::size_t headroom() const { return off_; }
  std::size_t tailroom() const { return cap_ - off_ - size_; }
  std::span<std::uint8_t> span() { return {data(), size_}; }
  std::span<const std::uint8_t> span() const { return {data(), size_}; }
  // The packet plus its tailroom: what an in-place encrypt needs.
  std::span<std::uint8_t> span_with_tailroom() { return {data(), size_ + tailroom()}; }

  bool push_front(std::size_t n) {
    if (n > off_) return false;
    off_ -= n;
    size_ += n;
    return true;
  }
  void pull_front(std::size_t n) {
    assert(n <= size_);
    off_ += n;
    size_ -= n;
  }
  void resize(std::size_t n) {
    assert(off_ + n <= cap_);
    size_ = n;
  }
  // A view of bytes [from, from+n) of this packet, sharing the buffer: headroom in front is
  // what lies before it in the buffer.
  PacketView sub(std::size_t from, std::size_t n) const {
    return PacketView(buf_, cap_, off_ + from, n);
  }

 private:
  std::uint8_t* buf_;
  std::size_t cap_;
  std::size_t off_;
  std::size_t size_;
};

}  // namespace p2p
