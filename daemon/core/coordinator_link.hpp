// CoordinatorLink: the node's side of ONE coordinator (CoordinatorSet holds one per configured
// coordinator and registers with all of them at once). It owns the Noise XX handshake and the
// sessions with that coordinator, registration (what we register: our interface endpoints and
// NAT summary), re-registration, liveness and RTT, refusals, and the relay's wrapping; it
// decodes what the coordinator sends and hands it on through CoordinatorEvents.
//
//   start()  -> XX message 1 -> on_handshake_resp() (message 2) -> message 3 + Register
//   RegisterOk -> registered; Register again every interval (the coordinator's, capped by our
//   keepalive); Refused -> wait kRefusedRetry, then start over.
//
// Liveness: registered, the link sends a Ping (5 bytes in the session) every kPingInterval and
// the coordinator answers with a Pong of the same size; the answers give the RTT (smoothed, as
// TCP's SRTT) by which CoordinatorSet picks the relay. A Ping unanswered after kPingTimeout is
// a miss and the next one leaves at once; kPingMisses in a row on a session whose coordinator
// has answered a Ping before -> lost: a new handshake at once (a restarted coordinator has
// forgotten our session, so nothing we send it is answered). A coordinator that never answers
// Pings (an older one) is judged as before: silence for three register intervals.
// Why not let a coordinator answer Data for an unknown session index ("who are you?"): that
// answer could not be authenticated (the coordinator has lost the keys), so anyone could spoof
// it to make every node drop a live session; and it would be a reply to unauthenticated bytes.
// A Ping costs the coordinator no state and, at one per node every 3 s, 100k nodes send it
// ~33k datagrams of 37 bytes a second each way.
//
// Carriers (coordinator_carrier.cpp): UDP, and a TCP connection to the coordinator's main
// port when mesh.yaml gives one (set_tcp_port). Every handshake goes over one carrier and its
// session stays on it (carrier()); the coordinator answers the way a node's last authenticated
// datagram came, so moving is just handshaking over the other one. After
// kUdpAttemptsBeforeTcp UDP handshakes in a row go unanswered (10 s), the link asks the shell
// for a stream (NodeEffects::coordinator_stream_open), handshakes and registers over it; its
// relay traffic follows. While on TCP it tries one UDP handshake every kUdpProbeInterval and
// moves back (closing the stream) when one is answered. A stream that closes or fails to open
// is opened again after a back-off (kStreamBackoffMin doubling to kStreamBackoffMax, reset
// once registered over it); a session on TCP resumes on the new connection with a Register.
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
  // `via` is the coordinator that relayed it.
  virtual void on_relayed(Time now, const Endpoint& via, PacketView datagram) = 0;
  // A part of the CA-signed revocation list, unverified (the Node reassembles and checks it).
  virtual void on_revocation_chunk(Time /*now*/, const wire::RevocationChunk& /*m*/) {}
  // TcpPunchOffer, TcpPunchGo or TcpPunchFailed (daemon/core/tcp_punch.hpp handles them).
  virtual void on_tcp_punch(Time /*now*/, const wire::ControlMessage& /*m*/) {}
};

class CoordinatorLink {
 public:
  enum class State { kConnecting, kRegistering, kRegistered, kRefused };
  enum class Carrier { kUdp, kTcp };

  static constexpr int kUdpAttemptsBeforeTcp = 2;
  static constexpr Duration kUdpProbeInterval = std::chrono::seconds(30);
  static constexpr Duration kStreamOpenTimeout = std::chrono::seconds(10);
  static constexpr Duration kStreamBackoffMin = std::chrono::seconds(1);
  static constexpr Duration kStreamBackoffMax = std::chrono::seconds(30);

  // `slot` is the link's number in its CoordinatorSet: its session indices are owned by
  // SessionOwner{true, slot}.
  CoordinatorLink(const crypto::Identity& identity, Endpoint coordinator, std::uint32_t slot,
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
  // Our router's port mapping (its external endpoint), offered to peers; nullopt: none.
  void set_mapped(Time now, std::optional<Endpoint> mapped);
  const std::optional<Endpoint>& mapped() const { return mapped_; }
  // The network changed: new endpoints, and register again now whether or not they differ.
  void network_changed(Time now, std::vector<Endpoint> endpoints);
  // Registers now (e.g. to refresh the mapping the relay uses after a direct path died).
  void register_now(Time now);

  // Seals a control message for the coordinator; false without a session.
  bool send(Time now, const wire::ControlMessage& m);
  // Wraps a peer datagram in place (in its headroom) in a Relay frame to `to`; false without a
  // session.
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
  // A Relayed frame (`frame`, all of it) for one of our indices: checks its tag and hands the
  // peer datagram inside to CoordinatorEvents::on_relayed.
  void on_relayed_frame(Time now, const wire::RelayFrame& f, PacketView frame);

  bool registered() const { return state_ == State::kRegistered; }
  // Registered and its last Ping answered (or none missed yet): fit to relay through.
  bool healthy() const { return registered() && misses_ == 0; }
  // The smoothed RTT of its Pings; none before the first Pong of this session.
  std::optional<Duration> rtt() const { return srtt_; }
  bool has_session() const { return slots_.current.has_value(); }
  const Endpoint& endpoint() const { return endpoint_; }
  const std::optional<Endpoint>& observed() const { return observed_; }
  const std::vector<Endpoint>& local_endpoints() const { return local_endpoints_; }
  const wire::NatSummary& nat() const { return nat_; }
  // "connecting", "connecting: no answer from <endpoint> to <n> handshakes", "registering",
  // "registered", "refused: <reason>"
  std::string state_text() const;

  // The TCP carrier (see the top of the file). The coordinator's main port; none: UDP only.
  void set_tcp_port(std::optional<std::uint16_t> port) { tcp_port_ = port; }
  std::optional<Endpoint> tcp_endpoint() const;
  // The carrier of the current session (UDP before the first).
  Carrier carrier() const { return carrier_; }
  const char* transport() const { return carrier_ == Carrier::kTcp ? "tcp" : "udp"; }
  // The shell's stream opened (`open`), or closed or failed to open.
  void on_stream(Time now, bool open);
  bool stream_open() const { return stream_ == Stream::kOpen; }
  // Streams asked for since the start (tests: reconnects).
  std::uint64_t stream_opens() const { return stream_opens_; }

 private:
  void handshake(Time now);
  void send_register(Time now);
  void on_message(Time now, PacketView plain);
  void ping_tick(Time now);
  void on_pong(Time now, const wire::Pong& p);
  void lost(Time now, const char* why);
  // The TCP carrier (coordinator_carrier.cpp).
  void transmit(Carrier c, std::span<const std::uint8_t> datagram);
  Carrier handshake_carrier(Time now);
  bool wants_stream() const;
  void open_stream(Time now);
  void close_stream();
  void back_off(Time now);  // no stream before stream_retry_
  // A handshake over `c` timed out; false when it was a UDP probe beside a live TCP session.
  bool handshake_timed_out(Time now, Carrier c);
  void carrier_tick(Time now);
  void installed(Time now, Carrier was);
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }

  const crypto::Identity& identity_;
  Duration keepalive_;
  crypto::CertificateVerifier verify_;
  SessionTable& table_;
  NodeEffects& fx_;
  CoordinatorEvents& events_;
  spdlog::logger& log_;
  DropCounters& drops_;

  Endpoint endpoint_;
  std::uint32_t slot_;
  State state_ = State::kConnecting;
  SessionSlots slots_;
  std::optional<Endpoint> observed_;
  Duration interval_ = std::chrono::seconds(25);
  Time next_register_{};
  Time next_attempt_{};
  Time last_received_{};
  // Handshakes timed out in a row, whichever coordinator: at kUnansweredWarning, one warning
  // and the state says so.
  static constexpr int kUnansweredWarning = 3;
  int unanswered_ = 0;
  std::string refused_;
  std::vector<Endpoint> local_endpoints_;
  wire::NatSummary nat_;
  std::optional<Endpoint> mapped_;
  std::uint32_t next_request_id_ = 1;
  crypto::GuardKeys guard_keys_;
  std::vector<std::uint8_t> scratch_;  // control-message encoding (not the data path)
  Time deadline_ = Time::max();
  // Pings (see the top of the file).
  std::uint32_t ping_id_ = 0;  // the Ping awaiting its Pong; 0: none
  std::uint32_t next_ping_id_ = 1;
  Time ping_sent_{};
  Time next_ping_{};
  int misses_ = 0;
  bool answers_pings_ = false;  // this session's coordinator has answered a Ping
  std::optional<Duration> srtt_;
  // The TCP carrier (see the top of the file).
  enum class Stream { kClosed, kOpening, kOpen };
  std::optional<std::uint16_t> tcp_port_;
  Carrier carrier_ = Carrier::kUdp;          // the current session's
  Carrier pending_carrier_ = Carrier::kUdp;  // the handshake in progress's
  Carrier observed_carrier_ = Carrier::kUdp;
  Stream stream_ = Stream::kClosed;
  Time stream_since_{};  // opening since
  Time stream_retry_{};  // not opened again before
  Duration stream_backoff_ = kStreamBackoffMin;
  std::uint64_t stream_opens_ = 0;
  int udp_unanswered_ = 0;  // UDP handshakes unanswered in a row
  Time next_udp_probe_{};
};

}  // namespace p2p::core
