// Node, part four: what changes the running node as a whole: a reload of its settings and
// leaving the mesh (Goodbye to the peers and the coordinator), and a peer's own Goodbye.
#include "daemon/core/node.hpp"

namespace p2p::core {

void Node::reconfigure(Time now, const NodeSettings& next) {
  settings_.policies = next.policies;
  settings_.revoked = next.revoked;
  revocations_.set_configured(next.revoked);  // the signed list taken stays
  if (!(settings_.limits == next.limits)) {
    const auto& l = next.limits;
    settings_.limits = l;
    // The negative cache and the lookup bucket start afresh under their new bounds.
    unknown_ = UnknownAddresses(l.unknown_address_ttl, l.unknown_addresses);
    lookups_ = TokenBucket(l.lookups_per_second, l.lookup_burst);
    queue_budget_.set_limits(l.queued_packets, l.queued_bytes);
  }
  std::vector<std::pair<crypto::Certificate, std::string>> refused;
  peers_.for_each([&](Peer& p) {
    if (!p.cert) return;
    if (auto ok = verify_peer(*p.cert, crypto::Role::node); !ok) {
      refused.emplace_back(*p.cert, ok.error().message);
      return;
    }
    const Force force = policy_for(*p.cert);
    if (force == p.paths.force()) return;
    log_->info("peer={} policy changed: {}", p.name(),
               force == Force::kRelay    ? "relay"
               : force == Force::kDirect ? "direct"
                                         : "automatic");
    p.paths.set_force(force);
    if (force == Force::kRelay) p.paths.reset("forced");
    if (p.sessions.current) start_punching(now, p);
  });
  for (const auto& [cert, why] : refused) refuse_peer(now, cert, why);
  schedule(now);
}

void Node::stop(Time now) {
  peers_.for_each([&](Peer& p) {
    if (!p.sessions.usable(now)) return;
    const Path* path = p.paths.active();
    if (!path && !relay_allowed(p)) return;
    send_control_to_peer(now, p, wire::Goodbye{},
                         path ? std::optional<Endpoint>(path->endpoint) : std::nullopt,
                         path ? path->socket : 0);
  });
  coord_.stop(now);
}

void Node::on_peer_goodbye(Time now, Peer& p) {
  log_->info("peer={} vip={} left the mesh (goodbye)", p.name(), p.vip.to_string());
  p.sessions.clear(sessions_);
  p.paths.reset("gone");
  p.state = Peer::State::kGone;
  p.unanswered_since.reset();
  p.keepalive_due.reset();
  drops_.queue_full += clear_queue(p);
  if (p.ping_probe != 0) finish_ping(p, std::nullopt, "peer left");
  schedule(now);
}

}  // namespace p2p::core
