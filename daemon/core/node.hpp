// Node: the daemon's brain, without I/O, and the one entry point to it. The shell
// (daemon/shell) or the simulated network (tests/support/sim_net) feeds it and carries out its
// effects. It is composed of parts with one concern each:
//   CoordinatorSet   a CoordinatorLink per coordinator: registration with all, lookups,
//                    introductions, the relay's choice (lowest RTT) and wrapping
//   SessionTable     local session index -> owner; SessionSlots per owner: handshake, sessions
//   PeerHandshakes   the IK handshakes between peers (certificates, replays, new sessions)
//   PathSet          per peer: candidates, probing, confirmation, choice, fallback, backoff
//   DataPath         routing TUN packets, cryptokey routing of what peers send, the queue
// and keeps the peer table (Peer), the IK handshakes between peers and the timers that tie
// the parts together.
//
// Inputs (each takes the current monotonic time; none blocks, none reads a clock):
//   on_tun(now, packet)        an IP packet the OS routed into the TUN device
//   on_udp(now, from, packet)  a datagram that arrived on the node's one UDP socket
//   on_tick(now)               the deadline returned by next_deadline() has passed
// Outputs go through NodeEffects: send_udp(), write_tun(), and the injected randomness and
// wall clock. next_deadline() tells the caller when to call on_tick() next.
//
// Outbound flow (on_tun):
//   1. the destination must be a virtual IP inside our mesh prefix, not our own;
//   2. find the peer; without one, ask the coordinator (PeerRequest) and queue the packet;
//   3. without a live session, queue the packet and make sure a handshake is running;
//   4. encrypt in place behind a 16-byte data header (PacketView headroom/tailroom);
//   5. send on the peer's active direct path, or wrap it for the coordinator's relay.
//   (on_tun -> DataPath::route -> send_to_peer -> Session::seal -> send_datagram
//    -> NodeEffects::send_udp, or CoordinatorLink::send_relayed)
// Inbound flow (on_udp): classify (wire::classify: STUN, handshake, data), find the session by
// receiver index, decrypt in place, then: an IP packet whose source is the peer's certified
// virtual IP goes to the TUN (anything else is dropped and counted); a control message goes
// to the coordinator link or the peer's paths; a relayed datagram re-enters on_datagram() as
// if from the peer over the relay path.
//   (on_udp -> on_datagram -> on_data -> SessionSlots::open -> on_peer_plaintext
//    -> DataPath::inspect -> NodeEffects::write_tun, or on_probe/on_ack -> PathSet)
//
// Revocation (node_revocation.cpp): certificates are checked against mesh.yaml's `revoked:`
// merged with the newest CA-signed revocation list the node accepted, from any coordinator
// (RevocationChunks, reassembled) or handed in by the shell (the list file read at start). A
// list is taken only if it verifies against our CA and its sequence is higher than the one we
// hold, so no coordinator can forge one or roll us back. Taking one cuts every session with a
// peer it revokes at once (the peer is refused, as one that failed our check) and tells the
// shell (NodeEffects::revocation_list_accepted) so it can keep the list.
//
// Threading: none. One Node is driven from one thread.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/revocation_list.hpp"
#include "crypto/transport.hpp"
#include "daemon/core/birthday_punch.hpp"
#include "daemon/core/coordinator_set.hpp"
#include "daemon/core/data_path.hpp"
#include "daemon/core/effects.hpp"
#include "daemon/core/handshakes.hpp"
#include "daemon/core/peer.hpp"
#include "daemon/core/peer_table.hpp"
#include "daemon/core/session_table.hpp"
#include "daemon/status/status.hpp"
#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"
#include "net/rate_limit.hpp"
#include "net/revocation_push.hpp"
#include "net/time.hpp"

namespace p2p::core {

struct PeerPolicy {
  std::variant<Ipv4, std::string> match;  // virtual IP or certificate name
  Force force = Force::kAuto;
  TransportPolicy transport = TransportPolicy::kAuto;
};

// The start of ping()'s answer when no such peer is known, here or to the coordinator.
inline constexpr std::string_view kUnknownPeer = "unknown peer ";
// How long ping() waits for its answer.
inline constexpr Duration kPingTimeout = std::chrono::seconds(2);
// A PeerRequest without an answer is sent again after kRequestRetry, kRequestAttempts times.
inline constexpr Duration kRequestRetry = std::chrono::seconds(2);
inline constexpr int kRequestAttempts = 5;

// The bounds on what others can make the node keep (mesh.yaml `limits:`). A peer is idle when
// it has no session (current or previous), no handshake, no lookup in flight, no packet
// waiting and no ping outstanding; an idle peer is removed `peer_idle_timeout` after it was
// last used. A peer with a session is never evicted: its session lapses first (no traffic for
// 3 minutes: no rekey; 3 minutes later it expires), keepalives or not.
struct NodeLimits {
  std::size_t max_peers = 4096;  // when full: evict the least recently used idle
  Duration peer_idle_timeout = std::chrono::minutes(5);
  Duration unknown_address_ttl = std::chrono::seconds(30);  // negative cache
  std::size_t unknown_addresses = 4096;                     // entries; the oldest goes first
  double lookups_per_second = 20;                           // PeerRequests (token bucket)
  double lookup_burst = 40;
  std::size_t queued_packets = 1024;  // waiting for a session, all peers together
  std::size_t queued_bytes = 4 << 20;
  bool operator==(const NodeLimits&) const = default;
};

struct NodeSettings {
  std::vector<Endpoint> coordinators;
  Duration keepalive = std::chrono::seconds(25);
  bool punch_enabled = true;
  Duration punch_timeout = std::chrono::seconds(10);
  bool port_prediction = true;
  bool relay_allowed = true;
  std::vector<PeerPolicy> policies;
  std::vector<std::string> revoked;     // certificate fingerprints
  std::size_t max_queued_packets = 64;  // per peer
  NodeLimits limits;
  // Each coordinator's TCP main port, by its index in `coordinators` (none or missing: UDP
  // only): the link's second carrier (coordinator_link.hpp).
  std::vector<std::optional<std::uint16_t>> coordinator_tcp;
  BirthdaySettings birthday;
  // The coordinator's TCP assist port (on the address of the coordinator in use); none: no TCP
  // paths are punched.
  std::optional<std::uint16_t> tcp_assist;
};

class Node : private CoordinatorEvents {
 public:
  Node(crypto::Identity identity, crypto::CaCertificate ca, NodeSettings settings,
       NodeEffects& effects, std::shared_ptr<spdlog::logger> log);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Begins registration with the first coordinator.
  void start(Time now);
  // Tells every peer with a session and then the coordinator goodbye (best effort, one
  // datagram each, nothing waited for): peers drop our sessions at once, the coordinator
  // forgets us.
  void stop(Time now);
  // A reload (SIGHUP, `p2pvpnctl reload`): adopts `next`'s peer policies, revoked list and
  // limits, and nothing else of it. Peers whose policy changed re-choose their path (a newly
  // forced relay at once); connected peers now revoked are refused (sessions dropped).
  // node_reload.cpp.
  void reconfigure(Time now, const NodeSettings& next);

  void on_tun(Time now, PacketView packet);
  // Never throws: whatever a datagram causes is at worst a counted drop.
  void on_udp(Time now, const Endpoint& from, PacketView packet) noexcept;
  // A datagram that arrived on one of the extra sockets of a birthday punch (`socket`, from
  // PunchSocketEffects::open_punch_socket): handled as on_udp(), answered from that socket.
  void on_punch_udp(Time now, std::uint32_t socket, const Endpoint& from,
                    PacketView packet) noexcept;
  void on_tick(Time now);
  Time next_deadline() const { return deadline_; }
  // Opening on worker threads (node_workers.cpp, crypto/crypto_workers.hpp). Before a batch of
  // datagrams goes to on_udp(): prepare_open() adds a job to open the datagram in place when
  // it is Data for a peer's session that would take it now, and returns the job's index
  // (nullopt: nothing to open ahead). Once the jobs have run, on_udp() with the datagram's job
  // uses its outcome instead of opening it; replays and order are decided there, serially.
  std::optional<std::size_t> prepare_open(Time now, PacketView packet, crypto::CryptoJobs& jobs);
  void on_udp(Time now, const Endpoint& from, PacketView packet,
              const crypto::CryptoJob* opened) noexcept;
  // The coordinator link's TCP carrier (NodeEffects::coordinator_stream_open): the stream to
  // coordinator `slot` opened (`open`), or closed or failed; a frame read from it (one
  // datagram). node_carrier.cpp.
  void on_coordinator_stream(Time now, std::uint32_t slot, bool open);
  void on_coordinator_frame(Time now, std::uint32_t slot, PacketView frame) noexcept;

  // What the shell learnt about the machine: its interface addresses (with the UDP port
  // they carry) and the result of NAT discovery. Changes re-register with the coordinator.
  void set_local_endpoints(Time now, std::vector<Endpoint> endpoints);
  void set_nat(Time now, wire::NatSummary nat);
  // Our router's port mapping (its external endpoint; nullopt: none). A new one is registered
  // and, for every peer still on the relay, a fresh introduction is asked for, which hands
  // the peer the mapping and starts both sides punching.
  void set_port_mapping(Time now, std::optional<Endpoint> external);
  // The host's network may have changed (an interface, address or default route): register
  // again now, so the coordinator sees where we are, and probe every confirmed direct path
  // now: one unanswered probe (kProbeTimeout) declares it dead, instead of three at the
  // path's probe interval (up to the keepalive interval when idle).
  // `endpoints` are the interface addresses as they are now (as set_local_endpoints()).
  void network_changed(Time now, std::vector<Endpoint> endpoints);

  // Starts connecting to a peer by virtual IP or name without waiting for traffic.
  void connect(Time now, std::variant<Ipv4, std::string> target);
  // Sends a path probe to the peer over its current path; the answer's RTT appears in
  // status (rtt) and is reported through `done` (nullopt after a 2 s timeout). A target the
  // node has no peer for is looked up first, without making a peer row: `done` says whether
  // the coordinator knows no such node (the text starts with kUnknownPeer), or that it was
  // found and a handshake started.
  using PingDone = std::function<void(std::optional<Duration> rtt, std::string path)>;
  void ping(Time now, std::variant<Ipv4, std::string> target, PingDone done);

  // STUN datagrams arriving on the node's socket go to NAT discovery (wire/nat_discovery),
  // which the shell runs beside the Node over the same socket.
  using StunSink = std::function<void(Time, const Endpoint&, std::span<const std::uint8_t>)>;
  void set_stun_sink(StunSink sink);

  NodeStatus status(Time now) const;
  const crypto::Certificate& certificate() const { return identity_.certificate; }
  // The coordinator's certificate as last verified; nullopt before the first handshake.
  const std::optional<crypto::Certificate>& coordinator_certificate() const {
    return coordinator_cert_;
  }
  bool registered() const;
  // The peer table, for tests: its size and how often it was walked.
  const PeerTable& peers() const { return peers_; }
  // The coordinator in use; nullopt when none is configured.
  std::optional<Endpoint> coordinator() const;

  // Takes a CA-signed revocation list if it verifies and is newer than the one we hold (see
  // the top of this file): true when taken, false when not newer, an error when it does not
  // verify.
  Expected<bool, crypto::CertError> set_revocation_list(Time now,
                                                        const crypto::RevocationList& list);
  std::uint64_t revocation_sequence() const { return revocations_.sequence(); }

  // TCP paths (node_tcp.cpp). A socket of punch `punch` completed (`inbound`: accepted) with
  // `remote`: true when it is now the peer stream `punch` (frames go to on_stream(); the peer
  // handshake runs over it before anything else is taken from it); false: close it.
  bool on_punch_established(Time now, std::uint32_t punch, bool inbound, const Endpoint& remote);
  // A connect of punch `punch` was refused or reset.
  void on_punch_failed(Time now, std::uint32_t punch);
  // One frame from peer stream `stream`. Never throws, as on_udp().
  void on_stream(Time now, std::uint32_t stream, PacketView datagram) noexcept;
  // The stream closed (the peer, an error, a timeout): its path is gone.
  void on_stream_closed(Time now, std::uint32_t stream);

 private:
  class ProbeSender;

  // CoordinatorEvents
  void on_registered(Time now) override;
  void on_introduce(Time now, const wire::Introduce& m) override;
  void on_peer_unknown(Time now, const wire::PeerUnknown& m) override;
  void on_relayed(Time now, const Endpoint& via, PacketView datagram) override;
  void on_revocation_chunk(Time now, const wire::RevocationChunk& m) override;
  void on_tcp_punch(Time now, const wire::ControlMessage& m) override;

  // TCP paths (node_tcp.cpp).
  TransportPolicy transport_for(const Peer& p) const;
  // Punches a TCP path to `p` if its policy and state call for one and the backoff passed.
  void tcp_maybe_punch(Time now, Peer& p);
  void tcp_start(Time now, Peer& p, bool requester, std::uint32_t wire_id,
                 const wire::PunchToken& token);
  void tcp_tick(Time now, Peer& p);
  // Closes the punch and the stream of `p`, if any (the caller removes the stream's path).
  void tcp_close(Peer& p);
  // Ends the punch and the stream (and its path) of `p`, and backs off the next punch.
  void tcp_drop(Time now, Peer& p, const char* why);
  // A session was installed for `p`: over its stream (in_stream_), that authenticates it.
  void tcp_on_session(Time now, Peer& p);
  Peer* tcp_owner(std::uint32_t handle);
  // Answers the datagram being handled: on its stream when it came on one, else to `to`.
  void reply_to(const Endpoint& to, std::span<const std::uint8_t> datagram);
  void send_control_on_stream(Time now, Peer& p, const wire::ControlMessage& m,
                              std::uint32_t stream);

  // Peers: the table's lifecycle (node_peers.cpp).
  // The peer for `vip`, made if new; nullptr (counted) when max_peers are in use and none is
  // idle.
  Peer* peer_for(Time now, Ipv4 vip);
  Peer* find_peer(const std::variant<Ipv4, std::string>& target);
  void request_peer(Time now, Peer& p);
  // Sends a PeerRequest for `p` under a fresh id if the lookup rate allows (else counted).
  bool send_lookup(Time now, Peer& p);
  void set_certificate(Peer& p, crypto::Certificate cert);
  bool idle(const Peer& p) const;
  Time last_used(const Peer& p) const;
  void remove_peer(Peer& p);
  // Queues a packet for `p` within its own cap and the node's budget.
  void queue_packet(Peer& p, PacketView packet);
  std::size_t clear_queue(Peer& p) { return p.queue.clear(queue_budget_); }
  // Every few minutes, one line of what was dropped since the last one.
  void log_drop_summary(Time now);
  // An introduced certificate failed our check: the peer's row says "refused", warned once.
  void refuse_peer(Time now, const crypto::Certificate& cert, const std::string& why);
  // Peers: handshakes.
  void start_handshake(Time now, Peer& p);
  void on_datagram(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_handshake_init(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_handshake_resp(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_cookie_reply(Time now, bool via_relay, PacketView d);
  void send_initiation(Time now, Peer& p, PacketView d);
  // The peer our session index `index` belongs to; nullptr for the coordinator link (then
  // `coordinator` is set) or no one (counted as unknown_index).
  Peer* owner_of(std::uint32_t index, bool& coordinator);
  void on_session(Time now, Peer& p);
  Force policy_for(const crypto::Certificate& cert) const;
  Expected<void, crypto::CertError> verify_peer(const crypto::Certificate& cert,
                                                crypto::Role role) const;
  // Data path.
  void on_data(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_relayed_frame(Time now, bool via_relay, PacketView d);
  void on_peer_plaintext(Time now, Peer& p, const Endpoint& from, bool via_relay,
                         PacketView plaintext);
  void flush_queue(Time now, Peer& p);
  // Seals `packet` (plaintext in place) in the peer's current session and sends it on the
  // active path. Returns false if there is no usable session.
  bool send_to_peer(Time now, Peer& p, PacketView packet, bool is_probe_or_keepalive = false);
  // Sends a sealed or handshake datagram: on `direct`, else through the relay when allowed,
  // else to the peer's public endpoint.
  void send_datagram(Time now, Peer& p, PacketView datagram, const Path* direct);
  // Seals a control message in the peer's current session and sends it to `to`, or through
  // the coordinator's relay when `to` is empty.
  void send_control_to_peer(Time now, Peer& p, const wire::ControlMessage& m,
                            std::optional<Endpoint> to, std::uint32_t socket = 0);
  // Sends from the node's socket (0) or one of the extra punch sockets.
  void send_udp_via(std::uint32_t socket, const Endpoint& to, std::span<const std::uint8_t> d);
  bool relay_allowed(const Peer& p) const;
  // Why `p` is on the relay, for status (node_carrier.cpp).
  // Whether UDP between us and `p` is known not to work (our coordinator link runs over TCP,
  // or the peer's NAT discovery found UDP blocked).
  bool udp_blocked_with(const Peer& p) const;
  bool coordinator_over_tcp() const;
  // After the coordinator link's tick: UDP back at the coordinator re-punches UDP at once.
  void watch_carrier(Time now);
  std::string relay_reason(const Peer& p) const;
  // Paths and timers.
  void start_punching(Time now, Peer& p);
  void path_tick(Time now, Peer& p);
  void peer_tick(Time now, Peer& p);
  void finish_ping(Peer& p, std::optional<Duration> rtt, std::string how);
  // Pings of targets without a peer row wait for the coordinator's answer to a lookup.
  void lookup_for_ping(Time now, const std::variant<Ipv4, std::string>& target, PingDone done);
  // The lookup `request_id` was answered (`found`) or refused (`reason`); false if it was
  // not a ping's.
  bool finish_lookup_ping(std::uint32_t request_id, bool found, const std::string& reason);
  void expire_lookup_pings(Time now);
  // A peer said Goodbye: drop its sessions and paths, show it "gone".
  void on_peer_goodbye(Time now, Peer& p);
  // Birthday punching (node_birthday.cpp).
  class BirthdaySender;
  void start_birthday(Time now, Peer& p);
  // An authenticated datagram from `p` arrived directly from `from` (on rx_socket_).
  void birthday_on_direct(Time now, Peer& p, const Endpoint& from);
  void birthday_tick(Time now);
  // Closes the peer's adopted punch socket once no path uses it (or `all`: now).
  void release_punch_socket(Peer& p, bool all = false);
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }

  crypto::Identity identity_;
  crypto::CaCertificate ca_;
  NodeSettings settings_;
  PathPolicy path_policy_;
  NodeEffects& fx_;
  std::shared_ptr<spdlog::logger> log_;
  DataPath data_path_;
  StunSink stun_sink_;
  DropCounters drops_;
  NodeCounters counters_;
  SessionTable sessions_;
  CoordinatorSet coord_;
  PeerHandshakes handshakes_;
  PeerTable peers_;
  UnknownAddresses unknown_;
  TokenBucket lookups_;
  QueueBudget queue_budget_;
  std::uint64_t evicted_idle_ = 0, evicted_full_ = 0;
  Time next_summary_{};
  DropCounters summarised_;  // drops_ at the last summary
  Time deadline_ = Time::max();
  std::vector<std::uint8_t> scratch_;  // control-message encoding (not the data path)
  std::vector<std::uint8_t> queue_buffer_;
  std::vector<std::uint8_t> guard_reply_;  // a CookieReply being sent
  struct {
    DropReason unpadded, bad_mac1, rate_limited, replay, failed, internal;
  } init_log_;
  crypto::Revocations revocations_;  // mesh.yaml's revoked: and the newest signed list
  wire::RevocationAssembly revocation_assembly_;
  // The coordinator's certificate as last verified (its virtual IP and name are no peer).
  std::optional<crypto::Certificate> coordinator_cert_;
  struct LookupPing {
    std::uint32_t request_id;
    std::string target;  // as the operator wrote it
    Time deadline;
    PingDone done;
  };
  std::vector<LookupPing> lookup_pings_;  // at most kMaxLookupPings
  static constexpr std::size_t kMaxLookupPings = 16;
  BirthdayPunch birthday_;
  // The socket the datagram being handled came on (0: the node's own); answers leave from it.
  std::uint32_t rx_socket_ = 0;
  // TCP paths: punch handles (also the streams' names) -> peer; the stream whose frame is
  // being handled (0: none); our request ids.
  std::map<std::uint32_t, Ipv4> tcp_owners_;
  std::uint32_t tcp_handles_ = 0, tcp_requests_ = 0;
  std::uint32_t in_stream_ = 0;
  // The job that opened the datagram being handled (on_udp with a job), else nullptr.
  const crypto::CryptoJob* opened_ = nullptr;
  bool coordinator_was_over_tcp_ = false;  // watch_carrier()
};

}  // namespace p2p::core
