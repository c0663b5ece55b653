#include "coordinator/core/coordinator.hpp"

#include <algorithm>

#include "crypto/session.hpp"
#include "net/log_value.hpp"
#include "net/packet.hpp"

namespace p2p::coord {
namespace {

using namespace std::chrono_literals;
constexpr Duration kPendingTimeout = 10s;

}  // namespace

struct Coordinator::Pending {
  crypto::AuthHandshake handshake;
  std::uint32_t remote_index;
  Carrier from;
  Time started;
};

Coordinator::Coordinator(crypto::Identity identity, crypto::CaCertificate ca,
                         CoordinatorSettings settings, std::optional<wire::stun::Server> stun,
                         CoordinatorEffects& effects, std::shared_ptr<spdlog::logger> log)
    : identity_(std::move(identity)),
      ca_(std::move(ca)),
      settings_(std::move(settings)),
      stun_(std::move(stun)),
      fx_(effects),
      log_(std::move(log)),
      registry_(settings_.node_timeout, settings_.max_nodes),
      // Per address, and four times that per /24 or /64 (an IPv6 host picks any address in
      // its /64).
      stun_limiter_(RateSpec{double(settings_.stun_rate), double(settings_.stun_burst)},
                    RateSpec{4.0 * double(settings_.stun_rate), 4.0 * double(settings_.stun_burst)},
                    settings_.stun_sources, random_salt(effects)),
      tcp_punches_(settings_.max_tcp_punches, settings_.tcp_punch_timeout),
      revocations_(settings_.revoked) {
  if (settings_.relay_burst == 0) settings_.relay_burst = settings_.relay_rate;
  scratch_.reserve(2048);
}

Coordinator::~Coordinator() = default;

std::uint64_t Coordinator::random_salt(CoordinatorEffects& fx) {
  std::uint64_t salt = 0;
  fx.fill_random({reinterpret_cast<std::uint8_t*>(&salt), sizeof salt});
  return salt;
}

void Coordinator::on_udp(Time now, ServerSocket socket, const Endpoint& from,
                         PacketView packet) noexcept {
  on_carried(now, socket, Carrier{from, 0}, packet);
}

void Coordinator::on_tcp(Time now, ConnectionId connection, const Endpoint& from,
                         PacketView frame) noexcept {
  on_carried(now, ServerSocket::kPrimary, Carrier{from, connection}, frame);
}

void Coordinator::on_carried(Time now, ServerSocket socket, const Carrier& from,
                             PacketView packet) noexcept {
  // The last resort: nothing a datagram causes may stop the coordinator.
  try {
    on_datagram(now, socket, from, packet);
  } catch (const std::exception& e) {
    ++counters_.internal_error;
    if (auto n = init_log_.internal.hit(now))
      log_->error("dropped {} datagrams on an internal error in the last 10s: {}", *n, e.what());
  } catch (...) {
    ++counters_.internal_error;
  }
}

void Coordinator::on_tcp_closed(ConnectionId connection) {
  tcp_nodes_.erase(connection);
}

bool Coordinator::tcp_authenticated(ConnectionId connection) const {
  auto it = tcp_nodes_.find(connection);
  if (it == tcp_nodes_.end()) return false;
  const Entry* e = registry_.by_key(it->second);
  return e && e->tcp == connection;
}

void Coordinator::send_to(const Carrier& to, std::span<const std::uint8_t> datagram) {
  if (to.tcp != 0) {
    fx_.send_tcp(to.tcp, datagram);
  } else {
    fx_.send_udp(ServerSocket::kPrimary, to.endpoint, datagram);
  }
}

void Coordinator::on_datagram(Time now, ServerSocket socket, const Carrier& from,
                              PacketView packet) {
  auto d = packet.span();
  const auto kind = wire::classify(d);
  if (kind == wire::DatagramKind::kStun) {
    if (from.tcp == 0) on_stun(now, socket, from.endpoint, packet);  // STUN is UDP's only
    return;
  }
  if (socket != ServerSocket::kPrimary) return;  // only STUN on the discovery sockets
  switch (kind) {
    case wire::DatagramKind::kHandshakeInit: on_init(now, from, packet); break;
    case wire::DatagramKind::kHandshakeFinal: on_final(now, from, packet); break;
    case wire::DatagramKind::kData: on_data(now, from, packet); break;
    case wire::DatagramKind::kRelay: on_relay(now, from, packet); break;
    case wire::DatagramKind::kStun:
    case wire::DatagramKind::kHandshakeResp:
    case wire::DatagramKind::kCookieReply:
    case wire::DatagramKind::kRelayed:
    case wire::DatagramKind::kUnknown: ++counters_.malformed; break;
  }
}

void Coordinator::on_init(Time now, const Carrier& from, PacketView d) {
  auto init = wire::parse_handshake_init(d.span());
  if (!init || init->pattern != wire::Pattern::kXX) {
    ++counters_.malformed;
    return;
  }
  // The cheap checks first: padding, mac1 (keyed by the network's CA key), the per-source
  // buckets and, under load, a cookie instead of a Diffie-Hellman.
  if (!guard_) {
    guard_.emplace(
        crypto::GuardKeys::derive(ca_.public_key), crypto::GuardSettings{},
        [this](std::span<std::uint8_t> b) { fx_.fill_random(b); }, now);
  }
  const bool under_load = pending_.size() >= settings_.max_pending_handshakes / 4;
  using Verdict = crypto::HandshakeGuard::Verdict;
  switch (guard_->check(now, from.endpoint, d.span(), *init, under_load, guard_reply_)) {
    case Verdict::kAccept: break;
    case Verdict::kUnpadded:
      return crypto::count_dropped_init(*log_, now, counters_.init_unpadded, init_log_.unpadded,
                                        "unpadded");
    case Verdict::kBadMac1:
      return crypto::count_dropped_init(*log_, now, counters_.init_bad_mac1, init_log_.bad_mac1,
                                        "bad mac1");
    case Verdict::kRateLimited:
      return crypto::count_dropped_init(*log_, now, counters_.init_rate_limited,
                                        init_log_.rate_limited, "rate limited");
    case Verdict::kCookie:
      ++counters_.cookies_sent;
      send_to(from, guard_reply_);
      return;
  }
  if (pending_.size() >= settings_.max_pending_handshakes)
    return crypto::count_dropped_init(*log_, now, counters_.init_pending_full,
                                      init_log_.pending_full, "too many handshakes in progress");
  auto now_unix = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  auto hs = crypto::AuthHandshake::responder(
      crypto::AuthHandshake::Kind::kXX, identity_, [this, now_unix](const crypto::Certificate& c) {
        return crypto::verify(c, ca_, now_unix,
                              crypto::VerifyPolicy{crypto::Role::node, revocations_.all()});
      });
  if (!hs.read(init->noise)) {
    ++counters_.malformed;
    return;
  }
  auto msg = hs.write(fx_.unix_nanos());
  if (!msg) return;
  auto index = new_index();
  std::vector<std::uint8_t> out;
  wire::build_handshake_resp(out, index, init->sender_index, *msg);
  // Never answer an unproven source with more than it sent.
  if (out.size() > d.size())
    return crypto::count_dropped_init(*log_, now, counters_.init_unpadded, init_log_.unpadded,
                                      "our answer would be larger than the initiation");
  pending_.emplace(
      index, std::make_unique<Pending>(Pending{std::move(hs), init->sender_index, from, now}));
  pending_deadlines_.emplace_back(now + kPendingTimeout, index);
  send_to(from, out);
}

void Coordinator::on_final(Time now, const Carrier& from, PacketView d) {
  auto fin = wire::parse_handshake_final(d.span());
  if (!fin) {
    ++counters_.malformed;
    return;
  }
  auto it = pending_.find(fin->receiver_index);
  if (it == pending_.end()) return;
  auto pending = std::move(it->second);
  pending_.erase(it);
  auto& hs = pending->handshake;
  auto ok = hs.read(fin->noise);
  if (!ok) {
    ++counters_.handshakes_refused;
    log_->warn("node handshake from endpoint={} refused: {}", from.endpoint.to_string(),
               ok.error().reason);
    // A certificate refused on the final message: tell the node why, on the channel it
    // authenticated, then forget it.
    if (auto keys = hs.split_after_rejection()) {
      crypto::Session s{crypto::TransportSession(std::move(*keys), now, false), 0,
                        pending->remote_index};
      auto code = wire::RefuseCode::kBadCertificate;
      if (ok.error().cert_error && ok.error().cert_error->kind == crypto::CertErrorKind::revoked)
        code = wire::RefuseCode::kRevoked;
      PacketView v = wire::encode_control_packet(scratch_, wire::Refused{code, ok.error().reason});
      if (s.seal(now, v)) send_to(from, v.span());
    }
    return;
  }
  auto keys = hs.split();
  if (!keys) return;
  establish(now, from, *hs.peer_certificate(),
            crypto::Session{crypto::TransportSession(std::move(keys).value(), now, false),
                            fin->receiver_index, pending->remote_index});
}

void Coordinator::establish(Time now, const Carrier& from, const crypto::Certificate& cert,
                            crypto::Session session) {
  Entry* e = registry_.by_key(cert.public_key);
  if (!e) {
    e = registry_.add(
        cert, from.endpoint, now,
        TokenBucket(double(settings_.relay_rate), double(settings_.relay_burst), now),
        TokenBucket(double(settings_.lookup_rate), double(settings_.lookup_burst), now),
        TokenBucket(double(settings_.introduction_rate), double(settings_.introduction_burst),
                    now));
    if (!e) {
      ++counters_.registry_full;
      if (auto n = registry_full_log_.hit(now))
        log_->warn(
            "registry full ({} nodes); refused {} registrations in the last 10s, last node={}",
            registry_.size(), *n, cert.name);
      return;
    }
  }
  registry_.replace_certificate(*e, cert);  // a re-issued certificate for the same key
  e->observed = from.endpoint;
  e->tcp = from.tcp;
  if (from.tcp != 0) tcp_nodes_.insert_or_assign(from.tcp, cert.public_key);
  e->last_seen = now;
  registry_.add_session(*e, std::move(session));
  log_->debug("node={} session established endpoint={} carrier={}", cert.name,
              from.endpoint.to_string(), from.tcp != 0 ? "tcp" : "udp");
}

void Coordinator::on_data(Time now, const Carrier& from, PacketView d) {
  auto h = wire::parse_data(d.span());
  if (!h) {
    ++counters_.malformed;
    return;
  }
  Entry* found = registry_.by_index(h->receiver_index);
  if (!found) return;
  Entry& e = *found;
  auto* keys = session_for(e, h->receiver_index);
  if (!keys) return;
  PacketView body = d.sub(wire::kDataHeaderSize, d.size() - wire::kDataHeaderSize);
  auto n = keys->transport.decrypt(now, h->counter, body.span());
  if (!n) return;
  authenticated(now, e, from);
  if (*n == 0) return;  // keepalive
  auto m = wire::decode_control(body.span().first(*n));
  if (!m) {
    ++counters_.malformed;
    log_->warn("node={} sent a malformed control message", e.cert.name);
    return;
  }
  on_control(now, e, *m);
}

crypto::Session* Coordinator::session_for(Entry& e, std::uint32_t index) {
  if (e.current && e.current->local_index == index) return &*e.current;
  if (e.previous && e.previous->local_index == index) return &*e.previous;
  return nullptr;
}

void Coordinator::authenticated(Time now, Entry& e, const Carrier& from) {
  e.last_seen = now;
  if (e.observed == from.endpoint && e.tcp == from.tcp) return;
  log_->info("node={} moved endpoint={} carrier={} (was {})", e.cert.name,
             from.endpoint.to_string(), from.tcp != 0 ? "tcp" : "udp", e.observed.to_string());
  e.observed = from.endpoint;
  e.tcp = from.tcp;
  if (from.tcp != 0) tcp_nodes_.insert_or_assign(from.tcp, e.cert.public_key);
}

void Coordinator::on_relay(Time now, const Carrier& from, PacketView d) {
  auto f = wire::parse_relay(d.span());
  if (!f) {
    ++counters_.malformed;
    return;
  }
  Entry* found = registry_.by_index(f->receiver_index);
  if (!found) return;
  Entry& e = *found;
  auto* keys = session_for(e, f->receiver_index);
  if (!keys || !keys->open_relay(now, f->counter, d.span())) return;
  authenticated(now, e, from);
  const std::size_t inner = f->inner.size();
  auto refuse = [&] {
    ++e.relay_dropped;
    ++counters_.relay_dropped;
  };
  if (!settings_.relay_enabled || !e.registered) return refuse();
  Entry* target = registry_.by_vip(Ipv4{f->vip});
  if (!target || !target->current || target == &e) return refuse();
  if (!e.relay_bucket.take(now, inner)) return refuse();
  // The same buffer, rewrapped for the target: the inner datagram is neither copied nor
  // opened.
  PacketView v = d.sub(wire::kRelayHeaderSize, inner);
  if (!target->current->seal_relay(now, v, wire::PacketType::kRelayed, e.cert.vip.address.value))
    return;
  e.relayed_bytes += inner;
  counters_.relayed_bytes += inner;
  ++counters_.relayed_packets;
  send_to(Carrier{target->observed, target->tcp}, v.span());
}

void Coordinator::on_control(Time now, Entry& e, const wire::ControlMessage& m) {
  if (auto* r = std::get_if<wire::Register>(&m)) {
    bool first = !e.registered;
    if (Entry* other = registry_.register_node(e)) {
      log_->warn("node={} refused: vip={} is held by node={}", e.cert.name,
                 e.cert.vip.address.to_string(), other->cert.name);
      send_control(now, e,
                   wire::Refused{wire::RefuseCode::kAddressInUse,
                                 "virtual IP " + e.cert.vip.address.to_string() +
                                     " is already registered by another key"});
      return;
    }
    e.local_endpoints = r->local_endpoints;
    e.nat = r->nat;
    e.mapped = r->mapped;
    if (first)
      log_->info("node={} vip={} registered endpoint={} nat={}", e.cert.name,
                 e.cert.vip.to_string(), e.observed.to_string(),
                 log_value(wire::to_string(e.nat.type)));
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(settings_.register_interval);
    send_control(now, e, wire::RegisterOk{e.observed, static_cast<std::uint16_t>(secs.count())});
    return;
  }
  if (auto* ping = std::get_if<wire::Ping>(&m)) {
    // Liveness and RTT for the node: the same size back, on its authenticated session, to
    // the endpoint that session last came from; no state kept.
    send_control(now, e, wire::Pong{ping->id});
    return;
  }
  if (!e.registered) {
    send_control(now, e, wire::Refused{wire::RefuseCode::kNotRegistered, "register first"});
    return;
  }
  if (auto* q = std::get_if<wire::PeerRequest>(&m)) {
    on_peer_request(now, e, *q);
    return;
  }
  if (auto* t = std::get_if<wire::TcpPunchRequest>(&m)) {
    on_tcp_punch_request(now, e, *t);
    return;
  }
  if (std::holds_alternative<wire::Goodbye>(m)) {
    remove(e, "said goodbye");
    return;
  }
  if (auto* h = std::get_if<wire::RevocationHave>(&m)) {
    on_revocation_have(now, e, *h);
    return;
  }
  log_->debug("node={} sent unexpected {}", e.cert.name, wire::control_name(m));
}

void Coordinator::on_peer_request(Time now, Entry& e, const wire::PeerRequest& q) {
  if (!e.lookup_bucket.take(now, 1)) {
    ++e.lookups_refused;
    ++counters_.lookups_refused;
    send_control(now, e, wire::PeerUnknown{q.request_id, "rate limited: too many lookups"});
    return;
  }
  Entry* target = nullptr;
  if (auto* v = std::get_if<Ipv4>(&q.target)) {
    target = registry_.by_vip(*v);
  } else {
    target = registry_.by_name(std::get<std::string>(q.target));
  }
  if (!target || target == &e) {
    send_control(now, e, wire::PeerUnknown{q.request_id, "no such node is registered"});
    return;
  }
  if (!target->introduction_bucket.take(now, 1)) {
    ++target->introductions_refused;
    ++counters_.introductions_refused;
    send_control(
        now, e, wire::PeerUnknown{q.request_id, "rate limited: that node is introduced too often"});
    return;
  }
  // Both sides hear of each other at the same moment, so they punch together.
  introduce(now, e, *target, q.request_id, true);
  introduce(now, *target, e, 0, false);
  log_->debug("introduced node={} and node={}", e.cert.name, target->cert.name);
}

void Coordinator::introduce(Time now, Entry& to, const Entry& about, std::uint32_t request_id,
                            bool initiate) {
  send_control(now, to,
               wire::Introduce{request_id, crypto::encode(about.cert), about.observed,
                               about.local_endpoints, about.nat, initiate, about.mapped});
}

void Coordinator::send_control(Time now, Entry& e, const wire::ControlMessage& m) {
  if (!e.current) return;
  PacketView v = wire::encode_control_packet(scratch_, m);
  if (e.current->seal(now, v)) send_to(Carrier{e.observed, e.tcp}, v.span());
}

void Coordinator::remove(Entry& e, const char* why) {
  log_->info("node={} vip={} removed: {}", e.cert.name, e.cert.vip.address.to_string(), why);
  registry_.remove(e);
}

void Coordinator::on_tick(Time now) {
  while (!pending_deadlines_.empty() && pending_deadlines_.front().first <= now) {
    auto it = pending_.find(pending_deadlines_.front().second);
    // The index may have been reused since: only a handshake as old as the deadline goes.
    if (it != pending_.end() && now - it->second->started >= kPendingTimeout) pending_.erase(it);
    pending_deadlines_.pop_front();
  }
  registry_.expire(now, [this](Entry& e) { remove(e, "silent"); });
  tcp_punches_.expire(now, [&](const TcpPunchBroker::Expired& x) {
    const char* why = x.a.observed ? "the peer never reached the assist port"
                                   : "we never saw you on the assist port";
    tcp_punch_failed(now, x.a.vip, x.a.punch_id, why);
  });
}

Time Coordinator::next_deadline() const {
  Time t = registry_.next_deadline();
  if (!pending_deadlines_.empty()) t = std::min(t, pending_deadlines_.front().first);
  return std::min(t, tcp_punches_.next_deadline());
}

CoordinatorStatus Coordinator::status(Time now) const {
  CoordinatorStatus s = counters_;
  s.pending_handshakes = pending_.size();
  s.revocation_sequence = revocations_.sequence();
  registry_.for_each([&](const Entry& e) {
    if (!e.registered) return;
    s.nodes.push_back(NodeEntryStatus{e.cert.name, e.cert.vip, e.observed, e.local_endpoints, e.nat,
                                      now - e.last_seen, e.relayed_bytes, e.relay_dropped,
                                      e.lookups_refused, e.introductions_refused, e.tcp != 0});
  });
  return s;
}

void Coordinator::on_stun(Time now, ServerSocket socket, const Endpoint& from, PacketView d) {
  if (!stun_) return;
  auto reply = stun_->on_request(socket, from, d.span());
  if (!reply) return;
  // reply->to differs from `from` at most in its port (RESPONSE-PORT): one address, one budget.
  if (!stun_limiter_.allow(now, reply->to.address, double(reply->bytes.size()))) {
    ++counters_.stun_rate_limited;
    return;
  }
  ++counters_.stun_answered;
  fx_.send_udp(reply->from, reply->to, reply->bytes);
}

std::uint32_t Coordinator::new_index() {
  for (;;) {
    std::uint32_t v = 0;
    fx_.fill_random(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
    if (v != 0 && !registry_.index_in_use(v) && !pending_.contains(v)) return v;
  }
}

}  // namespace p2p::coord
