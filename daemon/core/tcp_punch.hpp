// TcpPunch: one node's side of one TCP hole punch by simultaneous open, I/O-free
// (the coordinator's side and the whole flow: coordinator/core/tcp_punch_broker.hpp).
//
//   start(): open the punch port - bind a fresh local port (SO_REUSEADDR + SO_REUSEPORT on
//            every socket bound to it), listen on it, connect from it to the coordinator's
//            assist port and send the hello with our token (net/tcp_assist.hpp)
//   on_go(): the peer's public TCP endpoint: connect to it from the punch port, and again
//            every `retry` (closing the attempt before) until one socket completes
//   on_established(): the first socket to complete wins, connected or accepted; everything
//            else of the punch is closed. The caller runs the peer IK handshake over it
//            before trusting a byte: a punched socket proves nothing about who is behind it.
//
// A SYN that reaches the peer's NAT before the peer's own SYN has left it is dropped (or
// answered with a RST); the kernel would retransmit only after a second, so we retry sooner.
// Retries are jittered (uniform in [retry/2, 3*retry/2), seeded by the token and the peer so
// the two sides differ): where NATs answer early SYNs with a RST, each RST kills the attempt
// it answers, and two sides retrying at one fixed period would keep the offset between their
// SYNs, refusing each other forever.
// Every wait is bounded: no Go within `go_timeout`, or no socket within `punch_timeout` of
// the Go, and the punch fails (the caller falls back to the relay).
#pragma once

#include <cstdint>
#include <string>

#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/tcp_assist.hpp"
#include "net/time.hpp"

namespace p2p::core {

// What a punch asks of the shell; `punch` names the punch port's sockets.
class TcpPunchEffects {
 public:
  virtual ~TcpPunchEffects() = default;
  virtual void punch_open(std::uint32_t punch, const Endpoint& assist,
                          const wire::AssistHello& hello) = 0;
  // A new connect from the punch port to `to` (an attempt still pending is closed first).
  virtual void punch_connect(std::uint32_t punch, const Endpoint& to) = 0;
  // Closes the listener and every attempt of the punch but a socket already handed over.
  virtual void punch_close(std::uint32_t punch) = 0;
};

struct TcpPunchTiming {
  Duration retry = std::chrono::milliseconds(250);
  Duration go_timeout = std::chrono::seconds(10);
  Duration punch_timeout = std::chrono::seconds(5);
};

class TcpPunch {
 public:
  enum class State { kIdle, kWaitingForGo, kConnecting, kEstablished, kFailed };

  TcpPunch(std::uint32_t id, Ipv4 peer, const wire::PunchToken& token, TcpPunchTiming timing);

  void start(Time now, TcpPunchEffects& fx, const Endpoint& assist);
  // TcpPunchGo for this punch (the caller matched its id and peer).
  void on_go(Time now, TcpPunchEffects& fx, const Endpoint& peer_endpoint);
  // The pending attempt was refused or reset (counted): the next retry is not brought
  // forward, so a NAT that answers every early SYN with a RST costs no more SYNs than one that
  // drops it.
  void on_connect_failed() { ++resets_; }
  // A socket of the punch completed (`inbound`: accepted). True: it is the punch's, hand it
  // to the peer handshake; false: the punch is over already, close it.
  bool on_established(Time now, TcpPunchEffects& fx, bool inbound);
  // TcpPunchFailed from the coordinator.
  void on_refused(TcpPunchEffects& fx, std::string reason);
  void on_tick(Time now, TcpPunchEffects& fx);
  Time deadline() const { return deadline_; }

  State state() const { return state_; }
  std::uint32_t id() const { return id_; }
  Ipv4 peer() const { return peer_; }
  const wire::PunchToken& token() const { return token_; }
  const std::string& failure() const { return failure_; }
  int attempts() const { return attempts_; }
  int resets() const { return resets_; }
  bool inbound() const { return inbound_; }                   // the winner was accepted
  Duration time_to_path() const { return done_ - started_; }  // start() to the winner

 private:
  void fail(TcpPunchEffects& fx, std::string reason);
  void connect(Time now, TcpPunchEffects& fx);
  Duration next_retry_interval();

  std::uint32_t id_;
  Ipv4 peer_;
  wire::PunchToken token_;
  TcpPunchTiming timing_;
  State state_ = State::kIdle;
  Endpoint peer_endpoint_;
  Time started_{}, done_{}, give_up_{}, next_retry_{};
  Time deadline_ = Time::max();
  int attempts_ = 0, resets_ = 0;
  std::uint64_t jitter_state_ = 0;
  bool inbound_ = false;
  std::string failure_;
};

}  // namespace p2p::core
