// Wiped<N>: fixed-size secret bytes in ordinary memory, wiped (sodium_memzero) when destroyed,
// moved from or wipe()d.
//
// For secrets that live as long as one handshake or one session: Noise chaining keys, cipher
// keys, ephemeral private keys, DH outputs, transport keys, cookie secrets. Unlike SecureBuffer
// it costs no memory mapping, so a flood of handshakes cannot exhaust vm.max_map_count; the
// trade is that it may reach swap. Long-lived identity keys stay in SecureBuffer.
// Move-only; a move copies the bytes and wipes the source. Never throws.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace p2p::crypto {

template <std::size_t N>
class Wiped {
 public:
  static constexpr std::size_t kSize = N;

  Wiped() noexcept = default;
  explicit Wiped(std::span<const std::uint8_t, N> src) noexcept {
    std::memcpy(b_.data(), src.data(), N);
  }
  ~Wiped() { wipe(); }
  Wiped(Wiped&& o) noexcept : b_(o.b_) { o.wipe(); }
  Wiped& operator=(Wiped&& o) noexcept {
    if (this != &o) {
      b_ = o.b_;
      o.wipe();
    }
    return *this;
  }
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;

  // An explicit copy, for the rare place that must duplicate a secret.
  Wiped clone() const { return Wiped(span()); }

  std::uint8_t* data() { return b_.data(); }
  const std::uint8_t* data() const { return b_.data(); }
  static constexpr std::size_t size() { return N; }
  std::span<std::uint8_t, N> span() { return std::span<std::uint8_t, N>(b_); }
  std::span<const std::uint8_t, N> span() const { return std::span<const std::uint8_t, N>(b_); }
  void wipe() { sodium_memzero(b_.data(), N); }

 private:
  std::array<std::uint8_t, N> b_{};
};

}  // namespace p2p::crypto
