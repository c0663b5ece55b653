// CoordinatorLink: the node's side of its coordinator. It owns the Noise XX handshake and the
// sessions with the coordinator in use, registration (what we register: our interface
// endpoints and NAT summary), re-registration, failover to the next configured coordinator,
// refusals, and the relay's wrapping; it decodes what the coordinator sends and hands it on
// through CoordinatorEvents.
//
//   start()  -> XX message 1 -> on_handshake_resp() (message 2) -> message 3 + Register
//   RegisterOk -> registered; Register again every interval (the coordinator's, capped by our
//   keepalive); silence for three intervals -> reconnect; kCoordinatorFailover handshakes in a
//   row unanswered -> the next coordinator; Refused -> wait kRefusedRetry, then start over.
//
// Time is handed in; deadline() is when tick() next has work. Threading: none.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "daemon/core/effects.hpp"
#include "daemon/core/session_table.hpp"
#include "daemon/status/status.hpp"
#include "net/control.hpp"
#include "net/packet_view.hpp"

namespace p2p::core {

// What the coordinator told us, for the Node to act on. Called from inside on_data().
class CoordinatorEvents {
 public:
  virtual ~CoordinatorEvents() = default;
  virtual void on_registered(Time now) = 0;  // every RegisterOk
  virtual void on_introduce(Time now, const wire::Introduce& m) = 0;
  virtual void on_peer_unknown(Time now, const wire::PeerUnknown& m) = 0;
  // A peer's datagram that came through the relay (`datagram` is writable, with headroom).
  virtual void on_relayed(Time now, PacketView datagram) = 0;
  // TcpPunchOffer, TcpPunchGo or TcpPunchFailed (daemon/core/tcp_punch.hpp handles them).
  virtual void on_tcp_punch(Time /*now*/, const wire::ControlMessage& /*m*/) {}
};

class CoordinatorLink {
 public:
  enum class State { kConnecting, kRegistering, kRegistered, kRefused };

  CoordinatorLink(const crypto::Identity& identity, std::vector<Endpoint> coordinators,
                  Duration keepalive, crypto::CertificateVerifier verify, SessionTable& table,
                  NodeEffects& fx, CoordinatorEvents& events, spdlog::logger& log,
                  DropCounters& drops);

  void start(Time now);
  void stop(Time now);  // Goodbye, best effort
  void tick(Time now);
  Time deadline() const { return deadline_; }

  // What we register. A change re-registers at once when a session is up.
  void set_local_endpoints(Time now, std::vector<Endpoint> endpoints);
  void set_nat(Time now, wire::NatSummary nat);
  // The network changed: new endpoints, and register again now whether or not they differ.
  void network_changed(Time now, std::vector<Endpoint> endpoints);
  // Registers now (e.g. to refresh the mapping the relay uses after a direct path died).
  void register_now(Time now);

  // Seals a control message for the coordinator; false without a session.
  bool send(Time now, const wire::ControlMessage& m);
  // Wraps a peer datagram (in place, using its headroom) for the relay; false without a session.
  bool send_relayed(Time now, Ipv4 to, PacketView datagram);
  std::uint32_t next_request_id() { return next_request_id_++; }

  // The key our XX initiations' mac1 is keyed by: the network CA's public key (the
  // coordinator's own key is not known before the handshake). Set before start().
  void set_network_key(const crypto::PublicKey& ca_key) {
    guard_keys_ = crypto::GuardKeys::derive(ca_key);
  }
  // A CookieReply to our handshake in progress: the coordinator is under load; send the
  // initiation again with the cookie.
  void on_cookie_reply(Time now, const wire::CookieReply& r);
  // XX message 2 for the handshake whose index we own.
  void on_handshake_resp(Time now, const wire::HandshakeResp& resp);
  // A Data datagram for one of our indices: decrypts it and dispatches the message.
  void on_data(Time now, const wire::DataHeader& h, PacketView body);

  bool configured() const { return !coordinators_.empty(); }
  bool registered() const { return state_ == State::kRegistered; }
  bool has_session() const { return slots_.current.has_value(); }
  const Endpoint& endpoint() const { return endpoint_; }
  const std::optional<Endpoint>& observed() const { return observed_; }
  const std::vector<Endpoint>& local_endpoints() const { return local_endpoints_; }
  const wire::NatSummary& nat() const { return nat_; }
  // "connecting", "connecting: no answer from <endpoint> to <n> handshakes", "registering",
  // "registered", "refused: <reason>"
  std::string state_text() const;

 private:
  void handshake(Time now);
  void send_register(Time now);
  void on_message(Time now, PacketView plain);
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }

  const crypto::Identity& identity_;
  std::vector<Endpoint> coordinators_;
  Duration keepalive_;
  crypto::CertificateVerifier verify_;
  SessionTable& table_;
  NodeEffects& fx_;
  CoordinatorEvents& events_;
  spdlog::logger& log_;
  DropCounters& drops_;

  std::size_t which_ = 0;
  Endpoint endpoint_;
  State state_ = State::kConnecting;
  SessionSlots slots_;
  std::optional<Endpoint> observed_;
  Duration interval_ = std::chrono::seconds(25);
  Time next_register_{};
  Time next_attempt_{};
  Time last_received_{};
  int failures_ = 0;
  // Handshakes timed out in a row, whichever coordinator: at kUnansweredWarning, one warning
  // and the state says so.
  static constexpr int kUnansweredWarning = 3;
  int unanswered_ = 0;
  std::string refused_;
  std::vector<Endpoint> local_endpoints_;
  wire::NatSummary nat_;
  std::uint32_t next_request_id_ = 1;
  crypto::GuardKeys guard_keys_;
  std::vector<std::uint8_t> scratch_;  // control-message encoding (not the data path)
  Time deadline_ = Time::max();
};

}  // namespace p2p::core
