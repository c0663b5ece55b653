// The coordinator's side of TCP punching: a node's TcpPunchRequest, the assist port's hellos
// and the TcpPunchGo both sides get at once (the flow is in tcp_punch_broker.hpp).
#include "coordinator/core/coordinator.hpp"
#include "net/tcp_assist.hpp"

namespace p2p::coord {

void Coordinator::on_tcp_punch_request(Time now, Entry& e, const wire::TcpPunchRequest& q) {
  // A punch costs the asker a lookup and the target an introduction, like a PeerRequest.
  if (!e.lookup_bucket.take(now, 1)) {
    ++e.lookups_refused;
    ++counters_.lookups_refused;
    return tcp_punch_failed(now, e.cert.vip.address, q.punch_id, "rate limited: too many lookups");
  }
  Entry* target = registry_.by_vip(q.to);
  if (!target || target == &e || !target->current)
    return tcp_punch_failed(now, e.cert.vip.address, q.punch_id, "no such node is registered");
  if (!target->introduction_bucket.take(now, 1)) {
    ++target->introductions_refused;
    ++counters_.introductions_refused;
    return tcp_punch_failed(now, e.cert.vip.address, q.punch_id,
                            "rate limited: that node is introduced too often");
  }
  TcpPunchBroker::Side a{e.cert.vip.address, q.punch_id, q.token, std::nullopt};
  TcpPunchBroker::Side b{q.to, next_punch_id_++, {}, std::nullopt};
  if (next_punch_id_ == 0) next_punch_id_ = 1;
  fx_.fill_random(b.token);
  if (!tcp_punches_.start(now, a, b))
    return tcp_punch_failed(now, e.cert.vip.address, q.punch_id, "too many TCP punches at once");
  send_control(now, *target, wire::TcpPunchOffer{b.punch_id, a.vip, b.token});
  log_->debug("tcp punch node={} to node={} offered", e.cert.name, target->cert.name);
}

void Coordinator::on_assist(Time now, const Endpoint& from,
                            std::span<const std::uint8_t> hello) noexcept {
  try {
    on_assist_hello(now, from, hello);
  } catch (...) {
    ++counters_.internal_error;
  }
}

void Coordinator::on_assist_hello(Time now, const Endpoint& from,
                                  std::span<const std::uint8_t> hello) {
  auto token = wire::parse_assist_hello(hello);
  if (!token || !tcp_punches_.knows(*token)) {
    ++counters_.assist_unknown;
    return;
  }
  auto go = tcp_punches_.observe(*token, from);
  if (!go) return;
  Entry* a = registry_.by_vip(go->a);
  Entry* b = registry_.by_vip(go->b);
  if (!a || !b) {
    ++counters_.tcp_punches_failed;
    if (a) tcp_punch_failed(now, go->a, go->to_a.punch_id, "the peer is gone");
    return;
  }
  // Both at the same moment, so that their SYNs cross.
  ++counters_.tcp_punches;
  send_control(now, *a, go->to_a);
  send_control(now, *b, go->to_b);
  log_->debug("tcp punch node={} endpoint={} and node={} endpoint={}: go", a->cert.name,
              go->to_b.peer_endpoint.to_string(), b->cert.name, go->to_a.peer_endpoint.to_string());
}

void Coordinator::tcp_punch_failed(Time now, Ipv4 vip, std::uint32_t punch_id, std::string reason) {
  ++counters_.tcp_punches_failed;
  if (Entry* e = registry_.by_vip(vip))
    send_control(now, *e, wire::TcpPunchFailed{punch_id, std::move(reason)});
}

}  // namespace p2p::coord
