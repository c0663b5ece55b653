// coordinator.yaml: the coordinator's configuration, loaded into a CoordinatorConfig.
//
//   key: coord.key                       # required; paths relative to this file
//   cert: coord.crt                      # required
//   ca: ca.crt                           # required
//   listen: 0.0.0.0:7400                 # IP:PORT (IPv6 as [addr]:port), port 1..65535
//   alternate_address: 203.0.113.11      # optional second IP, for RFC 5780 NAT discovery
//   alternate_port: 7401                 # optional, only with alternate_address;
//                                        #   default listen port + 1
//   revoked: []                          # certificate fingerprints, 64 hex digits
//   revocation_list: revoked.list        # optional; the CA-signed list, watched for changes
//   node_timeout: 90s                    # forget a silent node after this long; 5s..1d
//   relay:
//     enabled: true
//     rate_limit: 20mbit                 # per node: bit, kbit, mbit or gbit per second
//     burst: 4mbit                       # optional bucket size; default one second of
//                                        #   rate_limit, and never below 16 KiB
//   limits:
//     max_nodes: 65536                   # registered nodes at most; 1..1000000
//     lookup_rate: 10                    # peer lookups per second per node; 1..100000
//     lookup_burst: 50                   #   bucket size; lookup_rate..1000000
//     introduction_rate: 10              # introductions per second sent to any one node
//     introduction_burst: 50             #   (whoever asks); same ranges as lookups
//   stun:
//     rate_limit: 16kbit                 # reply bytes per source address (IPv4, IPv6 /64):
//     burst: 64kbit                      #   bit, kbit, mbit or gbit per second; burst
//                                        #   >= 2 KiB and >= one second of rate_limit
//     sources: 16384                     # source addresses remembered; 64..4194304
//   log: { level: info }
//   control_socket: /run/p2pvpn-coordinator.sock
//   metrics: { listen: 127.0.0.1:9101 }  # Prometheus /metrics; off when absent
//   tcp:                                 # for nodes whose networks block UDP; off when absent
//     main: 0.0.0.0:443                  # long-lived framed control connections (and relay)
//     assist: 0.0.0.0:7402               # optional: observes a node's public TCP endpoint
//     max_connections: 4096              # open TCP connections at most; 1..1000000
//     per_source: 32                     # from one IPv4 address or IPv6 /64; 1..65536
//   performance:                         # the UDP sockets' offloads, each where the kernel
//     udp_gso: true                      #   has it (probed at start); false: one datagram
//     udp_gro: true                      #   per send / per receive, for comparison
//
// Anything invalid, including an unknown key, throws ConfigError. The key, certificate and CA
// files must exist and be readable, and the key file must not be accessible by group/others.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "config/common.hpp"
#include "config/config_error.hpp"
#include "net/ip.hpp"

namespace p2p::config {

struct CoordinatorConfig {
  // The smallest relay burst: one tunnel packet of the largest MTU (9000) with headers fits.
  static constexpr std::uint64_t kMinRelayBurst = 16 * 1024;

  struct Relay {
    bool enabled = true;
    std::uint64_t rate_limit = 20'000'000 / 8;  // bytes per second, per node
    std::uint64_t burst = 20'000'000 / 8;       // bytes; >= kMinRelayBurst
  };

  struct Limits {
    std::uint64_t max_nodes = 65536;
    std::uint64_t lookup_rate = 10;  // per second
    std::uint64_t lookup_burst = 50;
    std::uint64_t introduction_rate = 10;  // per second
    std::uint64_t introduction_burst = 50;
  };
  // The smallest STUN burst: a response with every attribute we send, several times over.
  static constexpr std::uint64_t kMinStunBurst = 2048;
  struct Stun {
    std::uint64_t rate_limit = 16'000 / 8;  // bytes per second per source address
    std::uint64_t burst = 64'000 / 8;       // bytes
    std::uint64_t sources = 16384;
  };

  std::filesystem::path source;  // absolute path of the file this was loaded from
  std::filesystem::path key;     // absolute; mode 0600 or stricter
  std::filesystem::path cert;
  std::filesystem::path ca;
  Endpoint listen{Ipv4{}, 7400};
  // Both set or both empty. The alternate address has the listen address's family and
  // differs from it; the alternate port differs from the listen port.
  std::optional<IpAddress> alternate_address;
  std::optional<std::uint16_t> alternate_port;
  std::vector<std::string> revoked;  // lowercase hex fingerprints, no duplicates
  std::chrono::milliseconds node_timeout = std::chrono::seconds(90);
  Relay relay;
  Limits limits;
  Stun stun;
  LogConfig log;
  std::filesystem::path control_socket = "/run/p2pvpn-coordinator.sock";
  MetricsConfig metrics;
  struct Tcp {
    std::optional<Endpoint> main;    // the main port: nodes' control connections
    std::optional<Endpoint> assist;  // the assist port: public TCP endpoint observation
    std::uint64_t max_connections = 4096;
    std::uint64_t per_source = 32;
  };
  Tcp tcp;
  // The CA-signed revocation list (`p2pvpnctl revoke` writes it): read at start and again
  // whenever its modification time changes; absent or empty: none.
  std::filesystem::path revocation_list;
  struct Performance {
    bool udp_gso = true;  // UDP_SEGMENT on send: a run to one node in one sendmsg
    bool udp_gro = true;  // UDP_GRO on receive: a node's datagrams in one buffer
    bool operator==(const Performance&) const = default;
  };
  Performance performance;

  // The RFC 5780 alternate endpoint, when configured.
  std::optional<Endpoint> alternate() const;
};

// Loads and validates `file`; throws ConfigError (the only exception it throws).
CoordinatorConfig load_coordinator_config(const std::filesystem::path& file);

// The same from text, reported as coming from `file_name`.
CoordinatorConfig parse_coordinator_config(std::string_view text,
                                           const std::filesystem::path& file_name);

}  // namespace p2p::config
