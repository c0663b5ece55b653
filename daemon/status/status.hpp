// What the daemon reports about itself and its peers: plain structs filled by core::Node::status()
// and turned into the status document by status_json.hpp. No behaviour here, so p2pvpnctl can
// render status without linking the node core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/metrics.hpp"
#include "net/time.hpp"

namespace p2p::core {

struct PathStatus {
  Endpoint endpoint;
  std::string kind;
  bool confirmed = false;
  std::optional<Duration> rtt;
  std::string transport = "udp";  // "udp" or "tcp"
};

// Counters of everything dropped, by reason (reported by status).
struct DropCounters {
  std::uint64_t malformed = 0;       // unparseable datagram or inner packet
  std::uint64_t unknown_index = 0;   // data for a session we do not have
  std::uint64_t decrypt_failed = 0;  // authentication, replay or expiry
  std::uint64_t bad_source = 0;      // inner source is not the peer's virtual IP
  std::uint64_t no_route = 0;        // TUN packet outside the mesh or for ourselves
  std::uint64_t queue_full = 0;      // pending queue overflow while connecting
  std::uint64_t handshake_failed = 0;
  std::uint64_t unknown_address = 0;  // TUN packet for an address the coordinator does not know
  std::uint64_t lookup_rate = 0;      // TUN packet for a new address over the lookup rate limit
  std::uint64_t peer_table_full = 0;  // a new peer while max_peers are in use, none idle
  std::uint64_t queue_budget = 0;     // waiting packet pushed out by the node-wide budget
  // Initiations refused before any Diffie-Hellman (crypto/handshake_guard.hpp), and after.
  std::uint64_t handshake_unpadded = 0;      // shorter than the minimum, or an answer too large
  std::uint64_t handshake_bad_mac1 = 0;      // blind garbage
  std::uint64_t handshake_rate_limited = 0;  // a proven source over its budget
  std::uint64_t handshake_replay = 0;        // replayed, or a superseded certificate
  std::uint64_t cookies_sent = 0;            // answered with a cookie (under load)
  std::uint64_t internal_error = 0;          // a datagram handler failed unexpectedly

  // Every reason with its status/metrics name, in one place (status --json and /metrics).
  template <class F>
  void for_each(F&& f) const {
    f("malformed", malformed);
    f("unknown_index", unknown_index);
    f("decrypt_failed", decrypt_failed);
    f("bad_source", bad_source);
    f("no_route", no_route);
    f("queue_full", queue_full);
    f("handshake_failed", handshake_failed);
    f("unknown_address", unknown_address);
    f("lookup_rate", lookup_rate);
    f("peer_table_full", peer_table_full);
    f("queue_budget", queue_budget);
    f("handshake_unpadded", handshake_unpadded);
    f("handshake_bad_mac1", handshake_bad_mac1);
    f("handshake_rate_limited", handshake_rate_limited);
    f("handshake_replay", handshake_replay);
    f("cookies_sent", cookies_sent);
    f("internal_error", internal_error);
  }
};

// The bounded state behind the peers (status: "peer_table").
struct PeerTableStatus {
  std::size_t peers = 0;
  std::size_t max_peers = 0;
  std::size_t unknown_addresses = 0;  // negative cache entries (a count, never the list)
  std::size_t queued_packets = 0;     // waiting for a session, all peers together
  std::size_t queued_bytes = 0;
  std::uint64_t evicted_idle = 0;  // peers removed after the idle timeout
  std::uint64_t evicted_full = 0;  // idle peers removed to make room at max_peers
};

// Upper bounds (seconds) of the time-to-direct histogram.
inline constexpr double kTimeToDirectBounds[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};

// Node-wide event counters (reported by /metrics). They only ever grow.
struct NodeCounters {
  std::uint64_t handshakes_started = 0;    // IK initiations sent to peers
  std::uint64_t handshakes_completed = 0;  // sessions installed (either side)
  std::uint64_t punch_attempts = 0;        // punching rounds started
  std::uint64_t punch_successes = 0;       // rounds that confirmed a direct path
  // From the start of a punching round to its first confirmed direct path.
  metrics::Histogram time_to_direct{kTimeToDirectBounds};
  // Birthday punches (daemon/core/birthday_punch.hpp): attempts started, probes sent (both
  // roles), attempts that got a direct answer.
  std::uint64_t birthday_attempts = 0;
  std::uint64_t birthday_probes = 0;
  std::uint64_t birthday_successes = 0;
};

struct PeerStatus {
  std::string name;
  Ipv4 vip;
  std::string state;  // "requesting", "handshaking", "connected", "unreachable"
  std::string path;   // "direct", "relay" or "none"
  std::optional<Endpoint> endpoint;
  std::string relay_reason;  // why relayed (empty when direct)
  std::optional<Duration> since_handshake;
  std::optional<Duration> rtt;
  std::uint64_t bytes_in = 0, bytes_out = 0, packets_in = 0, packets_out = 0;
  wire::NatSummary nat;
  std::vector<PathStatus> candidates;
  std::string path_kind;  // of the direct path in use ("lan", "public", "mapped", ...), else ""
  // How the last punching round went about it: "plain", "predict-peer", "predict-both",
  // "none", "birthday" (daemon/core/hard_nat_punch.hpp).
  std::string punch_method = "plain";
  std::string transport;  // of the direct path in use ("udp", "tcp"), else ""
};

// The router port mapping (daemon/shell/port_mapper.hpp), filled in by the shell.
struct PortMappingStatus {
  bool enabled = false;
  std::string protocol;  // "pcp", "natpmp", "upnp"; empty: no mapping
  std::optional<Endpoint> external;
  std::optional<Duration> lease_left;
  std::string error;  // why the last attempt failed, if it did
};

// One configured coordinator: what the node's link to it says (the "coordinator" fields of
// NodeStatus describe the one relayed traffic goes through).
struct CoordinatorStatus {
  Endpoint endpoint;
  std::string state;              // as NodeStatus::coordinator_state
  std::optional<Duration> rtt;    // smoothed, from its Pings; none before the first answer
  bool relay = false;             // relayed traffic goes through this one
  std::string transport = "udp";  // the carrier: "udp", or "tcp" (its main port)
};

struct NodeStatus {
  std::string name;
  Ipv4Prefix vip;
  std::optional<Endpoint> public_endpoint;  // as the coordinator sees us
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  std::optional<Endpoint> coordinator;
  std::string coordinator_state;  // "connecting", "registered", "refused: ..."
  std::vector<PeerStatus> peers;
  DropCounters drops;
  PeerTableStatus peer_table;
  NodeCounters counters;
  std::uint64_t revocation_sequence = 0;  // the CA-signed list taken (0: none)
  std::size_t revoked = 0;  // fingerprints checked against: mesh.yaml's and the list's
  // Lifetimes (crypto/cert_lifetime.hpp): when the node's own certificate and its CA's run
  // out, and what to say about it (within 30 days, or expired).
  struct Certificates {
    std::string not_after, ca_not_after;  // "2026-12-12T00:00:00Z"
    bool expired = false;                 // the node's own certificate or the CA's
    std::vector<std::string> warnings;
  } certificates;
  std::vector<CoordinatorStatus> coordinators;  // every configured one, in mesh.yaml's order
  PortMappingStatus port_mapping;
  // The data path's offloads, filled in by the shell: "on", "off" (mesh.yaml performance:
  // switched off) or "unsupported" (the kernel or the device does not have it).
  struct Performance {
    std::string tun_offload = "off";  // IFF_VNET_HDR with TSO: super-segments both ways
    std::string udp_gso = "off";      // UDP_SEGMENT
    std::string udp_gro = "off";      // UDP_GRO
    std::uint32_t workers = 0;        // threads sealing and opening beside the loop (0: none)
  } performance;
  std::string coordinator_transport = "udp";  // of `coordinator`: "udp" or "tcp"
};

}  // namespace p2p::core
