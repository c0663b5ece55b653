// Node, part two: the requests the shell makes on behalf of the operator and the machine
// (connect, ping, address and NAT changes) and the status report. Packet paths: node.cpp.
#include <algorithm>

#include "crypto/cert_lifetime.hpp"
#include "daemon/core/node.hpp"

namespace p2p::core {

void Node::connect(Time now, std::variant<Ipv4, std::string> target) {
  if (Peer* p = find_peer(target)) {
    if (!p->sessions.current && !p->sessions.pending && p->cert) start_handshake(now, *p);
  } else if (auto* v = std::get_if<Ipv4>(&target)) {
    if (Peer* p = peer_for(now, *v)) request_peer(now, *p);
  } else if (registered()) {
    coord_.send(now, wire::PeerRequest{coord_.next_request_id(), std::get<std::string>(target)});
  }
  schedule(coord_.deadline());
}

void Node::set_local_endpoints(Time now, std::vector<Endpoint> endpoints) {
  coord_.set_local_endpoints(now, std::move(endpoints));
  schedule(coord_.deadline());
}

void Node::set_nat(Time now, wire::NatSummary nat) {
  coord_.set_nat(now, nat);
  schedule(coord_.deadline());
}

void Node::set_port_mapping(Time now, std::optional<Endpoint> external) {
  if (external == coord_.mapped()) return;
  coord_.set_mapped(now, external);
  if (external && registered()) {
    peers_.for_each([&](Peer& p) {
      if (p.cert && !p.paths.active()) send_lookup(now, p);
    });
  }
  schedule(coord_.deadline());
}

void Node::network_changed(Time now, std::vector<Endpoint> endpoints) {
  coord_.network_changed(now, std::move(endpoints));
  schedule(coord_.deadline());
  peers_.for_each([&](Peer& p) {
    p.paths.check_now(now);
    schedule(p.paths.deadline());
  });
}

void Node::set_stun_sink(StunSink sink) {
  stun_sink_ = std::move(sink);
}

void Node::ping(Time now, std::variant<Ipv4, std::string> target, PingDone done) {
  Peer* p = find_peer(target);
  if (!p) return lookup_for_ping(now, target, std::move(done));
  if (!p->sessions.current) {
    done(std::nullopt, "not connected");
    return;
  }
  if (p->ping_done) p->ping_done(std::nullopt, "superseded");
  p->ping_probe = p->paths.next_probe_id();
  p->ping_sent = now;
  p->ping_done = std::move(done);
  schedule(now + kPingTimeout);
  const Path* path = p->paths.active();
  wire::PathProbe probe{p->ping_probe, path ? path->endpoint : Endpoint{}};
  send_control_to_peer(now, *p, probe,
                       path ? std::optional<Endpoint>(path->endpoint) : std::nullopt,
                       path ? path->socket : 0);
  schedule(coord_.deadline());
}

void Node::lookup_for_ping(Time now, const std::variant<Ipv4, std::string>& target, PingDone done) {
  std::string text = std::holds_alternative<Ipv4>(target) ? std::get<Ipv4>(target).to_string()
                                                          : std::get<std::string>(target);
  if (!registered())
    return done(std::nullopt, std::string(kUnknownPeer) + text +
                                  " and not registered with the coordinator: cannot look it up");
  if (lookup_pings_.size() >= kMaxLookupPings)
    return done(std::nullopt, "busy: too many pings waiting for lookups");
  const std::uint32_t id = coord_.next_request_id();
  coord_.send(now, wire::PeerRequest{id, target});
  lookup_pings_.push_back(LookupPing{id, std::move(text), now + kPingTimeout, std::move(done)});
  schedule(now + kPingTimeout);
  schedule(coord_.deadline());
}

bool Node::finish_lookup_ping(std::uint32_t request_id, bool found, const std::string& reason) {
  auto it = std::find_if(lookup_pings_.begin(), lookup_pings_.end(),
                         [&](const LookupPing& l) { return l.request_id == request_id; });
  if (it == lookup_pings_.end()) return false;
  LookupPing l = std::move(*it);
  lookup_pings_.erase(it);
  if (found) {
    l.done(std::nullopt, "not connected yet: " + l.target + " (" + reason +
                             ") found, handshake started; ping again in a moment");
  } else {
    l.done(std::nullopt, std::string(kUnknownPeer) + l.target + ": " + reason);
  }
  return true;
}

void Node::expire_lookup_pings(Time now) {
  for (std::size_t i = 0; i < lookup_pings_.size();) {
    if (now < lookup_pings_[i].deadline) {
      schedule(lookup_pings_[i].deadline);
      ++i;
      continue;
    }
    LookupPing l = std::move(lookup_pings_[i]);
    lookup_pings_.erase(lookup_pings_.begin() + static_cast<std::ptrdiff_t>(i));
    l.done(std::nullopt, "no answer from the coordinator about " + l.target);
  }
}

void Node::refuse_peer(Time now, const crypto::Certificate& cert, const std::string& why) {
  // Remembered (until evicted as idle), so the status says "refused" and the warning is not
  // repeated each time the other side asks for us again.
  Peer* pp = peer_for(now, cert.vip.address);
  if (!pp) return;
  Peer& p = *pp;
  if (p.state != Peer::State::kRefused || p.cert) {
    log_->warn("peer={} vip={} refused: {}", cert.name, cert.vip.address.to_string(), why);
  }
  p.sessions.drop_sessions(sessions_);
  p.cert.reset();
  p.state = Peer::State::kRefused;
  p.paths.set_relay_reason("refused " + cert.name + ": " + why);
  drops_.queue_full += clear_queue(p);
}

NodeStatus Node::status(Time now) const {
  NodeStatus s;
  s.name = identity_.certificate.name;
  s.vip = identity_.certificate.vip;
  s.public_endpoint = coord_.observed();
  s.local_endpoints = coord_.local_endpoints();
  s.nat = coord_.nat();
  if (coord_.configured()) s.coordinator = coord_.endpoint();
  s.coordinator_state = coord_.state_text();
  s.coordinators = coord_.status();
  s.coordinator_transport = coord_.transport();
  s.drops = drops_;
  const auto unix_now = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  s.certificates.not_after = crypto::format_utc(identity_.certificate.not_after);
  s.certificates.ca_not_after = crypto::format_utc(ca_.not_after);
  for (auto& n : crypto::lifetime_notices(identity_.certificate, ca_, unix_now)) {
    s.certificates.expired = s.certificates.expired || n.expired;
    s.certificates.warnings.push_back(std::move(n.text));
  }
  s.counters = counters_;
  s.counters.birthday_attempts = birthday_.counters().attempts;
  s.counters.birthday_probes = birthday_.counters().probes;
  s.counters.birthday_successes = birthday_.counters().successes;
  s.revocation_sequence = revocations_.sequence();
  s.revoked = revocations_.all().size();
  s.peer_table = {peers_.size(),         settings_.limits.max_peers,
                  unknown_.size(),       queue_budget_.packets(),
                  queue_budget_.bytes(), evicted_idle_,
                  evicted_full_};
  peers_.for_each([&](const Peer& p) {
    PeerStatus ps;
    ps.name = p.name();
    ps.vip = p.vip;
    switch (p.state) {
      case Peer::State::kRequesting: ps.state = "requesting"; break;
      case Peer::State::kHandshaking: ps.state = "handshaking"; break;
      case Peer::State::kConnected: ps.state = "connected"; break;
      case Peer::State::kUnreachable: ps.state = "unreachable"; break;
      case Peer::State::kRefused: ps.state = "refused"; break;
      case Peer::State::kGone: ps.state = "gone"; break;
    }
    if (const Path* a = p.paths.active()) {
      ps.path = "direct";
      ps.endpoint = a->endpoint;
      ps.rtt = a->rtt;
      ps.path_kind = to_string(a->kind);
      ps.transport = to_string(a->transport);
    } else if (p.sessions.current) {
      ps.path = "relay";
      ps.endpoint = coord_.endpoint();
      ps.relay_reason = relay_reason(p);
    } else {
      ps.path = "none";
      ps.relay_reason = p.paths.relay_reason();
    }
    if (p.last_handshake) ps.since_handshake = now - *p.last_handshake;
    ps.bytes_in = p.bytes_in;
    ps.bytes_out = p.bytes_out;
    ps.packets_in = p.packets_in;
    ps.packets_out = p.packets_out;
    ps.nat = p.nat;
    ps.punch_method = to_string(p.paths.punch_method());
    for (const auto& x : p.paths.paths()) {
      ps.candidates.push_back(
          PathStatus{x.endpoint, to_string(x.kind), x.confirmed, x.rtt, to_string(x.transport)});
    }
    s.peers.push_back(std::move(ps));
  });
  std::sort(s.peers.begin(), s.peers.end(),
            [](const PeerStatus& a, const PeerStatus& b) { return a.vip.value < b.vip.value; });
  return s;
}

}  // namespace p2p::core
