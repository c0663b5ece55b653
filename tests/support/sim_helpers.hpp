// Small helpers the simulated-network tests share: lab addresses spelt out, what a node's TUN
// received, and one peer's status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/sim_net.hpp"

namespace p2p::sim {

inline Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}
inline Ipv4 ip(const char* s) {
  return *Ipv4::parse(s);
}

// The UDP payload of an IPv4 packet without options (what SimNode::send_udp_to sends).
inline std::string payload_of(const std::vector<std::uint8_t>& ip_packet) {
  return ip_packet.size() >= 28 ? std::string(ip_packet.begin() + 28, ip_packet.end())
                                : std::string();
}

// Whether `n`'s TUN received a packet carrying `text`.
inline bool received(const SimNode& n, const std::string& text) {
  for (const auto& p : n.tun_out) {
    if (p.size() >= 28 && payload_of(p) == text) return true;
  }
  return false;
}

// A copy, so that it outlives the status it came from.
inline std::optional<core::PeerStatus> peer_status(const core::NodeStatus& s,
                                                   const std::string& name) {
  for (const auto& p : s.peers) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}
inline std::optional<core::PeerStatus> peer_status(const core::NodeStatus& s, Ipv4 vip) {
  for (const auto& p : s.peers) {
    if (p.vip == vip) return p;
  }
  return std::nullopt;
}

}  // namespace p2p::sim
