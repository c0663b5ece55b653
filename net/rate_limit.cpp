#include "net/rate_limit.hpp"

#include <algorithm>
#include <utility>
#include <variant>

namespace p2p {
namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void TokenBucket::refill(Time now) {
  if (last_ == Time::min()) last_ = now;
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(spec_.burst, tokens_ + elapsed * spec_.per_second);
  last_ = now;
}

bool TokenBucket::ready(Time now, double n) {
  refill(now);
  return tokens_ >= n;
}

bool TokenBucket::take(Time now, double n) {
  refill(now);
  if (tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

bool TokenBucket::idle(Time now) const {
  if (last_ == Time::min() || now <= last_) return tokens_ >= spec_.burst;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  return tokens_ + elapsed * spec_.per_second >= spec_.burst;
}

SourceLimiter::SourceLimiter(RateSpec per_address, RateSpec per_prefix, std::size_t slots,
                             std::uint64_t salt)
    : address_(per_address),
      prefix_(per_prefix),
      slots_(std::max<std::size_t>(slots, 2)),
      salt_(salt) {}

std::uint64_t SourceLimiter::hash(std::uint64_t kind, const std::uint8_t* bytes,
                                  std::size_t n) const {
  std::uint64_t h = mix(salt_ ^ kind);
  for (std::size_t i = 0; i < n; ++i) h = mix(h ^ (std::uint64_t{bytes[i]} << (8 * (i % 8))));
  return h | 1;  // 0 marks an empty slot
}

SourceLimiter::Slot& SourceLimiter::find(Time now, std::uint64_t key, RateSpec spec) {
  Slot& a = slots_[key % slots_.size()];
  Slot& b = slots_[(key >> 32) % slots_.size()];
  if (a.key == key) return a;
  if (b.key == key) return b;
  Slot* victim = &a;
  if (a.key != 0 && (b.key == 0 || (!a.bucket.idle(now) &&
                                    (b.bucket.idle(now) || b.bucket.last() < a.bucket.last()))))
    victim = &b;
  *victim = Slot{key, TokenBucket(spec, now)};
  return *victim;
}

bool SourceLimiter::allow(Time now, const IpAddress& source, double n) {
  std::uint64_t addr_key = 0, prefix_key = 0;
  if (const auto* v4 = std::get_if<Ipv4>(&source)) {
    const std::uint8_t b[4] = {
        static_cast<std::uint8_t>(v4->value >> 24), static_cast<std::uint8_t>(v4->value >> 16),
        static_cast<std::uint8_t>(v4->value >> 8), static_cast<std::uint8_t>(v4->value)};
    addr_key = hash(4, b, 4);
    prefix_key = hash(24, b, 3);
  } else {
    const auto& b = std::get<Ipv6>(source).bytes;
    addr_key = hash(6, b.data(), 16);
    prefix_key = hash(64, b.data(), 8);
  }
  Slot& addr = find(now, addr_key, address_);
  if (prefix_.burst <= 0) return addr.bucket.take(now, n);
  Slot& prefix = find(now, prefix_key, prefix_);
  if (&addr == &prefix) return addr.bucket.take(now, n);  // a collision of the two: one bucket
  // Both or neither.
  TokenBucket a = addr.bucket, p = prefix.bucket;
  if (!a.take(now, n) || !p.take(now, n)) return false;
  addr.bucket = a;
  prefix.bucket = p;
  return true;
}

std::optional<std::uint64_t> DropReason::hit(Time now) {
  ++total_;
  ++unreported_;
  if (reported_ && now < next_line_) return std::nullopt;
  reported_ = true;
  next_line_ = now + kInterval;
  return std::exchange(unreported_, 0);
}

}  // namespace p2p
