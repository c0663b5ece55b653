// Peer: what the Node keeps per peer, composed of parts that each keep their own invariants:
// who it is (certificate, policy), what the coordinator's introduction said (its endpoints and
// NAT), its handshake and sessions (SessionSlots), its direct paths (PathSet), the packets
// waiting for a session (PacketQueue), and the traffic timers and counters of the data path.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "daemon/core/data_path.hpp"
#include "daemon/core/path_set.hpp"
#include "daemon/core/session_table.hpp"
#include "daemon/core/tcp_punch.hpp"
#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::core {

// A peer's TCP path as the Node drives it (node_tcp.cpp): the punch in progress, the stream it
// handed over and whether the peer handshake over that stream completed.
struct PeerTcp {
  std::unique_ptr<TcpPunch> punch;  // in progress (its id is the shell's handle)
  std::uint32_t wire_id = 0;        // the punch on the wire: our request's, or the offer's
  bool requester = false;           // we asked (we then initiate the handshake on the stream)
  std::uint32_t stream = 0;         // the punched socket handed over (0: none)
  Endpoint remote;
  bool authenticated = false;  // the peer handshake over the stream completed
  Time stream_since{};
  Time next_punch{};  // no punch before (the backoff)
  Duration backoff{};
  std::optional<Duration> time_to_path;  // the last punch's, from start to the handshake
  Time punch_started{};
};

struct Peer {
  // kRefused: its certificate failed our check (revoked here, expired, another CA); no
  // handshake, traffic to it dropped, until an introduction brings a certificate we accept.
  // kGone: it said Goodbye (it is shutting down); its sessions are dropped, and traffic to it
  // starts a handshake again as with any peer without a session.
  enum class State { kRequesting, kHandshaking, kConnected, kUnreachable, kRefused, kGone };

  Peer(Ipv4 vip, const PathPolicy& policy, spdlog::logger& log, std::uint64_t probe_seed)
      : vip(vip), paths(policy, log, probe_seed) {
    paths.set_name(name());
  }

  Ipv4 vip;
  Time created{};
  std::optional<crypto::Certificate> cert;  // known after an introduction or a handshake
  State state = State::kRequesting;

  // From the coordinator's introduction.
  std::optional<Endpoint> observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  std::optional<Endpoint> mapped;  // its router's port mapping
  std::uint32_t request_id = 0;
  Time request_sent{};
  int request_attempts = 0;

  SessionSlots sessions;
  std::uint64_t last_init_timestamp = 0;  // newest IK initiation accepted from this peer
  std::optional<Time> last_handshake;

  PathSet paths;
  PacketQueue queue;  // IP packets waiting for a session

  // Traffic.
  Time last_sent{}, last_received{}, last_data_activity{};
  // First data packet sent since we last heard from the peer (WireGuard's "new handshake
  // after KEEPALIVE + REKEY_TIMEOUT of unanswered sending": catches a restarted peer).
  std::optional<Time> unanswered_since;
  // Data arrived and we have sent nothing since: a keepalive is due at this time
  // (WireGuard's passive keepalive, so the sender learns the session still works).
  std::optional<Time> keepalive_due;
  std::uint64_t bytes_in = 0, bytes_out = 0, packets_in = 0, packets_out = 0;

  // Outstanding ping (p2pvpnctl ping).
  std::uint64_t ping_probe = 0;
  Time ping_sent{};
  std::function<void(std::optional<Duration>, std::string)> ping_done;

  // The extra socket a birthday punch won for this peer (0: none); closed once no path uses it.
  std::uint32_t punch_socket = 0;
  PeerTcp tcp;

  // A certificate arrived (introduction or handshake): names the peer in its path's logs.
  void set_certificate(crypto::Certificate c, Force force) {
    cert = std::move(c);
    paths.set_force(force);
    paths.set_name(name());
  }
  std::string name() const { return cert ? cert->name : vip.to_string(); }
};

}  // namespace p2p::core
