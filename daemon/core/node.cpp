#include "daemon/core/node.hpp"

#include <algorithm>
#include <cstring>

#include "net/log_value.hpp"
#include "net/packet.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;
using wire::ControlMessage;

constexpr Duration kHandshakeGiveUp = 90s;  // WireGuard's REKEY_ATTEMPT_TIME
constexpr Duration kTrafficRecent = 5s;
constexpr Duration kIdleAfter = 180s;  // no traffic: let sessions lapse
constexpr Duration kPassiveKeepalive = crypto::kKeepaliveTimeout;
constexpr Duration kUnansweredTimeout = crypto::kKeepaliveTimeout + crypto::kRekeyTimeout;

}  // namespace

// A peer's PathSet probes through its session.
class Node::ProbeSender final : public PathEffects {
 public:
  ProbeSender(Node& node, Peer& peer, Time now) : node_(node), peer_(peer), now_(now) {}
  void send_probe(const Endpoint& to, std::uint64_t probe_id) override {
    node_.send_control_to_peer(now_, peer_, wire::PathProbe{probe_id, to}, to);
  }
  void send_probe_via(std::uint32_t socket, const Endpoint& to, std::uint64_t probe_id) override {
    node_.send_control_to_peer(now_, peer_, wire::PathProbe{probe_id, to}, to, socket);
  }
  void send_stream_probe(std::uint32_t stream, std::uint64_t probe_id) override {
    node_.send_control_on_stream(now_, peer_, wire::PathProbe{probe_id, peer_.tcp.remote}, stream);
  }

 private:
  Node& node_;
  Peer& peer_;
  Time now_;
};

Node::Node(crypto::Identity identity, crypto::CaCertificate ca, NodeSettings settings,
           NodeEffects& effects, std::shared_ptr<spdlog::logger> log)
    : identity_(std::move(identity)),
      ca_(std::move(ca)),
      settings_(std::move(settings)),
      path_policy_{settings_.keepalive,
                   settings_.punch_enabled,
                   settings_.punch_timeout,
                   settings_.port_prediction,
                   &counters_,
                   settings_.birthday.enabled},
      fx_(effects),
      log_(std::move(log)),
      data_path_(identity_.certificate.vip),
      sessions_(effects),
      coord_(
          identity_, settings_.coordinators, settings_.keepalive,
          [this](const crypto::Certificate& c) {
            auto ok = verify_peer(c, crypto::Role::coordinator);
            if (ok) coordinator_cert_ = c;
            return ok;
          },
          sessions_, effects, *this, *log_, drops_),
      handshakes_(
          identity_,
          [this](const crypto::Certificate& c) { return verify_peer(c, crypto::Role::node); },
          sessions_, effects, 2 * settings_.limits.max_peers),
      unknown_(settings_.limits.unknown_address_ttl, settings_.limits.unknown_addresses),
      lookups_(settings_.limits.lookups_per_second, settings_.limits.lookup_burst),
      queue_budget_(settings_.limits.queued_packets, settings_.limits.queued_bytes),
      queue_buffer_(kBufferSize),
      revocations_(settings_.revoked),
      birthday_(settings_.birthday) {
  scratch_.reserve(2048);
  coord_.set_network_key(ca_.public_key);
  coord_.set_tcp_ports(settings_.coordinator_tcp);
}

Node::~Node() = default;

bool Node::registered() const {
  return coord_.registered();
}

std::optional<Endpoint> Node::coordinator() const {
  if (!coord_.configured()) return std::nullopt;
  return coord_.endpoint();
}

void Node::start(Time now) {
  coord_.start(now);
  schedule(coord_.deadline());
}

// ---------------------------------------------------------------------------------------
// What the coordinator tells us

void Node::on_relayed(Time now, const Endpoint& via, PacketView datagram) {
  on_datagram(now, via, true, datagram);
}

void Node::on_introduce(Time now, const wire::Introduce& m) {
  auto cert = crypto::decode_certificate(m.certificate);
  if (!cert) {
    ++drops_.malformed;
    log_->warn("coordinator introduced a malformed certificate: {}", cert.error().message);
    return;
  }
  if (cert->vip.address == identity_.certificate.vip.address) return;
  if (auto ok = verify_peer(*cert, crypto::Role::node); !ok) {
    refuse_peer(now, *cert, ok.error().message);
    return;
  }
  Peer* pp = peer_for(now, cert->vip.address);
  if (!pp) return;
  Peer& p = *pp;
  finish_lookup_ping(m.request_id, true, cert->name);
  bool new_key = p.cert && p.cert->public_key != cert->public_key;
  set_certificate(p, std::move(*cert));
  p.observed = m.observed;
  p.local_endpoints = m.local_endpoints;
  p.nat = m.nat;
  p.mapped = m.mapped;
  log_->info("peer={} vip={} introduced public={} nat={}{}", p.name(), p.vip.to_string(),
             m.observed.to_string(), log_value(wire::to_string(m.nat.type)),
             m.mapped ? " mapped=" + m.mapped->to_string() : std::string());
  if (new_key) p.sessions.drop_sessions(sessions_);
  if (p.sessions.usable(now)) {
    // Already connected, yet the other side asked for an introduction: it has no direct path
    // (it lost ours, or its network changed). Ours may be just as dead without our knowing
    // (idle paths are probed only every keepalive): check it at once, and punch the fresh
    // candidates beside it.
    p.paths.check_now(now);
    start_punching(now, p);
    return;
  }
  if (m.initiate || !p.queue.empty()) {
    if (!p.sessions.pending) start_handshake(now, p);
  } else {
    p.state = Peer::State::kHandshaking;  // the other side initiates
  }
}

// ---------------------------------------------------------------------------------------
// Peers: lookup, handshakes

Expected<void, crypto::CertError> Node::verify_peer(const crypto::Certificate& cert,
                                                    crypto::Role role) const {
  auto now = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  return crypto::verify(cert, ca_, now, crypto::VerifyPolicy{role, revocations_.all()});
}

// A handshake just installed a new current session for `p`.
void Node::on_session(Time now, Peer& p) {
  tcp_on_session(now, p);
  ++counters_.handshakes_completed;
  p.state = Peer::State::kConnected;
  p.last_handshake = now;
  p.last_received = now;
  if (p.last_data_activity == Time{}) p.last_data_activity = now;
  flush_queue(now, p);
  if (!p.paths.active() && !p.paths.punching()) start_punching(now, p);
  schedule(now + crypto::kRekeyAfterTime);
}

// ---------------------------------------------------------------------------------------
// Data path

void Node::on_tun(Time now, PacketView packet) {
  auto dst = data_path_.route(packet.span());
  if (!dst) {
    ++drops_.no_route;
    return;
  }
  Peer* p = peers_.find(*dst);
  if (!p) {
    // A new address: not one the coordinator just said it does not know, and within the
    // lookup rate (a sweep of the mesh prefix makes neither peers nor lookups beyond it).
    if (unknown_.contains(now, *dst)) {
      ++drops_.unknown_address;
      return;
    }
    if (registered() && !lookups_.ready(now)) {
      ++drops_.lookup_rate;
      return;
    }
    p = peer_for(now, *dst);
    if (!p) return;
    request_peer(now, *p);
  }
  peers_.touch(*p);
  if (p->state == Peer::State::kRefused) {
    ++drops_.no_route;
    return;
  }
  p->last_data_activity = now;
  if (p->sessions.usable(now) && send_to_peer(now, *p, packet)) return;
  // No usable session: queue, and make sure something is under way.
  queue_packet(*p, packet);
  if (p->state == Peer::State::kUnreachable) request_peer(now, *p);
  if (!p->sessions.pending && p->cert && p->state != Peer::State::kRequesting)
    start_handshake(now, *p);
  schedule(coord_.deadline());
}

bool Node::relay_allowed(const Peer& p) const {
  return settings_.relay_allowed && p.paths.force() != Force::kDirect && registered();
}

bool Node::send_to_peer(Time now, Peer& p, PacketView packet, bool is_probe_or_keepalive) {
  if (!p.sessions.current) return false;
  auto& s = *p.sessions.current;
  if (s.transport.should_rekey(now) && !p.sessions.pending) start_handshake(now, p);
  const std::size_t len = packet.size();
  // Only what leaves by reference from the node's own socket may be sealed later.
  const Path* direct = p.paths.active();
  const bool by_socket = direct && direct->transport == Transport::kUdp && direct->socket == 0;
  if (!s.seal(now, packet, by_socket ? fx_.crypto_jobs() : nullptr)) return false;
  if (!is_probe_or_keepalive) {
    p.bytes_out += len;
    ++p.packets_out;
    if (!p.unanswered_since) {
      p.unanswered_since = now;
      schedule(now + kUnansweredTimeout);
    }
  }
  p.last_sent = now;
  p.keepalive_due.reset();
  send_datagram(now, p, packet, direct);
  return true;
}

void Node::send_datagram(Time now, Peer& p, PacketView d, const Path* direct) {
  if (direct && direct->transport == Transport::kTcp) {
    fx_.send_stream(direct->stream, d.span());
  } else if (direct) {
    send_udp_via(direct->socket, direct->endpoint, d.span());
  } else if (relay_allowed(p)) {
    coord_.send_relayed(now, p.vip, d);
  } else if (p.observed) {
    fx_.send_udp(*p.observed, d.span());
  }
}

void Node::send_control_to_peer(Time now, Peer& p, const ControlMessage& m,
                                std::optional<Endpoint> to, std::uint32_t socket) {
  if (!p.sessions.current) return;
  PacketView v = wire::encode_control_packet(scratch_, m);
  if (!p.sessions.current->seal(now, v)) return;
  if (to) {
    send_udp_via(socket, *to, v.span());
  } else {
    coord_.send_relayed(now, p.vip, v);
  }
}

void Node::flush_queue(Time now, Peer& p) {
  while (auto pkt = p.queue.pop(queue_budget_)) {
    std::memcpy(queue_buffer_.data() + kHeadroom, pkt->data(), pkt->size());
    send_to_peer(now, p,
                 PacketView(queue_buffer_.data(), queue_buffer_.size(), kHeadroom, pkt->size()));
  }
}

void Node::on_udp(Time now, const Endpoint& from, PacketView packet) noexcept {
  // Nothing a datagram causes may leave this function: an exception (there should be none;
  // this is the last resort) is a counted drop with a rate-limited line, never a dead node.
  try {
    if (packet.size() == 0) return;
    if (wire::classify(packet.span()) == wire::DatagramKind::kStun) {
      if (stun_sink_) stun_sink_(now, from, packet.span());
      return;
    }
    on_datagram(now, from, false, packet);
    schedule(coord_.deadline());
  } catch (const std::exception& e) {
    ++drops_.internal_error;
    if (auto n = init_log_.internal.hit(now))
      log_->error("dropped {} datagrams on an internal error in the last 10s: {}", *n, e.what());
  } catch (...) {
    ++drops_.internal_error;
  }
}

// A datagram from the socket or, unwrapped, from the relay (`from` is then the coordinator).
void Node::on_datagram(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  switch (wire::classify(d.span())) {
    case wire::DatagramKind::kHandshakeInit: on_handshake_init(now, from, via_relay, d); break;
    case wire::DatagramKind::kHandshakeResp: on_handshake_resp(now, from, via_relay, d); break;
    case wire::DatagramKind::kData: on_data(now, from, via_relay, d); break;
    case wire::DatagramKind::kCookieReply: on_cookie_reply(now, via_relay, d); break;
    case wire::DatagramKind::kRelayed: on_relayed_frame(now, via_relay, d); break;
    case wire::DatagramKind::kStun:  // only ever on the socket, handled before
    case wire::DatagramKind::kHandshakeFinal:
    case wire::DatagramKind::kRelay:
    case wire::DatagramKind::kUnknown: ++drops_.malformed; break;
  }
}

// A Relayed frame from a coordinator (never inside another).
void Node::on_relayed_frame(Time now, bool via_relay, PacketView d) {
  auto f = wire::parse_relay(d.span());
  if (!f || via_relay) {
    ++drops_.malformed;
    return;
  }
  auto owner = sessions_.find(f->receiver_index);
  if (!owner || !owner->coordinator) {
    ++drops_.unknown_index;
    return;
  }
  coord_.on_relayed_frame(now, *f, d);
}

void Node::on_data(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto h = wire::parse_data(d.span());
  if (!h) {
    ++drops_.malformed;
    return;
  }
  auto owner = sessions_.find(h->receiver_index);
  if (!owner) {
    ++drops_.unknown_index;
    return;
  }
  PacketView body = d.sub(wire::kDataHeaderSize, d.size() - wire::kDataHeaderSize);
  if (owner->coordinator) {
    if (!via_relay) coord_.on_data(now, *h, body);
    return;
  }
  Peer* pp = peers_.find(Ipv4{owner->vip});
  if (!pp) return;
  Peer& p = *pp;
  // Opened ahead on a worker (on_udp with a job): only the window is left to check.
  auto n = opened_ && opened_->data == body.data() ? p.sessions.finish_open(now, *h, *opened_)
                                                   : p.sessions.open(now, *h, body.span());
  if (!n) {
    if (n.error() == SessionSlots::OpenError::kFailed) ++drops_.decrypt_failed;
    return;
  }
  p.last_received = now;
  p.unanswered_since.reset();
  peers_.touch(p);
  on_peer_plaintext(now, p, from, via_relay, body.sub(0, *n));
}

void Node::on_peer_plaintext(Time now, Peer& p, const Endpoint& from, bool via_relay,
                             PacketView plain) {
  auto verdict = data_path_.inspect(plain.span(), p.vip);
  switch (verdict.kind) {
    case DataPath::Inbound::kKeepalive: return;
    case DataPath::Inbound::kMalformed: ++drops_.malformed; return;
    case DataPath::Inbound::kBadSource:
      ++drops_.bad_source;
      log_->debug("peer={} sent a packet not from its virtual IP or not to ours: dropped",
                  p.name());
      return;
    case DataPath::Inbound::kNotRouted: ++drops_.no_route; return;
    case DataPath::Inbound::kPacket:
      p.bytes_in += verdict.length;
      ++p.packets_in;
      p.last_data_activity = now;
      if (!p.keepalive_due) {
        p.keepalive_due = now + kPassiveKeepalive;
        schedule(*p.keepalive_due);
      }
      fx_.write_tun(plain.span().first(verdict.length));
      return;
    case DataPath::Inbound::kControl: break;
  }
  auto m = wire::decode_control(plain.span());
  if (!m) {
    ++drops_.malformed;
    return;
  }
  if (auto* probe = std::get_if<wire::PathProbe>(&*m); probe && in_stream_ != 0) {
    return send_control_on_stream(now, p, wire::PathProbeAck{probe->probe_id, from}, in_stream_);
  }
  if (auto* probe = std::get_if<wire::PathProbe>(&*m)) {
    if (!via_relay) birthday_on_direct(now, p, from);
    if (!via_relay && p.paths.on_probe(now, from, rx_socket_) == PathSet::ProbeSource::kMoved)
      start_punching(now, p);
    schedule(p.paths.deadline());
    // Answer the way it came: to its source (from the socket it came on), or back through the
    // relay.
    send_control_to_peer(now, p, wire::PathProbeAck{probe->probe_id, from},
                         via_relay ? std::nullopt : std::optional<Endpoint>(from), rx_socket_);
    return;
  }
  if (auto* ack = std::get_if<wire::PathProbeAck>(&*m)) {
    if (ack->probe_id == p.ping_probe && p.ping_probe != 0) {
      finish_ping(p, now - p.ping_sent,
                  via_relay    ? "relay"
                  : in_stream_ ? "direct tcp " + from.to_string()
                               : "direct " + from.to_string());
      return;
    }
    if (in_stream_ != 0) {
      p.paths.on_stream_ack(now, ack->probe_id, in_stream_);
      schedule(p.paths.deadline());
      return;
    }
    if (!via_relay) birthday_on_direct(now, p, from);
    p.paths.on_ack(now, ack->probe_id, from, rx_socket_);
    schedule(p.paths.deadline());
    return;
  }
  if (std::holds_alternative<wire::Goodbye>(*m)) return on_peer_goodbye(now, p);
  log_->debug("peer={} sent unexpected {}", p.name(), wire::control_name(*m));
}

// ---------------------------------------------------------------------------------------
// Paths and timers

void Node::start_punching(Time now, Peer& p) {
  if (transport_for(p) == TransportPolicy::kTcp) {  // UDP is not even tried
    if (!p.paths.active()) p.paths.set_relay_reason("transport tcp");
    return tcp_maybe_punch(now, p);
  }
  ProbeSender fx(*this, p, now);
  p.paths.start_punching(now,
                         CandidateSources{p.observed, p.local_endpoints, p.nat, coord_.observed(),
                                          coord_.nat(), p.mapped, coord_.mapped().has_value()},
                         now - p.last_data_activity < kTrafficRecent, fx);
  if (p.paths.punching() && p.paths.punch_method() == PunchMethod::kBirthday)
    start_birthday(now, p);
  schedule(p.paths.deadline());
}

void Node::path_tick(Time now, Peer& p) {
  ProbeSender fx(*this, p, now);
  auto r = p.paths.tick(now, now - p.last_data_activity < kTrafficRecent, fx);
  // Our NAT may have dropped every mapping (a router restart, conntrack -F): refresh the one
  // the coordinator relays through now rather than at the next interval.
  if (r.active_lost && registered()) coord_.register_now(now);
  if (r.retry_due && transport_for(p) != TransportPolicy::kTcp) {
    if (registered()) {
      // Mappings may have moved since the last introduction: ask for fresh candidates, and
      // the coordinator's Introduce starts both sides punching at the same moment.
      send_lookup(now, p);
    } else {
      start_punching(now, p);
    }
  }
  schedule(p.paths.deadline());
}

void Node::finish_ping(Peer& p, std::optional<Duration> rtt, std::string how) {
  p.ping_probe = 0;
  if (p.ping_done) {
    auto done = std::move(p.ping_done);
    p.ping_done = nullptr;
    done(rtt, std::move(how));
  }
}

void Node::peer_tick(Time now, Peer& p) {
  if (p.state == Peer::State::kRequesting && !p.cert && registered()) {
    if (now - p.request_sent >= kRequestRetry) {
      if (p.request_attempts >= kRequestAttempts) {
        p.state = Peer::State::kUnreachable;
        p.paths.set_relay_reason("no answer from the coordinator");
        drops_.queue_full += clear_queue(p);
      } else {
        request_peer(now, p);
      }
    }
    schedule(p.request_sent + kRequestRetry);
  }
  if (auto& pending = p.sessions.pending) {
    if (now - pending->first_try >= kHandshakeGiveUp) {
      log_->warn("peer={} unreachable: no handshake answer for {}s", p.name(),
                 std::chrono::duration_cast<std::chrono::seconds>(kHandshakeGiveUp).count());
      p.sessions.abandon_pending(sessions_);
      if (!p.sessions.current) p.state = Peer::State::kUnreachable;
      drops_.queue_full += clear_queue(p);
    } else if (now - pending->started >= crypto::kRekeyTimeout) {
      start_handshake(now, p);
    } else {
      schedule(pending->started + crypto::kRekeyTimeout);
    }
  }
  p.sessions.expire(sessions_, now);
  if (auto& current = p.sessions.current) {
    bool active = now - p.last_data_activity < kIdleAfter;
    if (active && current->transport.should_rekey(now) && !p.sessions.pending)
      start_handshake(now, p);
    // Idle peers let the session lapse (the next packet starts over); active ones rekey.
    if (active && !p.sessions.pending) schedule(rekey_time(current->transport));
    schedule(current->transport.created() + crypto::kRejectAfterTime);
    if (p.unanswered_since && !p.sessions.pending) {
      if (now - *p.unanswered_since >= kUnansweredTimeout) {
        log_->info("peer={} silent for {}s while we send: new handshake", p.name(),
                   std::chrono::duration_cast<std::chrono::seconds>(kUnansweredTimeout).count());
        p.unanswered_since.reset();
        start_handshake(now, p);
      } else {
        schedule(*p.unanswered_since + kUnansweredTimeout);
      }
    }
    // Passive keepalive: the peer sends us data but we have nothing to say back.
    if (p.keepalive_due && now >= *p.keepalive_due) {
      std::vector<std::uint8_t> buf(kHeadroom + kTailroom);
      send_to_peer(now, p, PacketView(buf.data(), buf.size(), kHeadroom, 0), true);
    } else if (p.keepalive_due) {
      schedule(*p.keepalive_due);
    }
    path_tick(now, p);
  } else if (p.state == Peer::State::kConnected) {
    p.state = Peer::State::kHandshaking;
    p.paths.reset("idle");
    if (now - p.last_data_activity < kIdleAfter && !p.sessions.pending) start_handshake(now, p);
  }
  if (p.ping_probe != 0 && now - p.ping_sent >= kPingTimeout) {
    finish_ping(p, std::nullopt, "timeout");
  } else if (p.ping_probe != 0) {
    schedule(p.ping_sent + kPingTimeout);
  }
  release_punch_socket(p);
  tcp_tick(now, p);
}

void Node::on_tick(Time now) {
  deadline_ = Time::max();
  coord_.tick(now);
  watch_carrier(now);
  expire_lookup_pings(now);
  std::vector<Ipv4> expired;
  peers_.for_each([&](Peer& p) {
    peer_tick(now, p);
    if (!idle(p)) return;
    const Time until = last_used(p) + settings_.limits.peer_idle_timeout;
    if (now >= until) {
      expired.push_back(p.vip);
    } else {
      schedule(until);
    }
  });
  for (Ipv4 vip : expired) {
    log_->debug("vip={} idle: removed", vip.to_string());
    remove_peer(*peers_.find(vip));
    ++evicted_idle_;
  }
  birthday_tick(now);
  log_drop_summary(now);
  schedule(coord_.deadline());
}

}  // namespace p2p::core
