// What keeps unauthenticated handshake work nearly free (WireGuard's MAC1/MAC2 and cookies,
// whitepaper section 5.4.4 and 5.4.7, with BLAKE2b from libsodium 1.0.18 in place of BLAKE2s).
//
//   GuardKeys       the MAC keys of one responder identity: mac1 = BLAKE2b-256("mac1----" ||
//                   identity), cookie = BLAKE2b-256("cookie--" || identity). IK (node to node):
//                   the identity is the responder's static public key. XX (node to
//                   coordinator): the network CA's public key, the only key the initiator
//                   knows; any member of the network can compute it, so for the coordinator
//                   mac1 only stops blind garbage from outsiders.
//   stamp_macs()    initiator: mac1 = BLAKE2b-128(key mac1, init before mac1); mac2 =
//                   BLAKE2b-128(key cookie, init before mac2) when a cookie is held, else zero.
//   HandshakeGuard  responder, before any Diffie-Hellman or allocation: an initiation shorter
//                   than wire::kMinInitSize is refused, a wrong mac1 is dropped; then, when the
//                   responder is under load (the caller says so, or more initiations arrive
//                   than the global budget) or the source's address or prefix bucket is empty,
//                   an initiation without a valid mac2 gets only a CookieReply: the cookie
//                   BLAKE2b-128(key = a secret rotated every 2 minutes, source ip:port) sealed
//                   with XChaCha20-Poly1305 (key: the cookie key, random nonce, AD: the
//                   initiation's mac1). A valid mac2 proves the source receives at its address;
//                   such initiations are limited per address by a bucket of their own, so a
//                   flood from spoofed sources cannot keep a genuine node out.
//   open_cookie_reply()  initiator: the cookie, if the reply answers the initiation whose mac1
//                   it holds.
// Every check is constant-time where it compares secrets; nothing here allocates per packet
// except the reply the caller asked for, logs or throws.
#pragma once

#include <spdlog/spdlog.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "crypto/wiped.hpp"
#include "net/ip.hpp"
#include "net/packet.hpp"
#include "net/rate_limit.hpp"
#include "net/time.hpp"

namespace p2p::crypto {

using MacKey = std::array<std::uint8_t, 32>;
using Cookie = std::array<std::uint8_t, wire::kCookieSize>;

// How long an initiator uses a cookie (the responder's secret rotates every 2 minutes and the
// previous one is still accepted).
inline constexpr Duration kCookieSecretLifetime = std::chrono::seconds(120);
inline constexpr Duration kCookieLifetime = std::chrono::seconds(110);

struct GuardKeys {
  MacKey mac1{};
  MacKey cookie{};
  static GuardKeys derive(std::span<const std::uint8_t, 32> identity);
};

// `init` is a whole HandshakeInit datagram from wire::build_handshake_init.
void stamp_macs(std::span<std::uint8_t> init, const GuardKeys& keys,
                const std::optional<Cookie>& cookie);
// The responder's mac1 check alone (the initiation's size is the caller's to check first).
bool mac1_ok(const GuardKeys& keys, std::span<const std::uint8_t> init);
std::optional<Cookie> open_cookie_reply(const GuardKeys& keys, const wire::CookieReply& reply,
                                        std::span<const std::uint8_t> sent_init);

// A cookie an initiator holds for one responder.
struct HeldCookie {
  Cookie cookie{};
  Time received{};
  std::optional<Cookie> fresh(Time now) const {
    if (now - received >= kCookieLifetime) return std::nullopt;
    return cookie;
  }
};

struct GuardSettings {
  RateSpec global{500, 1000};           // initiations per second before "under load"
  RateSpec per_address{10, 20};         // unproven, per source address
  RateSpec per_prefix{50, 100};         // unproven, per /24 or /64
  RateSpec proven_per_address{10, 20};  // with a valid mac2
  // Proven sources of one /24 or /64: many genuine nodes behind one carrier NAT pool or in
  // one hosting subnet re-register at once after a coordinator restart.
  RateSpec proven_per_prefix{200, 400};
  std::size_t table_slots = 4096;  // per limiter
};

// Counts a dropped initiation in `counter` and, at most once per 10 s per reason (`pace`),
// logs a summary line: "dropped 1234 handshake initiations (bad mac1) in the last 10s".
void count_dropped_init(spdlog::logger& log, Time now, std::uint64_t& counter, DropReason& pace,
                        std::string_view why);

class HandshakeGuard {
 public:
  enum class Verdict { kAccept, kUnpadded, kBadMac1, kCookie, kRateLimited };
  using FillRandom = std::function<void(std::span<std::uint8_t>)>;

  HandshakeGuard(GuardKeys keys, GuardSettings settings, FillRandom random, Time now);

  // `d` is the datagram `init` was parsed from. On kCookie, `reply` holds the CookieReply to
  // send to `from` (never larger than `d`); otherwise it is left empty.
  Verdict check(Time now, const Endpoint& from, std::span<const std::uint8_t> d,
                const wire::HandshakeInit& init, bool under_load, std::vector<std::uint8_t>& reply);

  const GuardKeys& keys() const { return keys_; }

 private:
  Cookie cookie_for(const Endpoint& from, const Wiped<32>& secret) const;
  bool mac2_ok(Time now, const Endpoint& from, std::span<const std::uint8_t> d);
  void make_reply(const Endpoint& from, const wire::HandshakeInit& init,
                  std::vector<std::uint8_t>& reply);

  GuardKeys keys_;
  GuardSettings settings_;
  FillRandom random_;
  Wiped<32> secret_, previous_;
  Time rotated_;
  TokenBucket global_;
  SourceLimiter unproven_, proven_;
};

}  // namespace p2p::crypto
