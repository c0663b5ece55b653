#include "net/rate_limit.hpp"

#include <algorithm>

namespace p2p {

void TokenBucket::refill(Time now) {
  if (last_ == Time::min()) {
    last_ = now;
  } else if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }
}

bool TokenBucket::ready(Time now, std::size_t amount) {
  refill(now);
  return tokens_ >= static_cast<double>(amount);
}

bool TokenBucket::take(Time now, std::size_t amount) {
  refill(now);
  const auto want = static_cast<double>(amount);
  if (tokens_ < want) return false;
  tokens_ -= want;
  return true;
}

SourceLimiter::Key SourceLimiter::key(const IpAddress& a) {
  // IPv4 addresses are below 2^32; an IPv6 /64 is its top 64 bits with bit 63 set, which no
  // IPv4 key has. Two /64s that differ only in their first bit share a bucket: harmless (it
  // only makes their limit stricter).
  if (const auto* v4 = std::get_if<Ipv4>(&a)) return v4->value;
  const auto& b = std::get<Ipv6>(a).bytes;
  Key k = 0;
  for (int i = 0; i < 8; ++i) k = k << 8 | b[static_cast<std::size_t>(i)];
  return k | Key{1} << 63;
}

bool SourceLimiter::take(Time now, const IpAddress& source, std::size_t amount) {
  const Key k = key(source);
  auto it = current_.find(k);
  if (it == current_.end()) {
    if (current_.size() >= std::max<std::size_t>(settings_.capacity / 2, 1)) {
      old_ = std::move(current_);
      current_.clear();
    }
    if (auto o = old_.find(k); o != old_.end()) {
      it = current_.emplace(k, o->second).first;
      old_.erase(o);
    } else {
      it = current_.emplace(k, TokenBucket(settings_.rate, settings_.burst, now)).first;
    }
  }
  return it->second.take(now, amount);
}

}  // namespace p2p
