// Node: the daemon's brain, without I/O. It owns the peer table, the handshakes, the sessions,
// the paths to each peer and every timer; the shell (daemon/main.cpp) or the simulated
// network (tests/support/sim_net) feeds it and carries out its effects.
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
// Inbound flow (on_udp): classify by first byte (STUN, handshake, data), find the session by
// receiver index, decrypt in place, then: an IP packet whose source is the peer's certified
// virtual IP goes to the TUN (anything else is dropped and counted); a control message goes
// to the coordinator logic or the path logic; a relayed datagram re-enters as if from the
// peer over the relay path.
//
// Threading: none. One Node is driven from one thread.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/transport.hpp"
#include "daemon/core/peer.hpp"
#include "daemon/status/status.hpp"
#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"
#include "net/time.hpp"

namespace p2p::core {

class NodeEffects {
 public:
  virtual ~NodeEffects() = default;
  virtual void send_udp(const Endpoint& to, std::span<const std::uint8_t> datagram) = 0;
  virtual void write_tun(std::span<const std::uint8_t> packet) = 0;
  virtual void fill_random(std::span<std::uint8_t> out) = 0;
  // Wall clock, nanoseconds since the Unix epoch: certificate validity and handshake
  // timestamps. Injected so that tests control it.
  virtual std::uint64_t unix_nanos() = 0;
  // The coordinator now sees us at another public endpoint (a new upstream, a rebooted
  // router, a remapping NAT). Called from inside on_udp(): note it, act after the event.
  virtual void public_endpoint_moved(const Endpoint& /*was*/, const Endpoint& /*now_at*/) {}
};

struct PeerPolicy {
  std::variant<Ipv4, std::string> match;  // virtual IP or certificate name
  Force force = Force::kAuto;
};

struct NodeSettings {
  std::vector<Endpoint> coordinators;
  Duration keepalive = std::chrono::seconds(25);
  bool punch_enabled = true;
  Duration punch_timeout = std::chrono::seconds(10);
  bool port_prediction = true;
  bool relay_allowed = true;
  std::vector<PeerPolicy> policies;
  std::vector<std::string> revoked;  // certificate fingerprints
  std::size_t max_queued_packets = 64;
};

class Node {
 public:
  Node(crypto::Identity identity, crypto::CaCertificate ca, NodeSettings settings,
       NodeEffects& effects, std::shared_ptr<spdlog::logger> log);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Begins registration with the first coordinator.
  void start(Time now);
  // Tells the coordinator goodbye (best effort).
  void stop(Time now);

  void on_tun(Time now, PacketView packet);
  void on_udp(Time now, const Endpoint& from, PacketView packet);
  void on_tick(Time now);
  Time next_deadline() const { return deadline_; }

  // What the shell learnt about the machine: its interface addresses (with the UDP port
  // they carry) and the result of NAT discovery. Changes re-register with the coordinator.
  void set_local_endpoints(Time now, std::vector<Endpoint> endpoints);
  void set_nat(Time now, wire::NatSummary nat);
  // The host's network may have changed (an interface, address or default route): register
  // again now, so the coordinator sees where we are, and probe every confirmed direct path
  // now: one unanswered probe (kProbeTimeout) declares it dead, instead of three at the
  // path's probe interval (up to the keepalive interval when idle).
  // `endpoints` are the interface addresses as they are now (as set_local_endpoints()).
  void network_changed(Time now, std::vector<Endpoint> endpoints);

  // Starts connecting to a peer by virtual IP or name without waiting for traffic.
  void connect(Time now, std::variant<Ipv4, std::string> target);
  // Sends a path probe to the peer over its current path; the answer's RTT appears in
  // status (rtt) and is reported through `done` (nullopt after a 2 s timeout).
  using PingDone = std::function<void(std::optional<Duration> rtt, std::string path)>;
  void ping(Time now, std::variant<Ipv4, std::string> target, PingDone done);

  // STUN datagrams arriving on the node's socket go to NAT discovery (wire/nat_discovery),
  // which the shell runs beside the Node over the same socket.
  using StunSink = std::function<void(Time, const Endpoint&, std::span<const std::uint8_t>)>;
  void set_stun_sink(StunSink sink);

  NodeStatus status(Time now) const;
  const crypto::Certificate& certificate() const { return identity_.certificate; }
  bool registered() const;
  // The coordinator in use; nullopt when none is configured.
  std::optional<Endpoint> coordinator() const;

 private:
  struct CoordinatorLink;
  // Who owns a local session index: the coordinator link or the peer with this virtual IP.
  struct SessionRef {
    bool coordinator = false;
    std::uint32_t vip = 0;
  };

  // Coordinator.
  void coordinator_handshake(Time now);
  void coordinator_tick(Time now);
  void send_to_coordinator(Time now, const wire::ControlMessage& m);
  void send_register(Time now);
  void on_coordinator_message(Time now, PacketView plaintext);
  void on_introduce(Time now, const wire::Introduce& m);
  // Peers.
  Peer& peer_for(Ipv4 vip);
  Peer* find_peer(const std::variant<Ipv4, std::string>& target);
  void request_peer(Time now, Peer& p);
  void start_handshake(Time now, Peer& p);
  void on_handshake_init(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_handshake_resp(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_data(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void on_peer_plaintext(Time now, Peer& p, const Endpoint& from, bool via_relay,
                         PacketView plaintext);
  void on_peer_datagram(Time now, const Endpoint& from, bool via_relay, PacketView d);
  void install_session(Time now, Peer& p, crypto::TransportSession ts, std::uint32_t local,
                       std::uint32_t remote);
  void flush_queue(Time now, Peer& p);
  // Encrypts `packet` (plaintext in place) for the peer's current session and sends it on
  // the active path. Returns false if there is no usable session or path.
  bool send_to_peer(Time now, Peer& p, PacketView packet, bool is_probe_or_keepalive = false);
  void send_datagram_to_peer(Time now, Peer& p, PacketView datagram, const Path* direct);
  // Encrypts a control message in the peer's current session and sends it to `to`, or
  // through the coordinator's relay when `to` is empty.
  void send_control_to_peer(Time now, Peer& p, const wire::ControlMessage& m,
                            std::optional<Endpoint> to);
  void send_relayed(Time now, Ipv4 to, PacketView datagram);
  void peer_tick(Time now, Peer& p);
  void path_tick(Time now, Peer& p);
  void start_punching(Time now, Peer& p);
  // Probes every confirmed direct path of `p` now; one unanswered probe declares it dead.
  void check_paths_now(Time now, Peer& p);
  void add_candidate(Peer& p, const Endpoint& ep, PathKind kind);
  void choose_path(Time now, Peer& p);
  Force policy_for(const crypto::Certificate& cert) const;
  Expected<void, crypto::CertError> verify_peer(const crypto::Certificate& cert,
                                                crypto::Role role) const;

  std::uint32_t new_index(SessionRef ref);
  void drop_index(std::uint32_t index);
  std::uint64_t random_u64();
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }

  crypto::Identity identity_;
  crypto::CaCertificate ca_;
  NodeSettings settings_;
  NodeEffects& fx_;
  std::shared_ptr<spdlog::logger> log_;
  Ipv4Prefix mesh_;
  Ipv4 broadcast_;
  StunSink stun_sink_;

  std::unique_ptr<CoordinatorLink> coord_;
  std::map<std::uint32_t, std::unique_ptr<Peer>> peers_;  // by virtual IP
  std::unordered_map<std::uint32_t, SessionRef> index_;   // local session index -> owner
  std::vector<Endpoint> local_endpoints_;
  wire::NatSummary nat_;
  std::uint32_t next_request_id_ = 1;
  DropCounters drops_;
  Time deadline_ = Time::max();
  std::vector<std::uint8_t> scratch_;  // control-message encoding (not the data path)
  std::vector<std::uint8_t> queue_buffer_;
};

}  // namespace p2p::core
