// SecureBuffer: fixed-size key material in libsodium's guarded memory.
//
// Contract: the bytes live in a sodium_malloc() region (guard pages on both sides, canary,
// mlock()ed so they never reach swap) and are wiped by sodium_free() on destruction. Move-only;
// never copied implicitly. Use it for every private key, chaining key and session key. It is
// not for per-packet data: each buffer costs a few pages.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace p2p::crypto {

// Call once before any other crypto function (idempotent, thread-safe). Aborts if libsodium
// cannot initialise, since nothing secure can happen without it.
void init_sodium();

template <std::size_t N>
class SecureBuffer {
 public:
  static constexpr std::size_t kSize = N;

  SecureBuffer() : p_(static_cast<std::uint8_t*>(allocate())) { sodium_memzero(p_, N); }
  explicit SecureBuffer(std::span<const std::uint8_t, N> src) : SecureBuffer() {
    std::memcpy(p_, src.data(), N);
  }
  ~SecureBuffer() {
    if (p_) sodium_free(p_);
  }
  SecureBuffer(SecureBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  SecureBuffer& operator=(SecureBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) sodium_free(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  // An explicit copy, for the rare place that must duplicate a secret (e.g. Split()).
  SecureBuffer clone() const { return SecureBuffer(std::span<const std::uint8_t, N>(p_, N)); }

  std::uint8_t* data() { return p_; }
  const std::uint8_t* data() const { return p_; }
  static constexpr std::size_t size() { return N; }
  std::span<std::uint8_t, N> span() { return std::span<std::uint8_t, N>(p_, N); }
  std::span<const std::uint8_t, N> span() const { return std::span<const std::uint8_t, N>(p_, N); }
  void wipe() { sodium_memzero(p_, N); }
  bool valid() const { return p_ != nullptr; }

 private:
  static void* allocate() {
    init_sodium();
    void* p = sodium_malloc(N);
    if (!p) throw std::bad_alloc();
    return p;
  }
  std::uint8_t* p_;
};

}  // namespace p2p::crypto
