#include "crypto/handshake_guard.hpp"

#include <sodium.h>

#include <algorithm>
#include <string_view>
#include <variant>

#include "net/byte_io.hpp"

namespace p2p::crypto {
namespace {

using Bytes = std::span<const std::uint8_t>;

MacKey label_hash(std::string_view label, Bytes identity) {
  MacKey k{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, k.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                            label.size());
  crypto_generichash_update(&st, identity.data(), identity.size());
  crypto_generichash_final(&st, k.data(), k.size());
  return k;
}

void mac(std::span<std::uint8_t> out, Bytes key, Bytes data) {
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
}

bool mac_equals(Bytes key, Bytes data, Bytes expected) {
  std::array<std::uint8_t, wire::kMacSize> m{};
  mac(m, key, data);
  return sodium_memcmp(m.data(), expected.data(), m.size()) == 0;
}

std::uint64_t salt(const HandshakeGuard::FillRandom& random) {
  std::uint64_t v = 0;
  random(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
  return v;
}

std::size_t mac1_offset(Bytes init) {
  return init.size() - wire::kInitTrailerSize;
}
std::size_t mac2_offset(Bytes init) {
  return init.size() - wire::kMacSize;
}

}  // namespace

GuardKeys GuardKeys::derive(std::span<const std::uint8_t, 32> identity) {
  return GuardKeys{label_hash("mac1----", identity), label_hash("cookie--", identity)};
}

void stamp_macs(std::span<std::uint8_t> init, const GuardKeys& keys,
                const std::optional<Cookie>& cookie) {
  if (init.size() < wire::kInitHeaderSize + wire::kInitTrailerSize) return;
  const auto m1 = init.subspan(mac1_offset(init), wire::kMacSize);
  mac(m1, keys.mac1, init.first(mac1_offset(init)));
  const auto m2 = init.subspan(mac2_offset(init), wire::kMacSize);
  if (cookie) {
    mac(m2, *cookie, init.first(mac2_offset(init)));
  } else {
    std::fill(m2.begin(), m2.end(), 0);
  }
}

bool mac1_ok(const GuardKeys& keys, std::span<const std::uint8_t> init) {
  if (init.size() < wire::kInitHeaderSize + wire::kInitTrailerSize) return false;
  return mac_equals(keys.mac1, init.first(mac1_offset(init)),
                    init.subspan(mac1_offset(init), wire::kMacSize));
}

std::optional<Cookie> open_cookie_reply(const GuardKeys& keys, const wire::CookieReply& reply,
                                        std::span<const std::uint8_t> sent_init) {
  if (sent_init.size() < wire::kInitHeaderSize + wire::kInitTrailerSize) return std::nullopt;
  Cookie c{};
  const auto mac1 = sent_init.subspan(mac1_offset(sent_init), wire::kMacSize);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(c.data(), nullptr, nullptr, reply.sealed.data(),
                                                 reply.sealed.size(), mac1.data(), mac1.size(),
                                                 reply.nonce.data(), keys.cookie.data()) != 0)
    return std::nullopt;
  return c;
}

void count_dropped_init(spdlog::logger& log, Time now, std::uint64_t& counter, DropReason& pace,
                        std::string_view why) {
  ++counter;
  if (auto n = pace.hit(now))
    log.warn("dropped {} handshake initiations ({}) in the last 10s", *n, why);
}

HandshakeGuard::HandshakeGuard(GuardKeys keys, GuardSettings settings, FillRandom random, Time now)
    : keys_(keys),
      settings_(settings),
      random_(std::move(random)),
      rotated_(now),
      global_(settings.global, now),
      unproven_(settings.per_address, settings.per_prefix, settings.table_slots, salt(random_)),
      proven_(settings.proven_per_address, settings.proven_per_prefix, settings.table_slots,
              salt(random_)) {
  random_(secret_.span());
  random_(previous_.span());
}

Cookie HandshakeGuard::cookie_for(const Endpoint& from, const Wiped<32>& secret) const {
  // [family][address][port]: the source as the responder saw it.
  std::array<std::uint8_t, 1 + 16 + 2> src{};
  std::size_t n = 0;
  if (const auto* v4 = std::get_if<Ipv4>(&from.address)) {
    src[n++] = 4;
    for (int i = 3; i >= 0; --i) src[n++] = static_cast<std::uint8_t>(v4->value >> (8 * i));
  } else {
    src[n++] = 6;
    for (auto b : std::get<Ipv6>(from.address).bytes) src[n++] = b;
  }
  src[n++] = static_cast<std::uint8_t>(from.port >> 8);
  src[n++] = static_cast<std::uint8_t>(from.port);
  Cookie c{};
  mac(c, secret.span(), std::span(src).first(n));
  return c;
}

bool HandshakeGuard::mac2_ok(Time now, const Endpoint& from, std::span<const std::uint8_t> d) {
  if (now - rotated_ >= kCookieSecretLifetime) {
    previous_ = std::move(secret_);
    random_(secret_.span());
    rotated_ = now;
  }
  const auto mac2 = d.subspan(mac2_offset(d), wire::kMacSize);
  if (sodium_is_zero(mac2.data(), mac2.size())) return false;
  const auto covered = d.first(mac2_offset(d));
  for (const Wiped<32>* s : {&secret_, &previous_}) {
    const Cookie c = cookie_for(from, *s);
    if (mac_equals(c, covered, mac2)) return true;
  }
  return false;
}

void HandshakeGuard::make_reply(const Endpoint& from, const wire::HandshakeInit& init,
                                std::vector<std::uint8_t>& reply) {
  std::array<std::uint8_t, wire::kCookieNonceSize> nonce{};
  random_(nonce);
  const Cookie c = cookie_for(from, secret_);
  std::array<std::uint8_t, wire::kCookieSize + wire::kTagSize> sealed{};
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed.data(), nullptr, c.data(), c.size(),
                                             init.mac1.data(), init.mac1.size(), nullptr,
                                             nonce.data(), keys_.cookie.data());
  wire::build_cookie_reply(reply, init.sender_index, nonce, sealed);
}

HandshakeGuard::Verdict HandshakeGuard::check(Time now, const Endpoint& from,
                                              std::span<const std::uint8_t> d,
                                              const wire::HandshakeInit& init, bool under_load,
                                              std::vector<std::uint8_t>& reply) {
  reply.clear();
  if (d.size() < wire::kMinInitSize) return Verdict::kUnpadded;
  if (!mac1_ok(keys_, d)) return Verdict::kBadMac1;
  if (mac2_ok(now, from, d))
    return proven_.allow(now, from.address) ? Verdict::kAccept : Verdict::kRateLimited;
  // Both budgets are charged, so a flood keeps the responder under load while it lasts.
  const bool over_budget = !global_.take(now);
  const bool source_ok = unproven_.allow(now, from.address);
  if (!under_load && !over_budget && source_ok) return Verdict::kAccept;
  make_reply(from, init, reply);
  return Verdict::kCookie;
}

}  // namespace p2p::crypto
