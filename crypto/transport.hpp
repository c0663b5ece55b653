// The data-plane session that follows a Noise handshake: ChaCha20-Poly1305 with the 64-bit
// packet counter as nonce, an RFC 6479 anti-replay window, and WireGuard's key lifetimes.
//
// Outbound: encrypt(now, buffer, len) -> counter; the caller puts the counter in its header.
// Inbound:  decrypt(now, counter, packet) -> plaintext length. The window is consulted before
//           any cryptography (cheap drop of replays) and only advanced after the tag verified,
//           so a forged packet can neither be accepted nor move the window.
// Time is always handed in. No allocation, no locks, no logging: single-threaded hot path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "crypto/noise.hpp"
#include "crypto/wiped.hpp"
#include "net/expected.hpp"
#include "net/time.hpp"

namespace p2p::crypto {

// WireGuard's constants (whitepaper section 6.1 / drivers/net/wireguard/messages.h).
inline constexpr std::uint64_t kRekeyAfterMessages = std::uint64_t{1} << 60;
inline constexpr std::uint64_t kRejectAfterMessages =
    std::numeric_limits<std::uint64_t>::max() - (std::uint64_t{1} << 13);  // 2^64 - 2^13 - 1
inline constexpr Duration kRekeyAfterTime = std::chrono::seconds(120);
inline constexpr Duration kRejectAfterTime = std::chrono::seconds(180);
inline constexpr Duration kRekeyTimeout = std::chrono::seconds(5);
inline constexpr Duration kKeepaliveTimeout = std::chrono::seconds(10);
inline constexpr std::size_t kTransportTagLen = noise::kTagLen;

enum class TransportError {
  replayed,     // counter already accepted
  too_old,      // counter fell behind the window
  auth_failed,  // tag did not verify (tampered packet, counter or associated data; wrong key)
  expired,      // session is kRejectAfterTime old
  too_short,    // decrypt: packet shorter than the tag; encrypt: buffer lacks the tag's tailroom
  exhausted,    // counter reached kRejectAfterMessages (sending side or received counter)
};
std::string_view to_string(TransportError e);

// RFC 6479 sliding window over received counters: a ring of 64-bit blocks (WireGuard's layout)
// whose spare block lets the window slide a whole block at a time. Accepts each counter in
// [highest - kWindowSize, highest] at most once, and anything above highest.
class ReplayWindow {
 public:
  static constexpr std::size_t kBlockBits = 64;
  static constexpr std::size_t kBlocks = 33;                                // 2048 + 64 bits
  static constexpr std::uint64_t kWindowSize = (kBlocks - 1) * kBlockBits;  // 2048

  // Would `counter` be accepted? Changes nothing; call before decrypting.
  Expected<void, TransportError> check(std::uint64_t counter) const;
  // Marks `counter` as seen. Only after check() passed and the packet authenticated.
  void update(std::uint64_t counter);

 private:
  std::array<std::uint64_t, kBlocks> bitmap_{};
  std::uint64_t highest_ = 0;
};

class TransportSession {
 public:
  // `keys` from HandshakeState::split() of this side; `created` is when the handshake ended.
  TransportSession(noise::TransportKeys keys, Time created, bool initiator);

  // Encrypts buffer[0, plaintext_len) in place and writes the tag right after it, so
  // buffer.size() must be >= plaintext_len + kTransportTagLen. Returns the counter used;
  // the ciphertext is buffer[0, plaintext_len + kTransportTagLen). Errors: too_short, expired,
  // exhausted (the counter is not consumed on error).
  Expected<std::uint64_t, TransportError> encrypt(Time now, std::span<std::uint8_t> buffer,
                                                  std::size_t plaintext_len,
                                                  std::span<const std::uint8_t> ad = {});
  // Decrypts `packet` (ciphertext || tag) received with `counter`, in place. Returns the
  // plaintext length (packet.size() - kTransportTagLen), now at packet[0, len). On error the
  // contents of `packet` are unspecified and the window is unchanged.
  Expected<std::size_t, TransportError> decrypt(Time now, std::uint64_t counter,
                                                std::span<std::uint8_t> packet,
                                                std::span<const std::uint8_t> ad = {});

  // encrypt() and decrypt() in parts, for sealing and opening on other threads
  // (crypto/crypto_workers.hpp). reserve() makes encrypt()'s checks and consumes the counter,
  // which the caller then seals with: noise::seal(send_key(), counter, ...) on any thread.
  // check_open() makes decrypt()'s checks before the cryptography (changes nothing);
  // noise::open(recv_key(), ...) on any thread; then accept_opened() on this session's thread
  // with whether the tag verified: checks again in decrypt()'s order (an earlier packet may
  // have taken the counter meanwhile) and advances the window for an authentic packet. The
  // results (errors included) equal encrypt()'s and decrypt()'s.
  Expected<std::uint64_t, TransportError> reserve(Time now, std::size_t buffer_size,
                                                  std::size_t plaintext_len);
  Expected<void, TransportError> check_open(Time now, std::uint64_t counter,
                                            std::size_t packet_size) const;
  Expected<void, TransportError> accept_opened(Time now, std::uint64_t counter, bool authentic);
  std::span<const std::uint8_t, noise::kKeyLen> send_key() const { return send_key_.span(); }
  std::span<const std::uint8_t, noise::kKeyLen> recv_key() const { return recv_key_.span(); }

  // Time to start a new handshake, checked when sending. Both sides: kRekeyAfterMessages
  // sent. Initiator: age >= kRekeyAfterTime. Responder: age >= kRejectAfterTime -
  // kKeepaliveTimeout - kRekeyTimeout (165 s), so a responder that is the only sender renews
  // the session before it expires while normally the initiator rekeys first and the two do
  // not race. (WireGuard applies the 165 s rule on the initiator's receive path instead.)
  bool should_rekey(Time now) const;
  // age >= kRejectAfterTime: encrypt and decrypt refuse.
  bool is_expired(Time now) const { return now - created_ >= kRejectAfterTime; }

  bool is_initiator() const { return initiator_; }
  Time created() const { return created_; }
  // Counter the next encrypt() will use (= messages sent so far).
  std::uint64_t send_counter() const { return send_counter_; }

  // Test hook: jump the send counter (e.g. near kRejectAfterMessages). Never in production.
  void set_send_counter_for_testing(std::uint64_t counter) { send_counter_ = counter; }

 private:
  Wiped<noise::kKeyLen> send_key_;  // per session: ordinary memory, wiped (crypto/wiped.hpp)
  Wiped<noise::kKeyLen> recv_key_;
  std::uint64_t send_counter_ = 0;
  ReplayWindow window_;
  Time created_;
  bool initiator_;
};

}  // namespace p2p::crypto
