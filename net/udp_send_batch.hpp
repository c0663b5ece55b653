// UdpSendBatch: the datagrams one receive batch sends out of one socket, held back and handed
// on grouped by destination, so that a destination's datagrams lie next to each other in the
// socket's send queue and each run of same-size ones leaves in one UDP_SEGMENT send
// (udp_offload::gso_run_length; io::UdpSocket::flush builds the runs). I/O-free.
//
// Holds views, never bytes: a datagram's bytes must stay unchanged until drain() (the
// coordinator's shell adds only relayed datagrams re-sealed in the receive buffer they arrived
// in, and drains before the next receive). Bounded: `capacity` datagrams, fixed at
// construction (the only allocation); add() to a full batch is refused and counted.
//
// drain(emit) calls emit(to, bytes) for every datagram held: one destination's in the order
// they were added (per-destination order is all UDP keeps anyway), destinations one after the
// other in ascending Endpoint order; then the batch is empty. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/ip.hpp"

namespace p2p {

class UdpSendBatch {
 public:
  explicit UdpSendBatch(std::size_t capacity) : entries_(capacity), order_(capacity) {}

  // False (and counted in dropped()) when the batch already holds capacity() datagrams.
  bool add(const Endpoint& to, std::span<const std::uint8_t> datagram);

  template <class Emit>
  void drain(Emit&& emit) {
    for (std::size_t i = 0; i < size_; ++i) order_[i] = static_cast<std::uint32_t>(i);
    // Sorted by (destination, position added): stable per destination, without the
    // temporary buffer std::stable_sort would allocate.
    std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(size_),
              [this](std::uint32_t x, std::uint32_t y) {
                if (auto c = entries_[x].to <=> entries_[y].to; c != 0) return c < 0;
                return x < y;
              });
    const std::size_t n = size_;
    size_ = 0;
    for (std::size_t i = 0; i < n; ++i) emit(entries_[order_[i]].to, entries_[order_[i]].bytes);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return entries_.size(); }
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Entry {
    Endpoint to;
    std::span<const std::uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> order_;
  std::size_t size_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace p2p
