#include "daemon/core/path_set.hpp"

#include <algorithm>
#include <tuple>

#include "net/log_value.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

// UDP direct (LAN first) > TCP direct.
int rank(const Path& p) {
  if (p.transport == Transport::kTcp) return 2;
  return p.kind == PathKind::kLan ? 0 : 1;
}

}  // namespace

const char* to_string(Transport t) {
  return t == Transport::kTcp ? "tcp" : "udp";
}

const char* to_string(PathKind k) {
  switch (k) {
    case PathKind::kLan: return "lan";
    case PathKind::kPublic: return "public";
    case PathKind::kReflexive: return "reflexive";
    case PathKind::kPredicted: return "predicted";
    case PathKind::kMapped: return "mapped";
  }
  return "?";
}

PathSet::PathSet(const PathPolicy& policy, spdlog::logger& log, std::uint64_t probe_seed)
    : policy_(policy), log_(log), probe_counter_(probe_seed | 1) {}

template <class Pred>
void PathSet::erase_paths(Pred pred) {
  // A path is its endpoint on a carrier: one of our sockets (UDP) or a stream (TCP).
  std::optional<std::tuple<Endpoint, Transport, std::uint32_t, std::uint32_t>> chosen;
  const auto key = [](const Path& x) {
    return std::tuple{x.endpoint, x.transport, x.socket, x.stream};
  };
  if (active_ >= 0) chosen = key(paths_[active_]);
  std::erase_if(paths_, pred);
  active_ = -1;
  for (int i = 0; chosen && i < static_cast<int>(paths_.size()); ++i) {
    if (key(paths_[i]) == *chosen) active_ = i;
  }
}

void PathSet::add_candidate(const Endpoint& ep, PathKind kind, std::uint32_t socket) {
  if (paths_.size() >= kMaxCandidates) return;
  for (const auto& x : paths_) {
    if (x.endpoint == ep && x.socket == socket && x.transport == Transport::kUdp) return;
  }
  Path path;
  path.endpoint = ep;
  path.kind = kind;
  path.socket = socket;
  paths_.push_back(path);
}

void PathSet::start_punching(Time now, const CandidateSources& c, bool traffic, PathEffects& fx) {
  if (force_ == Force::kRelay) {
    relay_reason_ = "forced";
    return;
  }
  if (!policy_.punch_enabled && force_ != Force::kDirect) {
    relay_reason_ = "punching disabled";
    return;
  }
  const PunchPlan plan = plan_punch(c.own_public, c.own_nat, c.peer_public, c.peer_nat,
                                    policy_.port_prediction, policy_.birthday);
  // A port mapping on either side makes even two symmetric NATs reachable.
  const bool mapped = c.peer_mapped || c.own_mapped;
  if (plan.method == PunchMethod::kNone && force_ != Force::kDirect && !mapped) {
    relay_reason_ = "both symmetric";
    return;
  }
  method_ = plan.method;
  // Candidates: the peer's public endpoint; its LAN endpoints when we share a public address
  // (the same NAT) or the coordinator has not told us ours; for a symmetric peer with
  // sequential allocation, a bounded set of predicted ports (hard_nat_punch.hpp).
  // The peer's mapping first: an endpoint that is both keeps the kind that makes it reachable.
  if (c.peer_mapped) add_candidate(*c.peer_mapped, PathKind::kMapped);
  if (c.peer_public) add_candidate(*c.peer_public, PathKind::kPublic);
  bool same_nat =
      !c.own_public || !c.peer_public || c.own_public->address == c.peer_public->address;
  if (same_nat) {
    for (const auto& e : c.peer_local) add_candidate(e, PathKind::kLan);
  }
  for (const auto& e : plan.predicted) add_candidate(e, PathKind::kPredicted);
  if (paths_.empty()) {
    relay_reason_ = "no candidates";
    return;
  }
  punching_ = true;
  punch_started_ = now;
  if (policy_.counters) ++policy_.counters->punch_attempts;
  punch_deadline_ = now + policy_.punch_timeout;
  relay_reason_ = "punching";
  for (auto& path : paths_) {
    if (!path.confirmed) path.next_probe = now;
  }
  log_.debug("peer={} punching {} candidates", name_, paths_.size());
  tick(now, traffic, fx);
}

bool PathSet::uses_socket(std::uint32_t socket) const {
  return std::any_of(paths_.begin(), paths_.end(), [&](const Path& x) {
    return x.transport == Transport::kUdp && x.socket == socket;
  });
}

PathSet::ProbeSource PathSet::on_probe(Time now, const Endpoint& from, std::uint32_t socket) {
  bool known = std::any_of(paths_.begin(), paths_.end(), [&](const Path& x) {
    return x.endpoint == from && x.socket == socket && x.transport == Transport::kUdp;
  });
  if (known || force_ == Force::kRelay) return ProbeSource::kKnown;
  const std::size_t held = paths_.size();
  add_candidate(from, PathKind::kReflexive, socket);
  if (paths_.size() == held) return ProbeSource::kKnown;  // no room for more candidates
  paths_.back().next_probe = now;
  schedule(now);
  // A probe from an endpoint we did not know: the peer may have moved (another network, a NAT
  // that remapped it). Check the paths we hold now rather than wait for them to time out.
  if (!punching_ && active_ >= 0 && paths_[active_].transport == Transport::kUdp) {
    check_now(now);
    return ProbeSource::kMoved;
  }
  // On the relay (or a TCP path) between rounds (a NAT that remapped the peer after a collision
  // or a reboot): punch its new endpoint at once rather than after the backoff.
  if (!punching_) return ProbeSource::kMoved;
  return ProbeSource::kNew;
}

bool PathSet::on_ack(Time now, std::uint64_t probe_id, const Endpoint& from, std::uint32_t socket) {
  if (probe_id == 0) return false;
  for (auto& path : paths_) {
    if (path.probe_id != probe_id || path.endpoint != from || path.socket != socket) continue;
    if (path.transport != Transport::kUdp) continue;
    path.probe_id = 0;
    path.rtt = now - path.probe_sent;
    path.last_ack = now;
    path.unanswered = 0;
    if (!path.confirmed) {
      path.confirmed = true;
      log_.debug("peer={} path={} confirmed rtt={}us", name_, from.to_string(),
                 std::chrono::duration_cast<std::chrono::microseconds>(*path.rtt).count());
    }
    choose(now);
    return true;
  }
  return false;
}

void PathSet::check_now(Time now) {
  for (auto& path : paths_) {
    if (!path.confirmed) continue;
    path.unanswered = std::max(path.unanswered, kProbesToDeclareDead - 1);
    path.next_probe = now;
  }
  schedule(now);
}

void PathSet::choose(Time now) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(paths_.size()); ++i) {
    const auto& x = paths_[i];
    if (!x.confirmed) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const auto& b = paths_[best];
    if (rank(x) < rank(b) || (rank(x) == rank(b) && x.rtt.value_or(1h) < b.rtt.value_or(1h)))
      best = i;
  }
  if (force_ == Force::kRelay) best = -1;
  if (best != active_) {
    const char* was = active_ < 0                                    ? "relay"
                      : paths_[active_].transport == Transport::kTcp ? "direct tcp"
                                                                     : "direct";
    const bool udp = best >= 0 && paths_[best].transport == Transport::kUdp;
    if (udp && active_ < 0 && punching_ && policy_.counters) {  // relay -> direct
      ++policy_.counters->punch_successes;
      policy_.counters->time_to_direct.observe(
          std::chrono::duration<double>(now - punch_started_).count());
    }
    active_ = best;
    if (best >= 0) {
      log_.info("peer={} path=direct endpoint={} kind={} transport={} (was {})", name_,
                paths_[best].endpoint.to_string(), to_string(paths_[best].kind),
                to_string(paths_[best].transport), was);
      relay_reason_.clear();
      // On TCP, UDP is still tried in the background, at the backoff's pace.
      if (udp) backoff_ = kFirstPunchBackoff;
    } else {
      log_.info("peer={} path=relay reason={}", name_, log_value(relay_reason_));
    }
  }
  // The best kind is confirmed: stop spraying the remaining candidates.
  if (best >= 0 && punching_ && paths_[best].transport == Transport::kUdp) {
    bool lan_pending = std::any_of(paths_.begin(), paths_.end(), [](const Path& x) {
      return x.kind == PathKind::kLan && !x.confirmed;
    });
    if (paths_[best].kind == PathKind::kLan || !lan_pending) {
      punching_ = false;
      erase_paths([](const Path& x) { return !x.confirmed && x.kind == PathKind::kPredicted; });
    }
  }
}

PathSet::TickResult PathSet::tick(Time now, bool traffic, PathEffects& fx) {
  TickResult result;
  deadline_ = Time::max();
  // Punching ends before anything is probed: a probe sent at the deadline could confirm
  // nothing (its candidate is about to be dropped).
  if (punching_ && now >= punch_deadline_) {
    punching_ = false;
    if (!on_udp()) {
      if (active_ < 0) relay_reason_ = "punching timed out";
      next_retry_ = now + backoff_;
      backoff_ = std::min<Duration>(backoff_ * 2, kMaxPunchBackoff);
      log_.info("peer={} punching timed out, relaying; next try in {}s", name_,
                std::chrono::duration_cast<std::chrono::seconds>(next_retry_ - now).count());
      erase_paths([](const Path& x) { return !x.confirmed && x.transport == Transport::kUdp; });
      choose(now);
    }
  }
  bool changed = false;
  for (int i = 0; i < static_cast<int>(paths_.size()); ++i) {
    auto& path = paths_[i];
    if (path.probe_id != 0 && now - path.probe_sent >= kProbeTimeout) {
      path.probe_id = 0;
      if (++path.unanswered >= kProbesToDeclareDead && path.confirmed) {
        path.confirmed = false;
        changed = true;
        if (i == active_ && path.transport == Transport::kTcp) {
          relay_reason_ = "tcp path lost";  // the owner closes its stream
          log_.warn("peer={} tcp path endpoint={} lost", name_, path.endpoint.to_string());
        } else if (i == active_) {
          relay_reason_ = "direct path lost";
          log_.warn("peer={} direct path endpoint={} lost", name_, path.endpoint.to_string());
          next_retry_ = now + kRetryAfterLoss;
          result.active_lost = true;
        }
      }
    }
    bool probe = false;
    Duration interval{};
    if (path.confirmed) {
      interval = (i == active_ && traffic) ? kActiveProbeInterval : policy_.keepalive;
      // Data is flowing on a path not heard from recently: check it now.
      if (i == active_ && traffic && path.probe_id == 0 && path.last_ack &&
          now - *path.last_ack > kActiveProbeInterval + kProbeTimeout)
        path.next_probe = std::min(path.next_probe, now);
      probe = now >= path.next_probe;
    } else if (punching_) {
      interval = now - punch_started_ < kPunchFastPhase ? kPunchFastInterval : kPunchSlowInterval;
      probe = now >= path.next_probe;
    }
    if (path.transport == Transport::kTcp) {
      // Over its stream, at the confirmed paths' pace, until removed.
      if (!path.confirmed) interval = kPunchSlowInterval;
      probe = now >= path.next_probe;
      if (probe && path.probe_id == 0) {
        path.probe_id = next_probe_id();
        path.probe_sent = now;
        fx.send_stream_probe(path.stream, path.probe_id);
      }
      if (probe) path.next_probe = now + interval;
      schedule(path.next_probe);
    } else if (probe && path.probe_id == 0) {
      path.probe_id = next_probe_id();
      path.probe_sent = now;
      path.next_probe = now + interval;
      send_probe(fx, path);
    } else if (probe && punching_ && !path.confirmed) {
      // Punching faster than a probe times out: send the outstanding probe again (same id,
      // so an answer to any copy confirms; the RTT counts from the first copy).
      path.next_probe = now + interval;
      send_probe(fx, path);
    } else if (probe) {
      path.next_probe = now + interval;
    }
    if (path.confirmed || punching_) schedule(path.next_probe);
    if (path.probe_id != 0) schedule(path.probe_sent + kProbeTimeout);
  }
  if (changed) choose(now);
  if (punching_) schedule(punch_deadline_);
  if (!punching_ && !on_udp() && now >= next_retry_) {
    next_retry_ = Time::max();
    result.retry_due = true;
  }
  if (!punching_ && !on_udp() && next_retry_ != Time::max()) schedule(next_retry_);
  return result;
}

void PathSet::send_probe(PathEffects& fx, const Path& path) {
  if (path.socket != 0)
    fx.send_probe_via(path.socket, path.endpoint, path.probe_id);
  else
    fx.send_probe(path.endpoint, path.probe_id);
}

void PathSet::add_stream(Time now, std::uint32_t stream, const Endpoint& remote) {
  erase_paths([](const Path& x) { return x.transport == Transport::kTcp; });
  Path path;
  path.transport = Transport::kTcp;
  path.endpoint = remote;
  path.kind = PathKind::kPublic;
  path.stream = stream;
  path.confirmed = true;
  path.last_ack = now;
  path.next_probe = now + policy_.keepalive;
  paths_.push_back(path);
  // UDP keeps being tried in the background; the first retry is one backoff away.
  if (!punching_ && next_retry_ == Time::max()) next_retry_ = now + backoff_;
  choose(now);
  schedule(std::min(path.next_probe, next_retry_));
}

bool PathSet::remove_stream(Time now, std::uint32_t stream) {
  const bool was_active = active_ >= 0 && paths_[active_].transport == Transport::kTcp &&
                          paths_[active_].stream == stream;
  if (was_active) relay_reason_ = "tcp path closed";
  erase_paths([&](const Path& x) { return x.transport == Transport::kTcp && x.stream == stream; });
  choose(now);
  return was_active;
}

const Path* PathSet::tcp() const {
  for (const auto& x : paths_) {
    if (x.transport == Transport::kTcp) return &x;
  }
  return nullptr;
}

bool PathSet::on_stream_ack(Time now, std::uint64_t probe_id, std::uint32_t stream) {
  for (auto& path : paths_) {
    if (path.transport != Transport::kTcp || path.stream != stream) continue;
    if (probe_id == 0 || path.probe_id != probe_id) return false;
    path.probe_id = 0;
    path.rtt = now - path.probe_sent;
    path.last_ack = now;
    path.unanswered = 0;
    path.confirmed = true;
    choose(now);
    return true;
  }
  return false;
}

void PathSet::retry_udp_soon(Time now) {
  if (on_udp() || punching_ || force_ == Force::kRelay) return;
  backoff_ = kFirstPunchBackoff;
  next_retry_ = now;
  schedule(now);
}

void PathSet::reset(std::string reason) {
  paths_.clear();
  active_ = -1;
  punching_ = false;
  relay_reason_ = std::move(reason);
}

}  // namespace p2p::core
