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

bool TokenBucket::take(Time now, std::size_t bytes) {
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(static_cast<double>(burst_), tokens_ + elapsed * static_cast<double>(rate_));
  if (tokens_ < static_cast<double>(bytes)) return false;
  tokens_ -= static_cast<double>(bytes);
  return true;
}

struct Coordinator::Entry {
  crypto::Certificate cert;
  Endpoint observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  bool registered = false;
  Time last_seen{};
  std::optional<crypto::Session> current, previous;
  TokenBucket bucket;
  std::uint64_t relayed_bytes = 0, relay_dropped = 0;
};

struct Coordinator::Pending {
  crypto::AuthHandshake handshake;
  std::uint32_t remote_index;
  Endpoint from;
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
      log_(std::move(log)) {
  if (settings_.relay_burst == 0) settings_.relay_burst = settings_.relay_rate;
  scratch_.reserve(2048);
}

Coordinator::~Coordinator() = default;

void Coordinator::on_udp(Time now, ServerSocket socket, const Endpoint& from, PacketView packet) {
  auto d = packet.span();
  const auto kind = wire::classify(d);
  if (kind == wire::DatagramKind::kStun) {
    if (!stun_) return;
    if (auto reply = stun_->on_request(socket, from, d)) {
      ++counters_.stun_answered;
      fx_.send_udp(reply->from, reply->to, reply->bytes);
    }
    return;
  }
  if (socket != ServerSocket::kPrimary) return;  // only STUN on the discovery sockets
  switch (kind) {
    case wire::DatagramKind::kHandshakeInit: on_init(now, from, packet); break;
    case wire::DatagramKind::kHandshakeFinal: on_final(now, from, packet); break;
    case wire::DatagramKind::kData: on_data(now, from, packet); break;
    case wire::DatagramKind::kStun:
    case wire::DatagramKind::kHandshakeResp:
    case wire::DatagramKind::kUnknown: ++counters_.malformed; break;
  }
}

void Coordinator::on_init(Time now, const Endpoint& from, PacketView d) {
  auto init = wire::parse_handshake_init(d.span());
  if (!init || init->pattern != wire::Pattern::kXX) {
    ++counters_.malformed;
    return;
  }
  if (pending_.size() >= settings_.max_pending_handshakes) {
    log_->warn("too many handshakes in progress; dropping one from endpoint={}", from.to_string());
    return;
  }
  auto now_unix = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  auto hs = crypto::AuthHandshake::responder(
      crypto::AuthHandshake::Kind::kXX, identity_, [this, now_unix](const crypto::Certificate& c) {
        return crypto::verify(c, ca_, now_unix,
                              crypto::VerifyPolicy{crypto::Role::node, settings_.revoked});
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
  pending_.emplace(
      index, std::make_unique<Pending>(Pending{std::move(hs), init->sender_index, from, now}));
  schedule(now + kPendingTimeout);
  fx_.send_udp(ServerSocket::kPrimary, from, out);
}

void Coordinator::on_final(Time now, const Endpoint& from, PacketView d) {
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
    log_->warn("node handshake from endpoint={} refused: {}", from.to_string(), ok.error().reason);
    // A certificate refused on the final message: tell the node why, on the channel it
    // authenticated, then forget it.
    if (auto keys = hs.split_after_rejection()) {
      crypto::Session s{crypto::TransportSession(std::move(*keys), now, false), 0,
                        pending->remote_index};
      auto code = wire::RefuseCode::kBadCertificate;
      if (ok.error().cert_error && ok.error().cert_error->kind == crypto::CertErrorKind::revoked)
        code = wire::RefuseCode::kRevoked;
      PacketView v = wire::encode_control_packet(scratch_, wire::Refused{code, ok.error().reason});
      if (s.seal(now, v)) fx_.send_udp(ServerSocket::kPrimary, from, v.span());
    }
    return;
  }
  auto keys = hs.split();
  if (!keys) return;
  const auto& cert = *hs.peer_certificate();
  auto& slot = nodes_[cert.public_key];
  if (!slot) {
    if (nodes_.size() > settings_.max_nodes) {
      nodes_.erase(cert.public_key);
      log_->warn("registry full; refusing node={}", cert.name);
      return;
    }
    slot.reset(new Entry{cert,
                         from,
                         {},
                         {},
                         false,
                         now,
                         std::nullopt,
                         std::nullopt,
                         TokenBucket(settings_.relay_rate, settings_.relay_burst, now),
                         0,
                         0});
  }
  Entry& e = *slot;
  e.cert = cert;  // a re-issued certificate for the same key replaces the old one
  e.observed = from;
  e.last_seen = now;
  if (e.previous) by_index_.erase(e.previous->local_index);
  e.previous = std::move(e.current);
  auto index = fin->receiver_index;
  e.current.emplace(crypto::Session{crypto::TransportSession(std::move(keys).value(), now, false),
                                    index, pending->remote_index});
  by_index_[index] = &e;
  schedule(now + settings_.node_timeout);
  log_->debug("node={} session established endpoint={}", cert.name, from.to_string());
}

void Coordinator::on_data(Time now, const Endpoint& from, PacketView d) {
  auto h = wire::parse_data(d.span());
  if (!h) {
    ++counters_.malformed;
    return;
  }
  auto it = by_index_.find(h->receiver_index);
  if (it == by_index_.end()) return;
  Entry& e = *it->second;
  auto* keys = e.current && e.current->local_index == h->receiver_index     ? &*e.current
               : e.previous && e.previous->local_index == h->receiver_index ? &*e.previous
                                                                            : nullptr;
  if (!keys) return;
  PacketView body = d.sub(wire::kDataHeaderSize, d.size() - wire::kDataHeaderSize);
  auto n = keys->transport.decrypt(now, h->counter, body.span());
  if (!n) return;
  e.last_seen = now;
  if (e.observed != from) {
    log_->info("node={} moved endpoint={} (was {})", e.cert.name, from.to_string(),
               e.observed.to_string());
    e.observed = from;
  }
  if (*n == 0) return;  // keepalive
  if (body.data()[0] == static_cast<std::uint8_t>(wire::ControlType::kRelay)) {
    relay(now, e, d, *n);
    return;
  }
  auto m = wire::decode_control(body.span().first(*n));
  if (!m) {
    ++counters_.malformed;
    log_->warn("node={} sent a malformed control message", e.cert.name);
    return;
  }
  on_control(now, e, *m);
}

void Coordinator::relay(Time now, Entry& from, PacketView d, std::size_t plain_len) {
  std::uint8_t* body = d.data() + wire::kDataHeaderSize;
  if (!settings_.relay_enabled || !from.registered || plain_len <= wire::kRelayHeaderSize) {
    ++from.relay_dropped;
    return;
  }
  Ipv4 to{std::uint32_t{body[1]} << 24 | std::uint32_t{body[2]} << 16 |
          std::uint32_t{body[3]} << 8 | body[4]};
  Entry* target = find_by_vip(to);
  if (!target || !target->current || target == &from) {
    ++from.relay_dropped;
    return;
  }
  if (!from.bucket.take(now, plain_len)) {
    ++from.relay_dropped;
    return;
  }
  // Re-sealed in place for the target: the same buffer, the payload never copied.
  wire::write_relay_header(body, wire::ControlType::kRelayed, from.cert.vip.address);
  PacketView v = d.sub(wire::kDataHeaderSize, plain_len);
  if (!target->current->seal(now, v)) return;
  from.relayed_bytes += plain_len;
  fx_.send_udp(ServerSocket::kPrimary, target->observed, v.span());
}

Coordinator::Entry* Coordinator::find_by_vip(Ipv4 vip) {
  for (auto& [key, e] : nodes_) {
    if (e->registered && e->cert.vip.address == vip) return e.get();
  }
  return nullptr;
}

void Coordinator::on_control(Time now, Entry& e, const wire::ControlMessage& m) {
  if (auto* r = std::get_if<wire::Register>(&m)) {
    for (auto& [key, other] : nodes_) {
      if (other.get() != &e && other->registered && other->cert.vip.address == e.cert.vip.address) {
        log_->warn("node={} refused: vip={} is held by node={}", e.cert.name,
                   e.cert.vip.address.to_string(), other->cert.name);
        send_control(now, e,
                     wire::Refused{wire::RefuseCode::kAddressInUse,
                                   "virtual IP " + e.cert.vip.address.to_string() +
                                       " is already registered by another key"});
        return;
      }
    }
    bool first = !e.registered;
    e.registered = true;
    e.local_endpoints = r->local_endpoints;
    e.nat = r->nat;
    if (first)
      log_->info("node={} vip={} registered endpoint={} nat={}", e.cert.name,
                 e.cert.vip.to_string(), e.observed.to_string(),
                 log_value(wire::to_string(e.nat.type)));
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(settings_.register_interval);
    send_control(now, e, wire::RegisterOk{e.observed, static_cast<std::uint16_t>(secs.count())});
    return;
  }
  if (!e.registered) {
    send_control(now, e, wire::Refused{wire::RefuseCode::kNotRegistered, "register first"});
    return;
  }
  if (auto* q = std::get_if<wire::PeerRequest>(&m)) {
    Entry* target = nullptr;
    if (auto* v = std::get_if<Ipv4>(&q->target)) {
      target = find_by_vip(*v);
    } else {
      for (auto& [key, other] : nodes_) {
        if (other->registered && other->cert.name == std::get<std::string>(q->target))
          target = other.get();
      }
    }
    if (!target || target == &e) {
      send_control(now, e, wire::PeerUnknown{q->request_id, "no such node is registered"});
      return;
    }
    // Both sides hear of each other at the same moment, so they punch together.
    introduce(now, e, *target, q->request_id, true);
    introduce(now, *target, e, 0, false);
    log_->debug("introduced node={} and node={}", e.cert.name, target->cert.name);
    return;
  }
  if (std::holds_alternative<wire::Goodbye>(m)) {
    remove(e, "said goodbye");
    return;
  }
  log_->debug("node={} sent unexpected {}", e.cert.name, wire::control_name(m));
}

void Coordinator::introduce(Time now, Entry& to, const Entry& about, std::uint32_t request_id,
                            bool initiate) {
  send_control(now, to,
               wire::Introduce{request_id, crypto::encode(about.cert), about.observed,
                               about.local_endpoints, about.nat, initiate});
}

void Coordinator::send_control(Time now, Entry& e, const wire::ControlMessage& m) {
  if (!e.current) return;
  PacketView v = wire::encode_control_packet(scratch_, m);
  if (e.current->seal(now, v)) fx_.send_udp(ServerSocket::kPrimary, e.observed, v.span());
}

void Coordinator::remove(Entry& e, const char* why) {
  log_->info("node={} vip={} removed: {}", e.cert.name, e.cert.vip.address.to_string(), why);
  if (e.current) by_index_.erase(e.current->local_index);
  if (e.previous) by_index_.erase(e.previous->local_index);
  nodes_.erase(e.cert.public_key);
}

void Coordinator::on_tick(Time now) {
  deadline_ = Time::max();
  std::erase_if(pending_,
                [&](const auto& kv) { return now - kv.second->started >= kPendingTimeout; });
  for (auto& [index, p] : pending_) schedule(p->started + kPendingTimeout);
  std::vector<Entry*> silent;
  for (auto& [key, e] : nodes_) {
    if (now - e->last_seen >= settings_.node_timeout) {
      silent.push_back(e.get());
      continue;
    }
    for (auto* k : {&e->previous, &e->current}) {
      if (*k && (*k)->transport.is_expired(now)) {
        by_index_.erase((*k)->local_index);
        k->reset();
      }
    }
    schedule(e->last_seen + settings_.node_timeout);
    if (e->current) schedule(e->current->transport.created() + crypto::kRejectAfterTime);
  }
  for (Entry* e : silent) remove(*e, "silent");
}

CoordinatorStatus Coordinator::status(Time now) const {
  CoordinatorStatus s = counters_;
  for (const auto& [key, e] : nodes_) {
    if (!e->registered) continue;
    s.nodes.push_back(NodeEntryStatus{e->cert.name, e->cert.vip, e->observed, e->local_endpoints,
                                      e->nat, now - e->last_seen, e->relayed_bytes,
                                      e->relay_dropped});
  }
  return s;
}

std::uint32_t Coordinator::new_index() {
  for (;;) {
    std::uint32_t v = 0;
    fx_.fill_random(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
    if (v != 0 && !by_index_.contains(v) && !pending_.contains(v)) return v;
  }
}

}  // namespace p2p::coord
