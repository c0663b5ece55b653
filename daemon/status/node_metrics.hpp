// p2pvpnd's Prometheus metrics (served at /metrics when mesh.yaml has `metrics: { listen: }`),
// rendered from the node's status without I/O. The names (README "Metrics" lists them):
//   p2pvpn_node_info{node,vip}                          1
//   p2pvpn_nat_info{type,allocation}                    1, our NAT as discovered
//   p2pvpn_coordinator_registered                       1 registered, 0 not
//   p2pvpn_peers{path,transport}                        peers by path (direct|relay|none)
//   p2pvpn_peer_info{peer,vip,state,path}               1 per peer
//   p2pvpn_peer_{receive,transmit}_{bytes,packets}_total{peer,vip}
//   p2pvpn_peer_rtt_seconds{peer,vip}                   when measured
//   p2pvpn_drops_total{reason}                          every counted drop
//   p2pvpn_handshakes_{started,completed,failed}_total
//   p2pvpn_punch_attempts_total, p2pvpn_punch_successes_total
//   p2pvpn_time_to_direct_seconds                       histogram
//   p2pvpn_birthday_{probes,attempts,successes}_total  birthday punches (issue 13)
#pragma once

#include <cstdint>
#include <string>

#include "daemon/status/status.hpp"

namespace p2p::daemon {

// `tun_write_drops`: packets the shell could not write to the TUN (reason "tun_write").
std::string render_node_metrics(const core::NodeStatus& s, std::uint64_t tun_write_drops);

}  // namespace p2p::daemon
