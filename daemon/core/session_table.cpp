#include "daemon/core/session_table.hpp"

namespace p2p::core {

Time rekey_time(const crypto::TransportSession& s) {
  return s.created() + (s.is_initiator() ? crypto::kRekeyAfterTime
                                         : crypto::kRejectAfterTime - crypto::kKeepaliveTimeout -
                                               crypto::kRekeyTimeout);
}

std::uint32_t SessionTable::allocate(SessionOwner owner) {
  for (;;) {
    auto v = static_cast<std::uint32_t>(fx_.random_u64());
    if (v != 0 && index_.emplace(v, owner).second) return v;
  }
}

std::optional<SessionOwner> SessionTable::find(std::uint32_t index) const {
  if (index != 0 && index == last_index_) return last_owner_;
  ++hashed_;
  auto it = index_.find(index);
  if (it == index_.end()) return std::nullopt;
  last_index_ = index;
  last_owner_ = it->second;
  return it->second;
}

Time SessionSlots::begin(SessionTable& table, PendingHandshake hs) {
  if (pending) {
    hs.first_try = pending->first_try;
    table.release(pending->local_index);
  }
  pending.emplace(std::move(hs));
  return pending->first_try;
}

void SessionSlots::abandon_pending(SessionTable& table) {
  if (pending) table.release(pending->local_index);
  pending.reset();
}

void SessionSlots::install(SessionTable& table, crypto::Session s) {
  if (previous) table.release(previous->local_index);
  previous = std::move(current);
  current.emplace(std::move(s));
}

bool SessionSlots::expire(SessionTable& table, Time now) {
  if (previous && previous->transport.is_expired(now)) {
    table.release(previous->local_index);
    previous.reset();
  }
  if (current && current->transport.is_expired(now)) {
    table.release(current->local_index);
    current.reset();
    return true;
  }
  return false;
}

void SessionSlots::clear(SessionTable& table) {
  abandon_pending(table);
  drop_sessions(table);
}

void SessionSlots::drop_sessions(SessionTable& table) {
  for (auto* s : {&current, &previous}) {
    if (*s) table.release((*s)->local_index);
    s->reset();
  }
}

Expected<std::size_t, SessionSlots::OpenError> SessionSlots::open(Time now,
                                                                  const wire::DataHeader& h,
                                                                  std::span<std::uint8_t> body) {
  for (auto* s : {&current, &previous}) {
    if (!*s || (*s)->local_index != h.receiver_index) continue;
    auto n = (*s)->transport.decrypt(now, h.counter, body);
    if (!n) return fail(OpenError::kFailed);
    return *n;
  }
  return fail(OpenError::kNotOurs);
}

Expected<void, SessionSlots::OpenError> SessionSlots::open_relay(Time now,
                                                                 const wire::RelayFrame& f,
                                                                 std::span<std::uint8_t> frame) {
  for (auto* s : {&current, &previous}) {
    if (!*s || (*s)->local_index != f.receiver_index) continue;
    if (!(*s)->open_relay(now, f.counter, frame)) return fail(OpenError::kFailed);
    return {};
  }
  return fail(OpenError::kNotOurs);
}

std::optional<std::size_t> SessionSlots::prepare_open(Time now, const wire::DataHeader& h,
                                                      std::span<std::uint8_t> body,
                                                      crypto::CryptoJobs& jobs) const {
  for (const auto* s : {&current, &previous}) {
    if (!*s || (*s)->local_index != h.receiver_index) continue;
    if (!(*s)->transport.check_open(now, h.counter, body.size())) return std::nullopt;
    return jobs.add(crypto::CryptoJob::Kind::kOpen, (*s)->transport.recv_key(), h.counter, body);
  }
  return std::nullopt;
}

Expected<std::size_t, SessionSlots::OpenError> SessionSlots::finish_open(
    Time now, const wire::DataHeader& h, const crypto::CryptoJob& opened) {
  for (auto* s : {&current, &previous}) {
    if (!*s || (*s)->local_index != h.receiver_index) continue;
    if (!(*s)->transport.accept_opened(now, h.counter, opened.ok)) return fail(OpenError::kFailed);
    return opened.length;
  }
  return fail(OpenError::kNotOurs);
}

std::span<const std::uint8_t> SessionSlots::seal_initiation(Time now, wire::Pattern p,
                                                            std::span<const std::uint8_t> noise,
                                                            std::size_t padded_size,
                                                            const crypto::GuardKeys& keys) {
  wire::build_handshake_init(sent_init, p, pending ? pending->local_index : 0, noise, padded_size);
  crypto::stamp_macs(sent_init, keys, cookie ? cookie->fresh(now) : std::nullopt);
  return sent_init;
}

std::optional<std::span<const std::uint8_t>> SessionSlots::on_cookie_reply(
    Time now, const wire::CookieReply& r, const crypto::GuardKeys& keys) {
  if (!pending || pending->local_index != r.receiver_index || sent_init.empty())
    return std::nullopt;
  auto c = crypto::open_cookie_reply(keys, r, sent_init);
  if (!c) return std::nullopt;
  const bool known = cookie && cookie->cookie == *c && cookie->fresh(now);
  cookie = crypto::HeldCookie{*c, now};
  if (known) return std::nullopt;
  crypto::stamp_macs(sent_init, keys, *c);
  return sent_init;
}

}  // namespace p2p::core
