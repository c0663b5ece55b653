// mesh.yaml: a node's configuration, loaded into a typed, validated MeshConfig.
//
//   node: { key: home-pc.key, cert: home-pc.crt }   # required; paths relative to this file
//   ca: ca.crt                                      # required
//   coordinators: [203.0.113.10:7400]               # required, >= 1, IPv4 or [IPv6]:port
//     # or an entry { endpoint: 203.0.113.10:7400, tcp: 443 }: its TCP main port, used when
//     # UDP to it gets no answer (coordinator.yaml tcp.main)
//   tun: { name: p2p0, mtu: 1400 }                  # mtu 576..9000
//   listen: { port: 0, address: 0.0.0.0 }           # port 0 = a free port picked at start
//   control_socket: /run/p2pvpnd.sock
//   log: { level: info }                            # trace|debug|info|warn|error|off
//   keepalive: 25s                                  # 1s..10m
//   revoked: []                                     # certificate fingerprints, 64 hex digits
//   revocation_list: revoked.list                   # optional; the CA-signed list, kept here
//   peers:                                          # per-peer overrides
//     - { name: laptop, force: relay }              # name or vip (exactly one); direct|relay
//     - { vip: 10.88.0.5, transport: tcp }          # auto|udp|tcp; force or transport or both
//   punch: { enabled: true, timeout: 10s, port_prediction: true, tcp_assist: 7402,
//            birthday: { enabled: true, sockets: 256, probes_per_second: 200, max_probes: 1024 } }
//   relay: { allowed: true }
//   discovery: { server: 198.51.100.7:3478, interval: 10m }   # NAT discovery; 1m..24h
//   limits:                                         # bounds on the node's peer state
//     max_peers: 4096              # 1..1000000; full: the least recently used idle one goes
//     peer_idle_timeout: 5m        # 10s..1d; a peer with no session and nothing to do
//     unknown_address_ttl: 30s     # 1s..1h; no new lookup for an address the coordinator
//     unknown_addresses: 4096      # 0..1000000  ... does not know, at most this many
//     lookups_per_second: 20       # 1..10000; PeerRequests to the coordinator
//     lookup_burst: 40             # 1..100000
//     queued_packets: 1024         # 1..1000000; waiting for a session, all peers together
//     queued_bytes: 4194304        # 65536..1073741824
//   metrics: { listen: 127.0.0.1:9101 }             # Prometheus /metrics; off when absent
//   performance: { tun_offload: true,               # false: plain TUN reads (for comparison)
//                  udp_gso: true,                   # false: one datagram per UDP send
//                  udp_gro: true,                   # false: one datagram per UDP receive
//                  workers: 0 }                     # 0..16 threads that seal and open
//                                                   # beside the loop, or auto: cores - 1
//
// Every key but node, ca and coordinators may be left out (the defaults are the values above
// and the member initialisers below). Anything invalid, including an unknown key, throws
// ConfigError; the daemon refuses to start. The key and the certificate files must exist and
// be readable, and the key file must not be accessible by group or others.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/common.hpp"
#include "config/config_error.hpp"
#include "net/ip.hpp"

namespace p2p::config {

// A peer's path override (`force:`); without an override the daemon picks the path.
enum class ForcedPath { direct, relay };
// A peer's transport for direct paths (`transport:`): auto tries UDP, then TCP when UDP cannot
// be punched; udp never punches TCP; tcp skips the UDP punch (UDP throttled, not blocked).
enum class PeerTransport { automatic, udp, tcp };

struct MeshConfig {
  struct Node {
    std::filesystem::path key;  // absolute; mode 0600 or stricter
    std::filesystem::path cert;
  };
  struct Tun {
    std::string name = "p2p0";  // a valid Linux interface name, <= 15 characters
    std::uint16_t mtu = 1400;
  };
  struct Listen {
    std::uint16_t port = 0;  // 0: any free port
    IpAddress address = Ipv4{};
  };
  // Identifies the peer by exactly one of name and vip.
  struct Peer {
    std::optional<std::string> name;
    std::optional<Ipv4> vip;
    std::optional<ForcedPath> force;  // none: the daemon picks (direct, relay as fallback)
    PeerTransport transport = PeerTransport::automatic;
  };
  struct Punch {
    bool enabled = true;
    std::chrono::milliseconds timeout = std::chrono::seconds(10);  // 1s..5m
    bool port_prediction = true;
    // core::BirthdaySettings: a cone NAT x a symmetric NAT with random ports.
    struct Birthday {
      bool enabled = true;
      std::uint32_t sockets = 256;            // 1..1024
      std::uint32_t probes_per_second = 200;  // 1..1000
      std::uint32_t max_probes = 1024;        // 1..8192, per side and attempt
      bool operator==(const Birthday&) const = default;
    } birthday;
    // The coordinator's TCP assist port (on the address of the coordinator in use): where TCP
    // punches observe our public TCP endpoint. Absent: no TCP paths are punched.
    std::optional<std::uint16_t> tcp_assist;
  };
  struct Relay {
    bool allowed = true;
  };
  // NAT discovery (RFC 5780). Without a server the daemon asks the coordinator it uses; a
  // coordinator with one address cannot tell filtering apart, another RFC 5780 server can.
  struct Discovery {
    std::optional<Endpoint> server;
    std::chrono::milliseconds interval = std::chrono::minutes(10);  // re-run period, 1m..24h
  };

  // Router port mappings (daemon/shell/port_mapper.hpp): on by default, as a home user wants;
  // `protocols` in order of preference, each at most once ("pcp", "natpmp", "upnp").
  struct PortMapping {
    bool enabled = true;
    std::vector<std::string> protocols{"pcp", "natpmp", "upnp"};
  };

  // Bounds on the peer state others can make the node keep (core::NodeLimits).
  struct Limits {
    std::uint32_t max_peers = 4096;
    std::chrono::milliseconds peer_idle_timeout = std::chrono::minutes(5);
    std::chrono::milliseconds unknown_address_ttl = std::chrono::seconds(30);
    std::uint32_t unknown_addresses = 4096;
    std::uint32_t lookups_per_second = 20;
    std::uint32_t lookup_burst = 40;
    std::uint32_t queued_packets = 1024;
    std::uint32_t queued_bytes = 4 << 20;
    bool operator==(const Limits&) const = default;
  };

  std::filesystem::path source;  // absolute path of the file this was loaded from
  Node node;
  std::filesystem::path ca;
  std::vector<Endpoint> coordinators;  // no duplicates, specific addresses, ports 1..65535
  Tun tun;
  Listen listen;
  std::filesystem::path control_socket = "/run/p2pvpnd.sock";
  LogConfig log;
  std::chrono::milliseconds keepalive = std::chrono::seconds(25);
  std::vector<std::string> revoked;  // lowercase hex fingerprints, no duplicates
  std::vector<Peer> peers;           // no two for the same name or vip
  Punch punch;
  Relay relay;
  Discovery discovery;
  Limits limits;
  MetricsConfig metrics;
  // The newest CA-signed revocation list this node accepted: read at start if it exists,
  // rewritten whenever a coordinator pushes a newer one. Empty: kept in memory only.
  std::filesystem::path revocation_list;
  PortMapping port_mapping;
  struct Performance {
    bool tun_offload = true;  // IFF_VNET_HDR + TSO/USO where the kernel has them
    bool udp_gso = true;      // UDP_SEGMENT where the kernel has it
    bool udp_gro = true;      // UDP_GRO where the kernel has it
    // Threads that seal and open beside the loop (crypto/crypto_workers.hpp); nullopt: auto.
    // Off by default: on 2 cores shared with the applications it costs more than it gains.
    std::optional<std::uint32_t> workers = 0;
    bool operator==(const Performance&) const = default;
  };
  Performance performance;
  // coordinators[i]'s TCP main port (`tcp:`), if given; as long as `coordinators`.
  std::vector<std::optional<std::uint16_t>> coordinator_tcp;
};

// Loads and validates `file`; throws ConfigError (the only exception it throws).
MeshConfig load_mesh_config(const std::filesystem::path& file);

// The same from text, reported as coming from `file_name` (relative paths resolve against its
// folder, key files are checked on disk as above).
MeshConfig parse_mesh_config(std::string_view text, const std::filesystem::path& file_name);

}  // namespace p2p::config
