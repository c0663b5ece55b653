// Token buckets, alone and one per source address in a bounded table. I/O-free: time is
// handed in.
//
// TokenBucket: `rate` units per second, at most `burst` saved up, starting full. The unit is
// the caller's (bytes for the relay and STUN, requests for lookups and introductions).
//
// SourceLimiter: a TokenBucket per source, where a source is an IPv4 address or an IPv6 /64
// (one host's worth of addresses; an IPv6 host can pick any address in its /64 and so could
// otherwise sidestep its limit). The port is not part of the key: everything a server sends
// in answer goes to the source's address, whatever port the request names, so the budget is
// the address's. The table holds at most `capacity` sources in two generations: lookups
// touch the current one (a source found only in the old one moves across), and when the
// current one reaches capacity / 2 it becomes the old one and the previous old one is
// forgotten. A source forgotten that way comes back with a full bucket, exactly as if it had
// been idle long enough to refill (which, for an entry that went unused through half the
// table's turnover, it almost always has). Memory is O(capacity), every call O(1) amortised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p {

class TokenBucket {
 public:
  TokenBucket(std::uint64_t rate, std::uint64_t burst, Time now)
      : rate_(static_cast<double>(rate)),
        burst_(static_cast<double>(burst)),
        tokens_(burst_),
        last_(now) {}
  // Starting full at the first call, for owners constructed before they see a time.
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes `amount` if that many are saved up (after refilling for the time since the last
  // call); false, taking nothing, otherwise.
  bool take(Time now, std::size_t amount = 1);
  // Whether take(now, amount) would succeed.
  bool ready(Time now, std::size_t amount = 1);

 private:
  void refill(Time now);
  double rate_, burst_, tokens_;
  Time last_ = Time::min();  // min: not used yet
};

class SourceLimiter {
 public:
  struct Settings {
    std::uint64_t rate = 0;    // units per second per source
    std::uint64_t burst = 0;   // units
    std::size_t capacity = 0;  // sources remembered, at most
  };
  explicit SourceLimiter(Settings s) : settings_(s) {}

  // Takes `amount` from the bucket of `source`'s address.
  bool take(Time now, const IpAddress& source, std::size_t amount);
  std::size_t size() const { return current_.size() + old_.size(); }

 private:
  using Key = std::uint64_t;  // see key()
  static Key key(const IpAddress& a);

  Settings settings_;
  std::unordered_map<Key, TokenBucket> current_, old_;
};

}  // namespace p2p
