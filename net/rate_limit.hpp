// Limits for what anyone on the internet can make us do, I/O-free and shared by the node and
// the coordinator:
//
//   Bucket         a token bucket on the handed-in clock (rate per second, burst).
//   SourceLimiter  token buckets per source address and per its prefix (/24 for IPv4, /64 for
//                  IPv6) in a fixed table: no allocation after construction, whatever the
//                  number of sources. A new source takes the slot of an idle one (its bucket
//                  refilled to the burst), else of the least recently used of its two
//                  candidate slots; slots are chosen by a salted hash, so sources cannot be
//                  picked to collide with a victim.
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

class Bucket {
 public:
  Bucket() = default;
  Bucket(RateSpec spec, Time now) : spec_(spec), tokens_(spec.burst), last_(now) {}
  // Takes `n` tokens if there are that many.
  bool take(Time now, double n = 1);
  // True if the bucket would be full at `now` (its source has been quiet).
  bool idle(Time now) const;
  Time last() const { return last_; }

 private:
  void refill(Time now);
  RateSpec spec_;
  double tokens_ = 0;
  Time last_{};
};

class SourceLimiter {
 public:
  // `slots`: table size (each slot ~40 bytes); `salt`: random, from the caller.
  SourceLimiter(RateSpec per_address, RateSpec per_prefix, std::size_t slots, std::uint64_t salt);
  // One token from the address's bucket and one from its prefix's; false (nothing taken) if
  // either is empty.
  bool allow(Time now, const IpAddress& source);

 private:
  struct Slot {
    std::uint64_t key = 0;
    Bucket bucket;
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
