#include "coordinator/shell/coordinator_metrics.hpp"

#include "net/metrics.hpp"

namespace p2p::coord {

std::string render_coordinator_metrics(const CoordinatorStatus& s) {
  metrics::Writer w;
  w.gauge("p2pvpn_coordinator_registered_nodes", "Nodes registered now.",
          static_cast<double>(s.nodes.size()));
  w.gauge("p2pvpn_coordinator_pending_handshakes", "Node handshakes in progress.",
          static_cast<double>(s.pending_handshakes));
  w.counter("p2pvpn_coordinator_relay_bytes_total", "Payload bytes relayed between nodes.",
            s.relayed_bytes);
  w.counter("p2pvpn_coordinator_relay_packets_total", "Datagrams relayed between nodes.",
            s.relayed_packets);
  w.counter("p2pvpn_coordinator_relay_dropped_total",
            "Datagrams the relay refused (disabled, unknown target, over the rate limit).",
            s.relay_dropped);
  w.begin("p2pvpn_coordinator_node_relay_bytes_total", metrics::Type::kCounter,
          "Payload bytes relayed from a registered node.");
  for (const auto& n : s.nodes) {
    w.sample({{"node", n.name}, {"vip", n.vip.to_string()}}, n.relayed_bytes);
  }
  w.counter("p2pvpn_coordinator_handshakes_refused_total",
            "Node handshakes refused (certificate, revocation, address taken, limits).",
            s.handshakes_refused);
  w.counter("p2pvpn_coordinator_malformed_total", "Malformed datagrams and messages dropped.",
            s.malformed);
  w.counter("p2pvpn_coordinator_stun_answered_total", "STUN Binding requests answered.",
            s.stun_answered);
  return w.take();
}

}  // namespace p2p::coord
