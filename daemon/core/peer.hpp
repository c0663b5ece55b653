// The state the Node keeps per peer: who it is (certificate), how to reach it (candidate
// paths, each a first-class object), the sessions and the handshake in progress, and the
// packets waiting for a session.
//
// A Path is one way to reach the peer: a transport (UDP now; TCP by simultaneous open later
// slots in as another Transport value) and an endpoint. The relay through the coordinator is
// not a Path in the list but the fallback when no direct path is confirmed. A direct path is
// confirmed when a PathProbe sent on it is acknowledged (the ack proves both directions and
// gives the RTT); it dies when probes go unanswered.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/transport.hpp"
#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::core {

enum class Force { kAuto, kDirect, kRelay };
enum class Transport { kUdp };
// Where a candidate came from: the peer's own interface (LAN), its public endpoint as the
// coordinator saw it, a source we saw its probes come from (peer-reflexive), or a port we
// predicted for a symmetric NAT.
enum class PathKind { kLan, kPublic, kReflexive, kPredicted };
const char* to_string(PathKind k);

struct Path {
  Transport transport = Transport::kUdp;
  Endpoint endpoint;
  PathKind kind = PathKind::kPublic;
  std::optional<Time> last_ack;      // last PathProbeAck received on it
  std::optional<Duration> rtt;       // from the last ack
  std::uint64_t probe_id = 0;        // outstanding probe (0: none)
  Time probe_sent{};
  Time next_probe{};
  int unanswered = 0;                // consecutive probes without ack
  bool confirmed = false;            // acked and not since declared dead
};

struct Session {
  crypto::TransportSession transport;
  std::uint32_t local_index;
  std::uint32_t remote_index;
};

struct PendingHandshake {
  crypto::AuthHandshake handshake;
  std::uint32_t local_index;
  Time started;      // this attempt
  Time first_try;    // the first attempt of this series
};

struct Peer {
  enum class State { kRequesting, kHandshaking, kConnected, kUnreachable };

  Ipv4 vip;
  std::optional<crypto::Certificate> cert;  // known after an introduction or a handshake
  State state = State::kRequesting;
  Force force = Force::kAuto;

  // From the coordinator's introduction.
  std::optional<Endpoint> observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  std::uint32_t request_id = 0;
  Time request_sent{};
  int request_attempts = 0;

  std::optional<PendingHandshake> pending;
  std::optional<Session> current;
  std::optional<Session> previous;  // still accepted on receive after a rekey
  std::uint64_t last_init_timestamp = 0;  // newest IK initiation accepted from this peer
  std::optional<Time> last_handshake;

  // Paths.
  std::vector<Path> paths;
  int active = -1;                  // index into paths of the direct path in use, or -1
  bool punching = false;
  Time punch_deadline{};
  Time next_punch_retry = Time::max();
  Duration punch_backoff = std::chrono::seconds(15);
  std::string relay_reason = "connecting";

  // Traffic.
  std::deque<std::vector<std::uint8_t>> queue;  // IP packets waiting for a session
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

  const Path* active_path() const { return active >= 0 ? &paths[active] : nullptr; }
  std::string name() const { return cert ? cert->name : vip.to_string(); }
};

}  // namespace p2p::core
