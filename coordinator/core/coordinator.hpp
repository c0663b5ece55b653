// Coordinator: the coordinator's brain, without I/O. It authenticates nodes (Noise XX with
// certificates), keeps the registry (certificate, observed public endpoint, local endpoints,
// NAT summary, last seen), introduces two nodes to each other at the same moment, relays
// end-to-end encrypted peer datagrams between registered nodes under a per-node rate limit,
// and answers STUN Binding requests (RFC 8489 / RFC 5780) on the same socket.
//
// Inputs: on_udp(now, socket, from, packet) and on_tick(now); next_deadline() says when the
// next tick is due. Outputs: CoordinatorEffects::send_udp() out of one of the (up to four)
// local sockets; only STUN ever leaves through a socket other than the primary one.
//
// Relay hot path (no copy, no payload cryptography): a node's Relay frame (net/packet.hpp)
// names the target's virtual IP and carries the peer datagram, end-to-end encrypted; its tag,
// with the node's session, covers only the header and the size. Once that verifies, the header
// is rewritten in place as a Relayed frame naming the sender, tagged with the target's
// session, and the same bytes leave for the target.
//
// Lookups (relay target, PeerRequest, session index, static key) are O(1) in the Registry
// (registry.hpp); on_tick() does work in proportion to what expired.
//
// Limits, each a token bucket: relayed bytes per sending node; PeerRequests per node (over
// the limit: PeerUnknown "rate limited", counted); Introduces sent to any one node, whoever
// asks (over the limit: the asker gets PeerUnknown, counted); STUN reply bytes per source
// address (IPv4 address or IPv6 /64, in a bounded table; over the limit: a silent counted
// drop). STUN policy: RESPONSE-PORT is honoured - the reply can only go to the requester's
// own address, and it is charged to that address's budget like any other reply, as are
// replies that CHANGE-REQUEST sends out of the alternate address or port.
//
// Carriers: a node reaches us over UDP (on_udp, the primary socket) or over a TCP connection
// to our main port (on_tcp: one frame is one datagram, the same handshake and messages). Each
// node's replies, introductions and relayed datagrams go back the way its last authenticated
// datagram came (NodeEntry::observed and ::tcp), so the relay forwards between a TCP-carried
// node and a UDP one in either direction. The shell owns the connections and their limits; it
// asks tcp_authenticated() to close connections that never complete a handshake.
// Revocation (coordinator_revocation.cpp): certificates are checked against the configured
// `revoked:` fingerprints merged with the newest CA-signed revocation list handed to
// set_revocation_list(). A new list refuses and forgets every node it revokes at once (their
// relay with them), and is pushed in RevocationChunks to every registered node; a node that
// registers says which sequence it holds (RevocationHave) and gets the list if ours is newer.
//
// Threading: none.
#pragma once

#include <spdlog/spdlog.h>

#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coordinator/core/registry.hpp"
#include "coordinator/core/tcp_punch_broker.hpp"
#include "crypto/auth_handshake.hpp"
#include "crypto/handshake_guard.hpp"
#include "crypto/revocation_list.hpp"
#include "crypto/transport.hpp"
#include "net/control.hpp"
#include "net/packet_view.hpp"
#include "net/rate_limit.hpp"
#include "net/stun.hpp"
#include "net/time.hpp"

namespace p2p::coord {

using wire::stun::ServerSocket;

// A TCP connection to the main port, by the id the shell gave it (never 0).
using ConnectionId = std::uint64_t;

// Where a datagram came from, and where an answer goes: the UDP endpoint, or the TCP connection
// (tcp != 0) whose remote end is `endpoint`.
struct Carrier {
  Endpoint endpoint;
  ConnectionId tcp = 0;
  bool operator==(const Carrier&) const = default;
};

class CoordinatorEffects {
 public:
  virtual ~CoordinatorEffects() = default;
  virtual void send_udp(ServerSocket from, const Endpoint& to,
                        std::span<const std::uint8_t> datagram) = 0;
  // One datagram as one frame on main-port connection `connection`; dropped when it is gone.
  virtual void send_tcp(ConnectionId connection, std::span<const std::uint8_t> datagram) = 0;
  virtual void fill_random(std::span<std::uint8_t> out) = 0;
  virtual std::uint64_t unix_nanos() = 0;
};

struct CoordinatorSettings {
  Duration node_timeout = std::chrono::seconds(90);
  Duration register_interval = std::chrono::seconds(25);  // told to nodes
  bool relay_enabled = true;
  std::uint64_t relay_rate = 20'000'000 / 8;  // bytes per second per node
  std::uint64_t relay_burst = 0;              // bytes; 0 = one second of rate
  std::vector<std::string> revoked;           // certificate fingerprints
  std::size_t max_pending_handshakes = 4096;
  std::size_t max_nodes = 65536;
  std::uint64_t lookup_rate = 10;         // PeerRequests per second per node
  std::uint64_t lookup_burst = 50;        // PeerRequests
  std::uint64_t introduction_rate = 10;   // Introduces per second to any one node
  std::uint64_t introduction_burst = 50;  // Introduces
  std::uint64_t stun_rate = 2048;         // STUN reply bytes per second per source address
  std::uint64_t stun_burst = 8192;        // bytes
  std::size_t stun_sources = 16384;       // source addresses remembered, at most
  std::size_t max_tcp_punches = 4096;     // TCP punches in progress (tcp_punch_broker.hpp)
  Duration tcp_punch_timeout = std::chrono::seconds(10);  // both sides on the assist port by then
};

using p2p::TokenBucket;

struct NodeEntryStatus {
  std::string name;
  Ipv4Prefix vip;
  Endpoint observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  Duration since_seen{};
  std::uint64_t relayed_bytes = 0, relay_dropped = 0;
  std::uint64_t lookups_refused = 0, introductions_refused = 0;
  bool tcp = false;  // carried by a TCP connection to the main port
};

struct CoordinatorStatus {
  std::vector<NodeEntryStatus> nodes;
  std::uint64_t handshakes_refused = 0, malformed = 0, stun_answered = 0;
  std::uint64_t stun_rate_limited = 0;      // STUN replies not sent: source over its budget
  std::uint64_t registry_full = 0;          // handshakes completed but refused: max_nodes
  std::uint64_t lookups_refused = 0;        // PeerRequests over the asker's lookup rate
  std::uint64_t introductions_refused = 0;  // PeerRequests over the target's introduction rate
  // Initiations refused before any Diffie-Hellman (crypto/handshake_guard.hpp): shorter than
  // the minimum (or an answer that would be larger), wrong mac1, a proven source over its
  // budget, answered with a cookie; refused for a full pending table; datagrams whose handler
  // failed unexpectedly.
  std::uint64_t init_unpadded = 0, init_bad_mac1 = 0, init_rate_limited = 0, cookies_sent = 0,
                init_pending_full = 0, internal_error = 0;
  // Relay totals over every node ever registered (the per-node figures go with the node).
  std::uint64_t relayed_bytes = 0, relayed_packets = 0, relay_dropped = 0;
  std::size_t pending_handshakes = 0;  // XX handshakes in progress
  // TCP punching: pairs told to connect (TcpPunchGo), requests refused or timed out, assist
  // port hellos malformed or naming no punch in progress.
  std::uint64_t tcp_punches = 0, tcp_punches_failed = 0, assist_unknown = 0;
  std::uint64_t revocation_sequence = 0;  // of the CA-signed list in force (0: none)
  std::uint64_t revoked_removed = 0;      // nodes forgotten when a new list revoked them
};

class Coordinator {
 public:
  Coordinator(crypto::Identity identity, crypto::CaCertificate ca, CoordinatorSettings settings,
              std::optional<wire::stun::Server> stun, CoordinatorEffects& effects,
              std::shared_ptr<spdlog::logger> log);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Never throws: whatever a datagram causes is at worst a counted drop.
  void on_udp(Time now, ServerSocket socket, const Endpoint& from, PacketView packet) noexcept;
  // One frame of main-port connection `connection` from `from`; never throws, like on_udp.
  void on_tcp(Time now, ConnectionId connection, const Endpoint& from, PacketView frame) noexcept;
  // The connection is gone: nothing more is sent to it.
  void on_tcp_closed(ConnectionId connection);
  // True once a node completed its handshake over the connection (and still uses it).
  bool tcp_authenticated(ConnectionId connection) const;
  // The hello a node sent on the TCP assist port from `from`, its public TCP endpoint
  // (net/tcp_assist.hpp). Never answered on that connection; the shell closes it.
  void on_assist(Time now, const Endpoint& from, std::span<const std::uint8_t> hello) noexcept;
  void on_tick(Time now);
  Time next_deadline() const;
  CoordinatorStatus status(Time now) const;
  // A reload (SIGHUP, `p2pvpnctl reload`): adopts `next`'s relay switch and rates, lookup and
  // introduction rates, max_nodes and revoked list, nothing else of it. Every node's buckets
  // start full under the new rates; a registered node now revoked is told (Refused) and
  // forgotten. coordinator_reload.cpp.
  void reconfigure(Time now, const CoordinatorSettings& next);

  // Takes a CA-signed revocation list if it verifies against our CA and is newer than the one
  // in force: true when taken (its nodes are gone, the list is on its way to every registered
  // node), false when not newer, an error when it does not verify.
  Expected<bool, crypto::CertError> set_revocation_list(Time now,
                                                        const crypto::RevocationList& list);
  std::uint64_t revocation_sequence() const { return revocations_.sequence(); }

 private:
  using Entry = NodeEntry;
  struct Pending;

  void on_carried(Time now, ServerSocket socket, const Carrier& from, PacketView packet) noexcept;
  void on_datagram(Time now, ServerSocket socket, const Carrier& from, PacketView packet);
  void on_init(Time now, const Carrier& from, PacketView d);
  void on_final(Time now, const Carrier& from, PacketView d);
  void on_stun(Time now, ServerSocket socket, const Endpoint& from, PacketView d);
  static std::uint64_t random_salt(CoordinatorEffects& fx);
  // The handshake with the node whose certificate is `cert` is complete: into the registry.
  void establish(Time now, const Carrier& from, const crypto::Certificate& cert,
                 crypto::Session session);
  void on_data(Time now, const Carrier& from, PacketView d);
  void send_to(const Carrier& to, std::span<const std::uint8_t> datagram);
  void on_control(Time now, Entry& e, const wire::ControlMessage& m);
  void on_relay(Time now, const Carrier& from, PacketView d);
  // The session of `e` that `index` names, if any.
  static crypto::Session* session_for(Entry& e, std::uint32_t index);
  // A datagram from `e` authenticated: seen now, and answered the way it came.
  void authenticated(Time now, Entry& e, const Carrier& from);
  void send_control(Time now, Entry& e, const wire::ControlMessage& m);
  void introduce(Time now, Entry& to, const Entry& about, std::uint32_t request_id, bool initiate);
  void on_peer_request(Time now, Entry& e, const wire::PeerRequest& q);
  void on_tcp_punch_request(Time now, Entry& e, const wire::TcpPunchRequest& q);
  void on_assist_hello(Time now, const Endpoint& from, std::span<const std::uint8_t> hello);
  void tcp_punch_failed(Time now, Ipv4 vip, std::uint32_t punch_id, std::string reason);
  void remove(Entry& e, const char* why);
  std::uint32_t new_index();
  // Revocation (coordinator_revocation.cpp).
  void on_revocation_have(Time now, Entry& e, const wire::RevocationHave& m);
  void push_revocation_list(Time now, Entry& e);

  crypto::Identity identity_;
  crypto::CaCertificate ca_;
  CoordinatorSettings settings_;
  std::optional<wire::stun::Server> stun_;
  CoordinatorEffects& fx_;
  std::shared_ptr<spdlog::logger> log_;

  Registry registry_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Pending>> pending_;  // XX in progress
  // Pending handshakes' deadlines in the order they were started (which is their order).
  std::deque<std::pair<Time, std::uint32_t>> pending_deadlines_;
  SourceLimiter stun_limiter_;
  CoordinatorStatus counters_;
  std::vector<std::uint8_t> scratch_;
  // Unauthenticated work: the first check of initiations, made at the first one.
  std::optional<crypto::HandshakeGuard> guard_;
  std::vector<std::uint8_t> guard_reply_;
  struct {
    DropReason unpadded, bad_mac1, rate_limited, pending_full, internal;
  } init_log_;
  // Main-port connections a node authenticated on, and that node's key (stale once the node
  // moves to another carrier: checked against NodeEntry::tcp). At most one per connection.
  std::unordered_map<ConnectionId, crypto::PublicKey> tcp_nodes_;
  TcpPunchBroker tcp_punches_;
  std::uint32_t next_punch_id_ = 1;
  DropReason registry_full_log_;  // refused registrations: one line per 10 s
  crypto::Revocations revocations_;
  std::vector<wire::RevocationChunk> revocation_chunks_;  // the list in force, split
};

}  // namespace p2p::coord
