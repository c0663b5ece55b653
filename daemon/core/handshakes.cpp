#include "daemon/core/handshakes.hpp"

#include <algorithm>

namespace p2p::core {
namespace {

// The handshake datagram `body` in a buffer with room for the relay's wrapping around it.
PacketView with_headroom(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> body) {
  out.assign(kHeadroom, 0);
  out.insert(out.end(), body.begin(), body.end());
  out.resize(out.size() + kTailroom);
  return PacketView(out.data(), out.size(), kHeadroom, body.size());
}

}  // namespace

PeerHandshakes::PeerHandshakes(const crypto::Identity& self, crypto::CertificateVerifier verify,
                               SessionTable& table, NodeEffects& fx, std::size_t replay_memory)
    : self_(self),
      verify_(std::move(verify)),
      table_(table),
      fx_(fx),
      replay_memory_(std::max<std::size_t>(1, replay_memory)) {}

std::optional<PacketView> PeerHandshakes::create_initiation(Time now, Peer& p,
                                                            std::vector<std::uint8_t>& out) {
  if (!p.cert) return std::nullopt;
  auto hs = crypto::AuthHandshake::initiator(crypto::AuthHandshake::Kind::kIK, self_, verify_,
                                             p.cert->public_key);
  auto msg = hs.write(fx_.unix_nanos());
  if (!msg) return std::nullopt;
  auto index = table_.allocate(SessionOwner{false, p.vip.value});
  p.sessions.begin(table_, PendingHandshake{std::move(hs), index, now, now});
  // The answer: header, e, and the encrypted payload carrying the responder's certificate.
  const std::size_t answer =
      12 + crypto::noise::kDhLen + crypto::noise::kTagLen + 11 + crypto::encode(*p.cert).size();
  auto body = p.sessions.seal_initiation(now, wire::Pattern::kIK, *msg, answer,
                                         crypto::GuardKeys::derive(p.cert->public_key));
  return with_headroom(out, body);
}

crypto::HandshakeGuard::Verdict PeerHandshakes::screen(Time now, const Endpoint& from,
                                                       bool via_relay,
                                                       std::span<const std::uint8_t> d,
                                                       const wire::HandshakeInit& init,
                                                       std::vector<std::uint8_t>& reply) {
  if (!guard_) {
    guard_.emplace(
        crypto::GuardKeys::derive(self_.key.public_key), crypto::GuardSettings{},
        [this](std::span<std::uint8_t> b) { fx_.fill_random(b); }, now);
  }
  if (via_relay) {
    reply.clear();
    if (d.size() < wire::kMinInitSize) return crypto::HandshakeGuard::Verdict::kUnpadded;
    if (!crypto::mac1_ok(guard_->keys(), d)) return crypto::HandshakeGuard::Verdict::kBadMac1;
    return crypto::HandshakeGuard::Verdict::kAccept;
  }
  return guard_->check(now, from, d, init, false, reply);
}

std::optional<PacketView> PeerHandshakes::consume_cookie(Time now, Peer& p,
                                                         const wire::CookieReply& r,
                                                         std::vector<std::uint8_t>& out) {
  if (!p.cert) return std::nullopt;
  auto again = p.sessions.on_cookie_reply(now, r, crypto::GuardKeys::derive(p.cert->public_key));
  if (!again) return std::nullopt;
  return with_headroom(out, *again);
}

Expected<PeerHandshakes::Initiation, std::string> PeerHandshakes::consume_initiation(
    const wire::HandshakeInit& init) {
  if (init.pattern != wire::Pattern::kIK) return fail(std::string("not an IK initiation"));
  auto hs = crypto::AuthHandshake::responder(crypto::AuthHandshake::Kind::kIK, self_, verify_);
  if (auto r = hs.read(init.noise); !r) return fail(r.error().reason);
  auto ts = hs.initiator_timestamp().value_or(0);
  return Initiation{std::move(hs), init.sender_index, ts};
}

Expected<PacketView, PeerHandshakes::Refusal> PeerHandshakes::create_response(
    Time now, Peer& p, Initiation& in, std::vector<std::uint8_t>& out) {
  const auto& cert = in.certificate();
  // Two valid certificates for one address: the newer one wins.
  if (p.cert && p.cert->public_key != cert.public_key && cert.not_before < p.cert->not_before)
    return fail(Refusal::kStaleCertificate);
  auto last = last_timestamp_.find(cert.public_key);
  if (last != last_timestamp_.end() && in.timestamp <= last->second.timestamp)
    return fail(Refusal::kReplay);
  if (p.cert && p.cert->public_key == cert.public_key && in.timestamp <= p.last_init_timestamp)
    return fail(Refusal::kReplay);
  auto msg = in.handshake.write(fx_.unix_nanos());
  if (!msg) return fail(Refusal::kFailed);
  auto keys = in.handshake.split();
  if (!keys) return fail(Refusal::kFailed);
  remember(cert.public_key, in.timestamp);
  p.last_init_timestamp = in.timestamp;
  auto index = table_.allocate(SessionOwner{false, p.vip.value});
  p.sessions.install(
      table_, crypto::Session{crypto::TransportSession(std::move(keys).value(), now, false), index,
                              in.sender_index});
  std::vector<std::uint8_t> body;
  wire::build_handshake_resp(body, index, in.sender_index, *msg);
  return with_headroom(out, body);
}

Expected<void, std::string> PeerHandshakes::consume_response(Time now, Peer& p,
                                                             const wire::HandshakeResp& r) {
  auto& pending = p.sessions.pending;
  if (!pending || pending->local_index != r.receiver_index)
    return fail(std::string("not the handshake in progress"));
  auto& hs = pending->handshake;
  if (auto ok = hs.read(r.noise); !ok) return fail(ok.error().reason);
  auto keys = hs.split();
  if (!keys) return fail(std::string("split failed"));
  const auto index = pending->local_index;
  pending.reset();  // its index now names the session
  p.sessions.install(
      table_, crypto::Session{crypto::TransportSession(std::move(keys).value(), now, true), index,
                              r.sender_index});
  return {};
}

void PeerHandshakes::remember(const crypto::PublicKey& key, std::uint64_t timestamp) {
  auto [it, fresh] = last_timestamp_.try_emplace(key, Accepted{timestamp, next_order_});
  if (!fresh) {
    by_order_.erase(it->second.order);
    it->second = Accepted{timestamp, next_order_};
  }
  by_order_.emplace(next_order_++, key);
  while (last_timestamp_.size() > replay_memory_) {
    auto oldest = by_order_.begin();
    last_timestamp_.erase(oldest->second);
    by_order_.erase(oldest);
  }
}

}  // namespace p2p::core
