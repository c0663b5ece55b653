#include "daemon/status/node_metrics.hpp"

#include <array>
#include <chrono>

namespace p2p::daemon {

using metrics::Type;

namespace {

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

void peer_counter(metrics::Writer& w, const core::NodeStatus& s, const char* name, const char* help,
                  std::uint64_t core::PeerStatus::*field) {
  w.begin(name, Type::kCounter, help);
  for (const auto& p : s.peers) {
    w.sample({{"peer", p.name}, {"vip", p.vip.to_string()}}, p.*field);
  }
}

}  // namespace

std::string render_node_metrics(const core::NodeStatus& s, std::uint64_t tun_write_drops) {
  metrics::Writer w;
  w.begin("p2pvpn_node_info", Type::kGauge, "This node: its name and virtual IP prefix.");
  w.sample({{"node", s.name}, {"vip", s.vip.to_string()}}, std::uint64_t{1});
  w.begin("p2pvpn_nat_info", Type::kGauge, "The NAT this node sits behind, as last discovered.");
  w.sample(
      {{"type", wire::to_string(s.nat.type)}, {"allocation", wire::to_string(s.nat.allocation)}},
      std::uint64_t{1});
  w.gauge("p2pvpn_coordinator_registered", "1 while registered with a coordinator, else 0.",
          s.coordinator_state == "registered" ? 1.0 : 0.0);

  // Every path the daemon has today runs over UDP; the label is there for the next transport.
  std::array<std::uint64_t, 3> by_path{};  // direct, relay, none
  for (const auto& p : s.peers) ++by_path[p.path == "direct" ? 0 : p.path == "relay" ? 1 : 2];
  w.begin("p2pvpn_peers", Type::kGauge, "Known peers by the path their traffic takes.");
  w.sample({{"path", "direct"}, {"transport", "udp"}}, by_path[0]);
  w.sample({{"path", "relay"}, {"transport", "udp"}}, by_path[1]);
  w.sample({{"path", "none"}, {"transport", "none"}}, by_path[2]);

  w.begin("p2pvpn_peer_info", Type::kGauge, "One per known peer: its state and path.");
  for (const auto& p : s.peers) {
    w.sample({{"peer", p.name}, {"vip", p.vip.to_string()}, {"state", p.state}, {"path", p.path}},
             std::uint64_t{1});
  }
  peer_counter(w, s, "p2pvpn_peer_receive_bytes_total", "Bytes of IP packets received from a peer.",
               &core::PeerStatus::bytes_in);
  peer_counter(w, s, "p2pvpn_peer_transmit_bytes_total", "Bytes of IP packets sent to a peer.",
               &core::PeerStatus::bytes_out);
  peer_counter(w, s, "p2pvpn_peer_receive_packets_total", "IP packets received from a peer.",
               &core::PeerStatus::packets_in);
  peer_counter(w, s, "p2pvpn_peer_transmit_packets_total", "IP packets sent to a peer.",
               &core::PeerStatus::packets_out);
  w.begin("p2pvpn_peer_rtt_seconds", Type::kGauge, "Round-trip time over the peer's path.");
  for (const auto& p : s.peers) {
    if (p.rtt) w.sample({{"peer", p.name}, {"vip", p.vip.to_string()}}, seconds(*p.rtt));
  }

  const auto& d = s.drops;
  w.begin("p2pvpn_drops_total", Type::kCounter, "Packets and datagrams dropped, by reason.");
  d.for_each([&](const char* reason, std::uint64_t n) { w.sample({{"reason", reason}}, n); });
  w.sample({{"reason", "tun_write"}}, tun_write_drops);

  const auto& c = s.counters;
  w.counter("p2pvpn_handshakes_started_total", "Handshakes initiated with peers.",
            c.handshakes_started);
  w.counter("p2pvpn_handshakes_completed_total", "Sessions established with peers.",
            c.handshakes_completed);
  w.counter("p2pvpn_handshakes_failed_total", "Peer handshakes refused or failed.",
            d.handshake_failed);
  w.counter("p2pvpn_punch_attempts_total", "Hole-punching rounds started.", c.punch_attempts);
  w.counter("p2pvpn_punch_successes_total", "Hole-punching rounds that found a direct path.",
            c.punch_successes);
  w.counter("p2pvpn_birthday_probes_total", "Birthday-punch probes sent (either side).",
            c.birthday_probes);
  w.counter("p2pvpn_birthday_attempts_total", "Birthday punches started.", c.birthday_attempts);
  w.counter("p2pvpn_birthday_successes_total", "Birthday punches that got a direct answer.",
            c.birthday_successes);
  w.begin("p2pvpn_time_to_direct_seconds", Type::kHistogram,
          "From the start of punching to the first confirmed direct path.");
  w.histogram({}, c.time_to_direct);
  return w.take();
}

}  // namespace p2p::daemon
