// CoordinatorSet: the node's coordinators, all at once. mesh.yaml may list several; they share
// no state, so the node registers with every one (a CoordinatorLink each, with its own
// handshake, registration and Pings) and two nodes that list the same coordinators find each
// other through whichever is up.
//
//   lookups       a PeerRequest goes to every registered coordinator: the peer may be registered
//                 with only some of them (it lists fewer, or one of them restarted and it has
//                 not re-registered yet), and lookups are rare and rate-limited. The first
//                 Introduce answers it (later ones for the same request are dropped); a
//                 PeerUnknown is passed on only once every coordinator asked has said so.
//   relay         through one coordinator: the healthy registered one with the lowest smoothed
//                 Ping RTT. It is kept until it misses a Ping (then the next best, within
//                 about kPingInterval + kPingTimeout of its going) or another is clearly
//                 faster (by a fifth, and at least 2 ms: no flapping between equals).
//   what we register (endpoints, NAT) goes to all; the single-coordinator accessors
//   (endpoint(), observed(), state_text()) describe the relay, else the first coordinator.
//
// Time is handed in; deadline() is when tick() next has work. Threading: none.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/coordinator_link.hpp"

namespace p2p::core {

class CoordinatorSet final : private CoordinatorEvents {
 public:
  CoordinatorSet(const crypto::Identity& identity, const std::vector<Endpoint>& coordinators,
                 Duration keepalive, const crypto::CertificateVerifier& verify, SessionTable& table,
                 NodeEffects& fx, CoordinatorEvents& events, spdlog::logger& log,
                 DropCounters& drops);

  void start(Time now);
  void stop(Time now);  // Goodbye to each, best effort
  void tick(Time now);
  Time deadline() const;

  void set_local_endpoints(Time now, const std::vector<Endpoint>& endpoints);
  void set_nat(Time now, wire::NatSummary nat);
  // Our router's port mapping (its external endpoint), registered with every coordinator.
  void set_mapped(Time now, std::optional<Endpoint> mapped);
  void network_changed(Time now, const std::vector<Endpoint>& endpoints);
  void register_now(Time now);

  // Sends `m` to every registered coordinator (a PeerRequest is tracked as above); false when
  // none took it.
  bool send(Time now, const wire::ControlMessage& m);
  // Wraps a peer datagram for the relay coordinator; false without one.
  bool send_relayed(Time now, Ipv4 to, PacketView datagram);
  std::uint32_t next_request_id() { return next_request_id_++; }

  void set_network_key(const crypto::PublicKey& ca_key);
  // Handshake answers and Data for an index a CoordinatorLink owns (SessionOwner::coordinator).
  void on_cookie_reply(Time now, const wire::CookieReply& r);
  void on_handshake_resp(Time now, const wire::HandshakeResp& resp);
  void on_data(Time now, const wire::DataHeader& h, PacketView body);
  void on_relayed_frame(Time now, const wire::RelayFrame& f, PacketView frame);

  bool configured() const { return !links_.empty(); }
  bool registered() const;   // with at least one
  bool has_session() const;  // with at least one
  const Endpoint& endpoint() const { return shown().endpoint(); }
  std::optional<Endpoint> observed() const;
  const std::vector<Endpoint>& local_endpoints() const { return local_endpoints_; }
  const wire::NatSummary& nat() const { return nat_; }
  const std::optional<Endpoint>& mapped() const { return mapped_; }
  std::string state_text() const;
  // Every coordinator, in mesh.yaml's order, with whether it is the relay.
  std::vector<CoordinatorStatus> status() const;
  // The coordinator relayed traffic goes through; nullptr when none is registered.
  const CoordinatorLink* relay() const {
    return relay_ < links_.size() ? links_[relay_].get() : nullptr;
  }

  // The TCP carrier (coordinator_link.hpp): each coordinator's main port, in mesh.yaml's order
  // (none: UDP only). Set before start().
  void set_tcp_ports(const std::vector<std::optional<std::uint16_t>>& ports);
  // The shell's stream to coordinator `slot` opened or closed, and a frame read from it: a
  // handshake answer or Data for an index that link owns (anything else is a counted drop).
  void on_stream(Time now, std::uint32_t slot, bool open);
  void on_stream_frame(Time now, std::uint32_t slot, PacketView frame);
  // "udp" or "tcp": the carrier of the coordinator the single-coordinator fields describe.
  const char* transport() const { return links_.empty() ? "udp" : shown().transport(); }
  const CoordinatorLink* link(std::uint32_t slot) const {
    return slot < links_.size() ? links_[slot].get() : nullptr;
  }

 private:
  // CoordinatorEvents, from the links: lookups merged, the rest passed on.
  void on_registered(Time now) override;
  void on_introduce(Time now, const wire::Introduce& m) override;
  void on_peer_unknown(Time now, const wire::PeerUnknown& m) override;
  void on_relayed(Time now, const Endpoint& via, PacketView datagram) override;
  // Any coordinator's part of the signed revocation list (the Node reassembles and verifies).
  void on_revocation_chunk(Time now, const wire::RevocationChunk& m) override;
  // TcpPunchOffer, TcpPunchGo or TcpPunchFailed from any coordinator.
  void on_tcp_punch(Time now, const wire::ControlMessage& m) override;

  CoordinatorLink* link_for(std::uint32_t index);
  const CoordinatorLink& shown() const { return relay() ? *relay() : *links_.front(); }
  void choose_relay();

  // A PeerRequest sent to more than one coordinator, until answered (bounded, oldest dropped).
  struct Lookup {
    std::uint32_t request_id;
    int unanswered;  // coordinators that have not answered yet
    bool introduced;
    Time expires;
  };
  Lookup* lookup(std::uint32_t request_id);
  static constexpr std::size_t kMaxLookups = 64;

  std::vector<std::unique_ptr<CoordinatorLink>> links_;
  SessionTable& table_;
  CoordinatorEvents& events_;
  spdlog::logger& log_;
  std::size_t relay_ = SIZE_MAX;
  std::vector<Lookup> lookups_;
  std::vector<Endpoint> local_endpoints_;
  wire::NatSummary nat_;
  std::optional<Endpoint> mapped_;
  std::uint32_t next_request_id_ = 1;
  DropCounters& drops_;
};

}  // namespace p2p::core
