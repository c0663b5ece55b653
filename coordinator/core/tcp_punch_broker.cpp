#include "coordinator/core/tcp_punch_broker.hpp"

namespace p2p::coord {

bool TcpPunchBroker::start(Time now, const Side& a, const Side& b) {
  // Matched punches stay in deadlines_ until due: that queue is bounded too.
  if (punches_.size() >= max_ || deadlines_.size() >= 2 * max_ || a.token == b.token ||
      punches_.contains(a.token) || punches_.contains(b.token) || by_b_token_.contains(a.token) ||
      by_b_token_.contains(b.token))
    return false;
  punches_.emplace(a.token, Punch{a, b});
  by_b_token_.emplace(b.token, a.token);
  deadlines_.emplace_back(now + timeout_, a.token);
  return true;
}

std::optional<TcpPunchBroker::Go> TcpPunchBroker::observe(const wire::PunchToken& token,
                                                          const Endpoint& from) {
  auto it = punches_.find(token);
  bool is_b = false;
  if (it == punches_.end()) {
    auto b = by_b_token_.find(token);
    if (b == by_b_token_.end()) return std::nullopt;
    it = punches_.find(b->second);
    if (it == punches_.end()) return std::nullopt;
    is_b = true;
  }
  Punch& p = it->second;
  Side& side = is_b ? p.b : p.a;
  if (side.observed) return std::nullopt;  // the first hello counts
  side.observed = from;
  if (!p.a.observed || !p.b.observed) return std::nullopt;
  Go go{p.a.vip, p.b.vip, wire::TcpPunchGo{p.a.punch_id, p.b.vip, *p.b.observed},
        wire::TcpPunchGo{p.b.punch_id, p.a.vip, *p.a.observed}};
  by_b_token_.erase(p.b.token);
  punches_.erase(it);  // its deadline entry is skipped when it comes due
  return go;
}

Time TcpPunchBroker::next_deadline() const {
  return deadlines_.empty() ? Time::max() : deadlines_.front().first;
}

}  // namespace p2p::coord
