// Node, part three: the peer table's lifecycle. Peers are made for traffic, introductions and
// handshakes, found in O(1) (PeerTable), and removed when the coordinator does not know their
// address (which then goes to the negative cache), when idle for peer_idle_timeout, or to make
// room at max_peers. Lookups to the coordinator go through one token bucket; the packets that
// wait for a session through one node-wide budget.
#include <algorithm>
#include <array>
#include <utility>

#include "daemon/core/node.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

// At max_peers, how many of the least recently used peers are looked at for an idle one.
constexpr std::size_t kEvictionWindow = 64;
constexpr Duration kDropSummaryInterval = 60s;

constexpr std::array<std::pair<const char*, std::uint64_t DropCounters::*>, 11> kDropReasons{{
    {"malformed", &DropCounters::malformed},
    {"unknown_index", &DropCounters::unknown_index},
    {"decrypt_failed", &DropCounters::decrypt_failed},
    {"bad_source", &DropCounters::bad_source},
    {"no_route", &DropCounters::no_route},
    {"queue_full", &DropCounters::queue_full},
    {"handshake_failed", &DropCounters::handshake_failed},
    {"unknown_address", &DropCounters::unknown_address},
    {"lookup_rate", &DropCounters::lookup_rate},
    {"peer_table_full", &DropCounters::peer_table_full},
    {"queue_budget", &DropCounters::queue_budget},
}};

}  // namespace

void Node::on_registered(Time now) {
  // The coordinator answers with its revocation list if it holds a newer one.
  coord_.send(now, wire::RevocationHave{revocations_.sequence()});
  peers_.for_each([&](Peer& p) {
    if (p.state == Peer::State::kRequesting && p.request_attempts == 0) request_peer(now, p);
  });
}

void Node::on_peer_unknown(Time now, const wire::PeerUnknown& u) {
  if (finish_lookup_ping(u.request_id, false, u.reason)) return;
  Peer* p = peers_.by_request(u.request_id);
  if (!p || p->cert) return;
  log_->debug("vip={} unknown to the coordinator: {}", p->vip.to_string(), u.reason);
  drops_.unknown_address += clear_queue(*p);
  unknown_.add(now, p->vip);
  remove_peer(*p);
}

Peer* Node::peer_for(Time now, Ipv4 vip) {
  if (Peer* p = peers_.find(vip)) return p;
  if (peers_.size() >= settings_.limits.max_peers) {
    Peer* victim = peers_.least_recent([this](const Peer& p) { return idle(p); }, kEvictionWindow);
    if (!victim) {
      ++drops_.peer_table_full;
      return nullptr;
    }
    log_->debug("peer={} removed to make room (max_peers)", victim->name());
    remove_peer(*victim);
    ++evicted_full_;
  }
  auto p = std::make_unique<Peer>(vip, path_policy_, *log_, fx_.random_u64());
  p->created = now;
  for (const auto& pol : settings_.policies) {
    if (auto* v = std::get_if<Ipv4>(&pol.match); v && *v == vip) p->paths.set_force(pol.force);
  }
  unknown_.forget(vip);
  return &peers_.insert(std::move(p));
}

Peer* Node::find_peer(const std::variant<Ipv4, std::string>& target) {
  if (auto* v = std::get_if<Ipv4>(&target)) return peers_.find(*v);
  return peers_.by_name(std::get<std::string>(target));
}

void Node::set_certificate(Peer& p, crypto::Certificate cert) {
  Force force = policy_for(cert);
  p.set_certificate(std::move(cert), force);
  peers_.named(p);
}

Force Node::policy_for(const crypto::Certificate& cert) const {
  for (const auto& pol : settings_.policies) {
    if (auto* v = std::get_if<Ipv4>(&pol.match); v && *v == cert.vip.address) return pol.force;
    if (auto* n = std::get_if<std::string>(&pol.match); n && *n == cert.name) return pol.force;
  }
  return Force::kAuto;
}

void Node::request_peer(Time now, Peer& p) {
  p.state = Peer::State::kRequesting;
  p.request_sent = now;
  if (!registered()) {
    p.request_attempts = 0;  // sent once RegisterOk arrives
    return;
  }
  schedule(now + kRequestRetry);
  if (send_lookup(now, p)) ++p.request_attempts;  // else peer_tick tries again
}

bool Node::send_lookup(Time now, Peer& p) {
  if (!lookups_.take(now)) {
    ++drops_.lookup_rate;
    return false;
  }
  peers_.set_request(p, coord_.next_request_id());
  coord_.send(now, wire::PeerRequest{p.request_id, p.vip});
  return true;
}

bool Node::idle(const Peer& p) const {
  const bool lookup_in_flight = p.state == Peer::State::kRequesting && p.request_attempts > 0;
  return !p.sessions.current && !p.sessions.previous && !p.sessions.pending && p.queue.empty() &&
         p.ping_probe == 0 && !lookup_in_flight;
}

Time Node::last_used(const Peer& p) const {
  return std::max({p.created, p.last_data_activity, p.last_received, p.last_sent, p.request_sent,
                   p.last_handshake.value_or(Time{})});
}

void Node::remove_peer(Peer& p) {
  drops_.queue_full += clear_queue(p);
  p.sessions.clear(sessions_);
  if (p.ping_done) finish_ping(p, std::nullopt, "peer removed");
  release_punch_socket(p, true);
  tcp_close(p);
  peers_.erase(p.vip);
}

void Node::queue_packet(Peer& p, PacketView packet) {
  drops_.queue_full +=
      p.queue.push(packet.span(), settings_.max_queued_packets, p.vip, queue_budget_);
  // Over the node's budget: the oldest packet waiting, whoever it is for, goes.
  while (queue_budget_.over()) {
    auto oldest = queue_budget_.oldest();
    if (!oldest) break;
    queue_budget_.pop_oldest();
    Peer* owner = peers_.find(oldest->owner);
    if (owner && owner->queue.front_seq() == oldest->seq) {
      owner->queue.pop(queue_budget_);
      ++drops_.queue_budget;
    }
  }
  queue_budget_.compact([this](const QueueBudget::Queued& q) {
    const Peer* owner = peers_.find(q.owner);
    auto front = owner ? owner->queue.front_seq() : std::nullopt;
    return front && *front <= q.seq;
  });
}

void Node::log_drop_summary(Time now) {
  if (now < next_summary_) {
    schedule(next_summary_);
    return;
  }
  std::string line;
  for (const auto& [reason, field] : kDropReasons) {
    if (auto n = drops_.*field - summarised_.*field; n > 0)
      line += fmt::format(" {}={}", reason, n);
  }
  if (!line.empty()) {
    log_->info("dropped in the last {}s:{} (unknown addresses cached={}, peers={})",
               std::chrono::duration_cast<std::chrono::seconds>(kDropSummaryInterval).count(), line,
               unknown_.size(), peers_.size());
  }
  summarised_ = drops_;
  next_summary_ = now + kDropSummaryInterval;
  schedule(next_summary_);
}

}  // namespace p2p::core
