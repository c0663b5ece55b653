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
// Relay hot path (no copy): a node's Data message to us decrypts in place to
// [Relay][to vip][inner]; the header is rewritten in place to [Relayed][from vip], encrypted
// in place for the target (its tag lands where the old tag was) behind a new data header
// written over the old one.
//
// Threading: none.
#pragma once

#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/transport.hpp"
#include "net/control.hpp"
#include "net/packet_view.hpp"
#include "net/stun.hpp"
#include "net/time.hpp"

namespace p2p::coord {

using wire::stun::ServerSocket;

class CoordinatorEffects {
 public:
  virtual ~CoordinatorEffects() = default;
  virtual void send_udp(ServerSocket from, const Endpoint& to,
                        std::span<const std::uint8_t> datagram) = 0;
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
};

// Token bucket: `rate` bytes per second, at most `burst` saved up.
class TokenBucket {
 public:
  TokenBucket(std::uint64_t rate, std::uint64_t burst, Time now)
      : rate_(rate), burst_(burst), tokens_(static_cast<double>(burst)), last_(now) {}
  bool take(Time now, std::size_t bytes);

 private:
  std::uint64_t rate_, burst_;
  double tokens_;
  Time last_;
};

struct NodeEntryStatus {
  std::string name;
  Ipv4Prefix vip;
  Endpoint observed;
  std::vector<Endpoint> local_endpoints;
  wire::NatSummary nat;
  Duration since_seen{};
  std::uint64_t relayed_bytes = 0, relay_dropped = 0;
};

struct CoordinatorStatus {
  std::vector<NodeEntryStatus> nodes;
  std::uint64_t handshakes_refused = 0, malformed = 0, stun_answered = 0;
  // Relay totals over every node ever registered (the per-node figures go with the node).
  std::uint64_t relayed_bytes = 0, relayed_packets = 0, relay_dropped = 0;
  std::size_t pending_handshakes = 0;  // XX handshakes in progress
};

class Coordinator {
 public:
  Coordinator(crypto::Identity identity, crypto::CaCertificate ca, CoordinatorSettings settings,
              std::optional<wire::stun::Server> stun, CoordinatorEffects& effects,
              std::shared_ptr<spdlog::logger> log);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  void on_udp(Time now, ServerSocket socket, const Endpoint& from, PacketView packet);
  void on_tick(Time now);
  Time next_deadline() const { return deadline_; }
  CoordinatorStatus status(Time now) const;

 private:
  struct Entry;
  struct Pending;

  void on_init(Time now, const Endpoint& from, PacketView d);
  void on_final(Time now, const Endpoint& from, PacketView d);
  void on_data(Time now, const Endpoint& from, PacketView d);
  void on_control(Time now, Entry& e, const wire::ControlMessage& m);
  void relay(Time now, Entry& from, PacketView header_and_body, std::size_t plain_len);
  void send_control(Time now, Entry& e, const wire::ControlMessage& m);
  void introduce(Time now, Entry& to, const Entry& about, std::uint32_t request_id, bool initiate);
  void remove(Entry& e, const char* why);
  Entry* find_by_vip(Ipv4 vip);
  std::uint32_t new_index();
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }

  crypto::Identity identity_;
  crypto::CaCertificate ca_;
  CoordinatorSettings settings_;
  std::optional<wire::stun::Server> stun_;
  CoordinatorEffects& fx_;
  std::shared_ptr<spdlog::logger> log_;

  std::map<crypto::PublicKey, std::unique_ptr<Entry>> nodes_;      // by static key
  std::unordered_map<std::uint32_t, Entry*> by_index_;             // session index -> node
  std::unordered_map<std::uint32_t, std::unique_ptr<Pending>> pending_;  // XX in progress
  CoordinatorStatus counters_;
  Time deadline_ = Time::max();
  std::vector<std::uint8_t> scratch_;
};

}  // namespace p2p::coord
