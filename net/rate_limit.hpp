// Limits for what anyone on the internet can make us do, I/O-free (time is handed in) and
// shared by the node and the coordinator:
//
//   TokenBucket    `per_second` units a second, at most `burst` saved up, starting full. The
//                  unit is the caller's: bytes for the relay and STUN, requests for lookups,
//                  introductions and handshake initiations.
//   SourceLimiter  token buckets per source address and per its prefix (/24 for IPv4, /64 for
//                  IPv6: one host can pick any address in its /64) in a fixed table: no
//                  allocation after construction, whatever the number of sources. The port
//                  is never part of the key: whatever we send in answer goes to the source's
//                  address. A new source takes the slot of an idle one (its bucket refilled
//                  to the burst), else of the least recently used of its two candidate
//                  slots; slots are chosen by a salted hash, so sources cannot be picked to
//                  collide with a victim. A source pushed out comes back with a full bucket,
//                  as if it had been idle long enough to refill.
//   DropReason     a counter of one kind of dropped packet whose log line cannot be flooded:
//                  hit() counts and, at most once per interval, returns how many were counted
//                  since the last line ("dropped 1234 handshake inits (bad mac1) in the last
//                  10s").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p {

struct RateSpec {
  double per_second = 0;
  double burst = 0;
};

class TokenBucket {
 public:
  TokenBucket() = default;
  // Full, and refilling from `now`.
  TokenBucket(RateSpec spec, Time now) : spec_(spec), tokens_(spec.burst), last_(now) {}
  TokenBucket(double per_second, double burst, Time now)
      : TokenBucket(RateSpec{per_second, burst}, now) {}
  // Full at its first use, for owners made before they see a time.
  explicit TokenBucket(RateSpec spec) : spec_(spec), tokens_(spec.burst) {}
  TokenBucket(double per_second, double burst) : TokenBucket(RateSpec{per_second, burst}) {}

  // Takes `n` units if that many are saved up; false, taking nothing, otherwise.
  bool take(Time now, double n = 1);
  // Whether take(now, n) would succeed.
  bool ready(Time now, double n = 1);
  // True if the bucket would be full at `now` (its source has been quiet).
  bool idle(Time now) const;
  Time last() const { return last_; }

 private:
  void refill(Time now);
  RateSpec spec_;
  double tokens_ = 0;
  Time last_ = Time::min();  // min: not used yet
};

class SourceLimiter {
 public:
  // `per_prefix` with a zero burst: no prefix limit. `slots`: table size (each ~40 bytes);
  // `salt`: random, from the caller.
  SourceLimiter(RateSpec per_address, RateSpec per_prefix, std::size_t slots, std::uint64_t salt);
  // `n` units from the address's bucket and from its prefix's; false (nothing taken) if
  // either has fewer.
  bool allow(Time now, const IpAddress& source, double n = 1);

 private:
  struct Slot {
    std::uint64_t key = 0;
    TokenBucket bucket;
  };
  Slot& find(Time now, std::uint64_t key, RateSpec spec);
  std::uint64_t hash(std::uint64_t kind, const std::uint8_t* bytes, std::size_t n) const;

  RateSpec address_, prefix_;
  std::vector<Slot> slots_;
  std::uint64_t salt_;
};

class DropReason {
 public:
  static constexpr Duration kInterval = std::chrono::seconds(10);
  // Counts one drop; returns the number to report when a log line is due (the first drop at
  // once, then at most one line per kInterval).
  std::optional<std::uint64_t> hit(Time now);
  std::uint64_t total() const { return total_; }

 private:
  std::uint64_t total_ = 0, unreported_ = 0;
  Time next_line_{};
  bool reported_ = false;
};

}  // namespace p2p
