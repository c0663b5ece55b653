// PacketPool: a fixed set of packet buffers, allocated once when the shell starts.
//
// Buffer i is kBufferSize bytes laid out as [kHeadroom | packet | kTailroom]: the
// sockets and the TUN read a packet to packet(i) (at most kMaxPacket bytes), and view(i, n)
// hands it to a core, which may grow it into the headroom and the tailroom in place. Buffers
// start on 64-byte boundaries. Nothing is allocated after construction.
//
// contains(bytes) tells whether a span lies inside one of the buffers: the UDP send queue
// sends such spans without copying them (see UdpSocket::queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>

#include "net/packet_view.hpp"

namespace p2p::io {

class PacketPool {
 public:
  static constexpr std::size_t kStride = (kBufferSize + 63) / 64 * 64;
  static constexpr std::size_t kPacketCapacity = kMaxPacket;

  explicit PacketPool(std::size_t count)
      : count_(count),
        memory_(static_cast<std::uint8_t*>(std::aligned_alloc(64, count * kStride))) {
    if (!memory_) throw std::bad_alloc();
  }

  std::size_t size() const { return count_; }
  std::uint8_t* buffer(std::size_t i) { return memory_.get() + i * kStride; }
  std::uint8_t* packet(std::size_t i) { return buffer(i) + kHeadroom; }
  // The packet of `length` bytes at packet(i), with the full headroom and tailroom around it.
  PacketView view(std::size_t i, std::size_t length) {
    return PacketView(buffer(i), kBufferSize, kHeadroom, length);
  }
  bool contains(std::span<const std::uint8_t> bytes) const {
    const std::uint8_t* begin = memory_.get();
    return bytes.data() >= begin && bytes.data() + bytes.size() <= begin + count_ * kStride;
  }

 private:
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::size_t count_;
  std::unique_ptr<std::uint8_t, Free> memory_;
};

}  // namespace p2p::io
