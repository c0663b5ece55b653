// p2pvpn-coordinator's Prometheus metrics (served at /metrics when coordinator.yaml has
// `metrics: { listen: }`), rendered from the coordinator's status without I/O:
//   p2pvpn_coordinator_registered_nodes                 gauge
//   p2pvpn_coordinator_pending_handshakes               gauge
//   p2pvpn_coordinator_relay_bytes_total                relayed payload bytes
//   p2pvpn_coordinator_relay_packets_total
//   p2pvpn_coordinator_relay_dropped_total              refused by the relay (rate, target)
//   p2pvpn_coordinator_node_relay_bytes_total{node,vip} per registered node
//   p2pvpn_coordinator_handshakes_refused_total
//   p2pvpn_coordinator_malformed_total                  unparseable datagrams and messages
//   p2pvpn_coordinator_stun_answered_total
#pragma once

#include <string>

#include "coordinator/core/coordinator.hpp"

namespace p2p::coord {

std::string render_coordinator_metrics(const CoordinatorStatus& s);

}  // namespace p2p::coord
