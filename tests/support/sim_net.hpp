// SimNet: a deterministic, in-process network for testing whole nodes and a coordinator
// together, without root, sockets or sleeping.
//
// - One virtual clock. run_until() jumps straight to the next event: a datagram's arrival
//   or the earliest deadline a core asked for. Same seed, same run, event for event.
// - The "internet": public hosts (the coordinator) and NAT routers, each with one public
//   address and a private LAN behind it. Hosts on the same LAN reach each other directly.
// - NAT models: mapping (endpoint-independent, address-dependent, address-and-port-
//   dependent), filtering (the same three), port allocation (preserving, sequential with a
//   step, random), mapping timeout, hairpinning on/off, flush() (conntrack -F).
// - Links: latency, loss (seeded), and optional jitter that reorders.
// - A trace of every datagram (time, from, to, what, fate) for failure messages, and a tap
//   that hands a test each datagram's bytes.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coordinator/core/coordinator.hpp"
#include "crypto/auth_handshake.hpp"
#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "daemon/core/node.hpp"
#include "daemon/nat/discovery_scheduler.hpp"
#include "net/control.hpp"

namespace p2p::sim {

enum class Behaviour { kIndependent, kAddress, kAddressAndPort };
enum class Allocation { kPreserving, kSequential, kRandom };

struct NatModel {
  Behaviour mapping = Behaviour::kIndependent;
  Behaviour filtering = Behaviour::kAddressAndPort;
  Allocation allocation = Allocation::kPreserving;
  int port_step = 1;  // for kSequential
  Duration mapping_timeout = std::chrono::seconds(60);
  bool hairpin = false;

  static NatModel full_cone() { return {Behaviour::kIndependent, Behaviour::kIndependent}; }
  static NatModel restricted() { return {Behaviour::kIndependent, Behaviour::kAddress}; }
  static NatModel port_restricted() {
    return {Behaviour::kIndependent, Behaviour::kAddressAndPort};
  }
  static NatModel symmetric(Allocation a = Allocation::kRandom) {
    return {Behaviour::kAddressAndPort, Behaviour::kAddressAndPort, a};
  }
};

// The network CA and certificates for tests.
struct TestCa {
  crypto::Ed25519KeyPair key;
  crypto::CaCertificate cert;
  UnixTime now;

  explicit TestCa(UnixTime now, std::string name = "test-ca");
  crypto::Identity issue(const std::string& name, const std::string& vip_prefix,
                         crypto::Role role = crypto::Role::node, UnixTime not_before = 0,
                         UnixTime not_after = 0) const;
};

// An IPv4/UDP packet from src to dst carrying `payload` (checksums filled in).
std::vector<std::uint8_t> make_udp_packet(Ipv4 src, Ipv4 dst, std::uint16_t sport,
                                          std::uint16_t dport,
                                          std::span<const std::uint8_t> payload);

class SimNet;

// What a node's TCP paths ask of the simulation (tests/support/sim_streams.hpp): its punch
// port's sockets and its established streams. Unset: the node has no TCP.
class SimNodeTcp : public core::TcpPunchEffects {
 public:
  virtual void send_stream(std::uint32_t stream, std::span<const std::uint8_t> datagram) = 0;
  virtual void close_stream(std::uint32_t stream) = 0;
};

// A host running a Node, and once discover() is called, NAT discovery beside it over its one
// socket, as p2pvpnd runs them (nat::DiscoveryScheduler fed the virtual time). Packets the
// Node writes to its TUN land in `tun_out`.
class SimNode : public core::NodeEffects,
                public nat::SchedulerEffects,
                public core::PunchSocketEffects {
 public:
  SimNode(SimNet& net, std::string name, Endpoint socket, crypto::Identity id,
          const crypto::CaCertificate& ca, core::NodeSettings settings);
  core::Node& node() { return *node_; }
  const Endpoint& socket() const { return socket_; }
  const std::string& name() const { return name_; }
  Ipv4 vip() const { return vip_; }
  // Sends an IP packet into this node's TUN (as the OS would).
  void tun_send(std::span<const std::uint8_t> ip_packet);
  void send_udp_to(Ipv4 dst_vip, std::string_view text, std::uint16_t port = 9000);
  std::vector<std::vector<std::uint8_t>> tun_out;

  // Runs the node's own NAT discovery against `stun_server` (the coordinator's STUN service)
  // now, as the daemon does at start, and from then on whenever the scheduler says (every
  // settings.interval, after network_changed(), when the coordinator sees the node move);
  // each report's summary goes to the Node. A later call only re-runs it.
  void discover(Endpoint stun_server, nat::SchedulerSettings settings = {});
  // The last report of the node's own discovery, and how many it has had.
  const std::optional<nat::Report>& nat_report() const { return nat_report_; }
  int nat_reports() const { return nat_reports_; }
  nat::DiscoveryScheduler* discovery() { return discovery_.get(); }
  // The host's network changed under the node (say, its NAT was replaced): what p2pvpnd
  // does once netlink news has settled.
  void network_changed();

  Time next_deadline() const;
  void tick(Time now);
  // A datagram for the node's socket.
  void on_udp(Time now, const Endpoint& from, PacketView datagram);

  // nat::SchedulerEffects
  void send(const Endpoint& to, std::span<const std::uint8_t> datagram) override {
    send_udp(to, datagram);
  }
  std::optional<Endpoint> own_server() override { return stun_server_; }
  std::vector<Endpoint> local_endpoints() override { return {socket_}; }

  // NodeEffects
  void send_udp(const Endpoint& to, std::span<const std::uint8_t> datagram) override;
  void write_tun(std::span<const std::uint8_t> packet) override {
    tun_out.emplace_back(packet.begin(), packet.end());
  }
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;
  void public_endpoint_moved(const Endpoint& was, const Endpoint& now_at) override;
  // The coordinator carrier over TCP, through SimNet's streams (sim_stream.cpp).
  void coordinator_stream_open(std::uint32_t slot, const Endpoint& to) override;
  void coordinator_stream_send(std::uint32_t slot, std::span<const std::uint8_t> d) override;
  void coordinator_stream_close(std::uint32_t slot) override;
  void on_stream(Time now, std::uint32_t slot, bool open);
  void on_stream_frame(Time now, std::uint32_t slot, PacketView frame);

  // Extra sockets for birthday punching (sim_punch_sockets.cpp): each a port of its own on the
  // node's address (from 50000 up), so each gets a mapping of its own from the NAT.
  core::PunchSocketEffects* punch_sockets() override {
    return extra_sockets_enabled ? this : nullptr;
  }
  std::uint32_t open_punch_socket() override;
  void send_punch(std::uint32_t socket, const Endpoint& to,
                  std::span<const std::uint8_t> datagram) override;
  void close_punch_socket(std::uint32_t socket) override;
  void adopt_punch_socket(std::uint32_t socket) override { adopted.push_back(socket); }
  void on_punch_udp(Time now, std::uint32_t socket, const Endpoint& from, PacketView datagram);
  bool extra_sockets_enabled = true;
  std::size_t max_extra_sockets = 100000;  // open_punch_socket() fails beyond this many open
  std::size_t open_extra_sockets() const { return punch_.size(); }
  std::size_t peak_extra_sockets = 0;
  std::uint64_t extra_sockets_opened = 0;
  std::vector<std::uint32_t> adopted;
  core::TcpPunchEffects* tcp_punch() override { return tcp_; }
  void send_stream(std::uint32_t stream, std::span<const std::uint8_t> datagram) override {
    if (tcp_) tcp_->send_stream(stream, datagram);
  }
  void close_stream(std::uint32_t stream) override {
    if (tcp_) tcp_->close_stream(stream);
  }
  void set_tcp(SimNodeTcp* tcp) { tcp_ = tcp; }

 private:
  std::map<std::uint32_t, Endpoint> punch_;  // open extra sockets
  std::uint32_t next_punch_ = 1;
  std::uint16_t next_punch_port_ = 50000;

  // After every input, outside the Node: what the shell's after_event() does for discovery.
  void after_event(Time now);

  SimNet& net_;
  std::string name_;
  Endpoint socket_;
  Ipv4 vip_;
  std::unique_ptr<core::Node> node_;
  std::optional<Endpoint> stun_server_;
  std::unique_ptr<nat::DiscoveryScheduler> discovery_;
  std::optional<nat::Report> nat_report_;
  int nat_reports_ = 0;
  bool public_moved_ = false;
  bool registered_ = false;
  SimNodeTcp* tcp_ = nullptr;
};

class SimCoordinator : public coord::CoordinatorEffects {
 public:
  SimCoordinator(SimNet& net, Endpoint primary, std::optional<Ipv4> alternate, crypto::Identity id,
                 const crypto::CaCertificate& ca, coord::CoordinatorSettings settings);
  coord::Coordinator& core() { return *core_; }
  const Endpoint& endpoint() const { return primary_; }
  Endpoint socket_endpoint(wire::stun::ServerSocket s) const;

  void send_udp(wire::stun::ServerSocket from, const Endpoint& to,
                std::span<const std::uint8_t> datagram) override;
  // To a node's stream (sim_stream.cpp); a connection gone: traced as a drop.
  void send_tcp(coord::ConnectionId connection, std::span<const std::uint8_t> datagram) override;
  // Listens on the TCP main port `port` of the primary address.
  void listen_tcp(std::uint16_t port) { tcp_port_ = port; }
  std::optional<std::uint16_t> tcp_port() const { return tcp_port_; }
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;

 private:
  SimNet& net_;
  Endpoint primary_;
  std::optional<Ipv4> alternate_;
  std::unique_ptr<coord::Coordinator> core_;
  std::optional<std::uint16_t> tcp_port_;
};

class SimNet {
 public:
  explicit SimNet(std::uint64_t seed = 1, UnixTime unix_start = 1'800'000'000);
  ~SimNet();

  // Topology. A NAT router gets a public address; hosts behind it get private ones.
  int add_nat(Ipv4 public_address, NatModel model);
  SimCoordinator& add_coordinator(Endpoint primary, std::optional<Ipv4> alternate,
                                  crypto::Identity id, const crypto::CaCertificate& ca,
                                  coord::CoordinatorSettings settings = {});
  // nat < 0: a host with a public address.
  SimNode& add_node(std::string name, int nat, Endpoint socket, crypto::Identity id,
                    const crypto::CaCertificate& ca, core::NodeSettings settings);
  void remove_node(const std::string& name);

  // Link behaviour (one-way latency between any two hosts through the internet, and on a LAN).
  Duration latency = std::chrono::milliseconds(20);
  Duration lan_latency = std::chrono::microseconds(300);
  Duration jitter{};  // uniform extra delay in [0, jitter): reorders
  double loss = 0.0;  // probability a datagram is lost
  // A firewall: true drops the datagram (source as the receiver sees it, after NAT).
  std::function<bool(const Endpoint& from, const Endpoint& to)> drop_udp;

  Time now() const { return now_; }
  UnixTime unix_now() const;
  std::mt19937_64& rng() { return rng_; }

  // Steps the network until `done()` or `limit` of virtual time passed. Returns done().
  bool run_until(const std::function<bool()>& done, Duration limit);
  void run_for(Duration d);

  void flush_nat(int nat);  // forget every mapping (conntrack -F)
  void set_nat_model(int nat, NatModel model);
  void set_blocked(int nat, bool blocked);  // drop all UDP through this NAT
  // A router port mapping (what UPnP IGD, NAT-PMP or PCP grant): inbound to the NAT's
  // `external_port` goes to `inside` from anyone, and `inside`'s replies to such a sender
  // leave from that port (conntrack's reverse of the forwarded flow).
  void add_port_forward(int nat, std::uint16_t external_port, Endpoint inside);
  Ipv4 nat_public_ip(int nat) const;
  std::string trace_tail(std::size_t n = 40) const;

  // Every datagram put on the network, whatever its fate, as the trace sees it: when it was
  // sent, its source as the receiver sees it (after NAT), its destination, its bytes. Called
  // from inside send(); the record is only valid during the call. Unset: nothing recorded.
  struct Tapped {
    Time at;
    Endpoint from;
    Endpoint to;
    std::span<const std::uint8_t> data;
    const char* fate;  // "sent", "lan", "via nat", "lost", "dropped: ..."
  };
  std::function<void(const Tapped&)> tap;
  std::uint64_t delivered() const { return delivered_; }

  // A datagram with any source address (spoofed, or from a host outside the simulation),
  // delivered to `to` as from a public host; answers to `from` reach no one.
  void inject(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d);

  // Internal: from a host's socket.
  void send(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d);
  // Runs `fn` at `t` (not before now) on the network's timeline, in order with deliveries.
  void at(Time t, std::function<void()> fn);

  // Coordinator TCP streams (sim_stream.cpp): ordered, lossless, `latency` each way; a
  // connect takes a round trip. A NAT may drop all TCP as set_blocked() drops UDP; a
  // coordinator without listen_tcp() refuses (RST after a round trip).
  void set_tcp_blocked(int nat, bool blocked);
  // Resets every stream of `node` (both ends told, as after a RST).
  void reset_streams(const std::string& node);
  std::size_t open_streams() const;
  std::uint64_t stream_connects = 0;  // connects asked for, since the start
  // Internal, from SimNode and SimCoordinator.
  void stream_open(SimNode& node, std::uint32_t slot, const Endpoint& to);
  void stream_send(SimNode& node, std::uint32_t slot, std::span<const std::uint8_t> d);
  void stream_close(SimNode& node, std::uint32_t slot);
  void stream_to_node(coord::ConnectionId id, std::span<const std::uint8_t> d);
  void stream_deliver(coord::ConnectionId id, std::span<const std::uint8_t> d, bool to_coordinator);

 private:
  struct Nat;
  struct InFlight;
  void deliver(const InFlight& f);
  std::optional<Endpoint> translate_out(Nat& nat, const Endpoint& from, const Endpoint& to);
  std::optional<Endpoint> translate_in(Nat& nat, const Endpoint& from, const Endpoint& to);
  int nat_of(const IpAddress& private_address) const;
  int nat_by_public(const IpAddress& public_address) const;
  Duration delay(bool lan);
  void record(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d,
              const char* fate);

  struct Receiver {
    SimNode* node = nullptr;
    SimCoordinator* coord = nullptr;
    wire::stun::ServerSocket socket{};
    int nat = -1;                    // the NAT the host sits behind, -1 for a public host
    std::uint32_t punch_socket = 0;  // a node's extra socket (SimNode::open_punch_socket)
  };
  std::map<Endpoint, Receiver> hosts_;  // every socket on the network
  std::mt19937_64 rng_;
  UnixTime unix_start_;
  Time now_{};
  std::uint64_t seq_ = 0;
  std::uint64_t delivered_ = 0;
  std::vector<std::unique_ptr<Nat>> nats_;
  std::map<std::string, std::unique_ptr<SimNode>> nodes_;
  std::vector<std::unique_ptr<SimCoordinator>> coordinators_;
  std::multimap<std::pair<Time, std::uint64_t>, std::unique_ptr<InFlight>> queue_;
  std::vector<std::string> trace_;
  std::vector<std::uint8_t> buffer_;
  struct Stream {
    SimNode* node;
    std::uint32_t slot;
    SimCoordinator* coord;
    Endpoint seen_from;
    bool open = false;  // connected; false while connecting
  };
  std::map<coord::ConnectionId, Stream> streams_;
  coord::ConnectionId next_stream_ = 1;
  std::vector<int> tcp_blocked_;  // NATs dropping all TCP
  void later(Duration delay, std::function<void()> fn);
  coord::ConnectionId stream_of(const SimNode& node, std::uint32_t slot) const;
  friend class SimNode;
  friend class SimCoordinator;
};

}  // namespace p2p::sim
