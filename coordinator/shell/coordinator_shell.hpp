// CoordinatorShell: p2pvpn-coordinator's Boost.Asio shell around the I/O-free
// coord::Coordinator.
//
// Sockets: the primary one on `listen` carries everything (registration, introductions, the
// relay, STUN). With an alternate address, three more answer STUN only, for RFC 5780 behaviour
// discovery: A1:P2, A2:P1, A2:P2 (index = wire::stun::ServerSocket). Each is read in batches
// into its own pool: primary readable -> recvmmsg a batch -> coordinator.on_udp() per datagram
// -> every reply queued and sent with one sendmmsg() at the end of the batch. The relay hot
// path rewrites a datagram in place in the pool, so the forwarded packet leaves from the very
// buffer it arrived in (queued by reference, never copied). `now` is read once per batch; the
// one timer follows coordinator.next_deadline().
//
// Offloads (coordinator.yaml performance, the primary socket only; net/asio/udp_socket.hpp):
// with udp_gro the primary socket is read in place (receive_in_place): a node's datagrams
// arrive in one coalesced buffer and the core is handed views into it, so a relayed datagram
// is re-sealed and sent from there without a copy. The datagrams a batch sends that still lie
// in its receive buffers wait in a UdpSendBatch (net/udp_send_batch.hpp) until the batch is
// done and are then queued grouped by destination, so that with udp_gso a run of same-size
// datagrams to one node leaves in one UDP_SEGMENT send. What the kernel does not take is
// copied into the socket's bounded queue (full: a counted drop) and the socket is not read
// again until it drains: the loop never blocks.
//
// Control socket (control_socket in coordinator.yaml, default /run/p2pvpn-coordinator.sock,
// the protocol of p2pvpnd's): {"cmd":"status"} -> status_to_json() below plus
// "kind":"coordinator", "name" (the certificate's) and "listen" (every UDP socket, primary
// first), which `p2pvpnctl status --socket` prints; {"cmd":"reload"} -> reload(); anything
// else -> {"ok":false,"error":"unknown command"}.
//
// Metrics (coordinator.yaml metrics.listen): GET /metrics -> render_coordinator_metrics().
//
// TCP (coordinator.yaml tcp.main): a TcpMainPort (tcp_main_port.hpp) whose frames go to
// coordinator.on_tcp() and to which send_tcp() queues; its closes go to on_tcp_closed().
// Revocation list (coordinator.yaml revocation_list): read at start, then looked at once a
// second (one stat) and read again when it was replaced or rewritten; reload_revocation_list()
// reads it at once (what a configuration reload calls).
//
// Threading: everything runs on the one thread that runs the io_context.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/coordinator_config.hpp"
#include "config/revocation_file.hpp"
#include "config/startup.hpp"
#include "coordinator/core/coordinator.hpp"
#include "coordinator/shell/tcp_assist_port.hpp"
#include "coordinator/shell/tcp_main_port.hpp"
#include "net/asio/control_server.hpp"
#include "net/asio/loop.hpp"
#include "net/asio/metrics_server.hpp"
#include "net/asio/packet_pool.hpp"
#include "net/asio/udp_socket.hpp"
#include "net/expected.hpp"
#include "net/udp_send_batch.hpp"

namespace p2p::coord {

struct CoordinatorLoggers {
  std::shared_ptr<spdlog::logger> coord, ctl;
};

// The registry as the control socket reports it: {"ok":true,"nodes":[{"name","vip",
// "observed","local_endpoints":[..],"nat":{"type","allocation","port_step"},
// "seconds_since_seen","relayed_bytes","relay_dropped"}...],"counters":{"handshakes_refused",
// "malformed","stun_answered","init_unpadded","init_bad_mac1","init_rate_limited",
// "cookies_sent","init_pending_full","internal_error","revoked_removed"},
// "revocation_sequence"} (the CA-signed revocation list in force; 0: none). The control
// socket's answer adds "performance":{"udp_gso","udp_gro"} ("on", "off", "unsupported") and
// "udp":{"received","sent","gso_sends","gro_buffers","send_blocked","send_dropped",
// "send_errors"} (the primary socket's).
nlohmann::json status_to_json(const CoordinatorStatus& status);

class CoordinatorShell final : public CoordinatorEffects {
 public:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kAlternateBatch = 8;  // STUN-only sockets
  static constexpr int kRoundsPerWake = 4;
  // Datagrams handed to the core per in-place receive (udp_gro), and held for grouping.
  static constexpr std::size_t kInPlaceBatch = 1024;

  // Opens the sockets (and the control socket unless `control_socket` is empty). The message
  // says what failed.
  static Expected<std::unique_ptr<CoordinatorShell>, std::string> create(
      boost::asio::io_context& io, const config::CoordinatorConfig& config,
      config::LoadedIdentity identity, CoordinatorLoggers logs);
  ~CoordinatorShell() override;
  CoordinatorShell(const CoordinatorShell&) = delete;
  CoordinatorShell& operator=(const CoordinatorShell&) = delete;

  void start();
  // Closes every socket and the control socket; idempotent.
  void stop();
  // Reads coordinator.yaml again (SIGHUP, `p2pvpnctl reload`) and applies what may change
  // while running (config/reload.hpp); an invalid file changes nothing. Logs and returns the
  // outcome: {"ok":true,"applied":[..],"needs_restart":[..],"summary":..} or
  // {"ok":false,"error":..}.
  nlohmann::json reload();

  // The primary socket's endpoint (with the real port when listen asked for port 0).
  const Endpoint& endpoint() const { return sockets_[0]->socket.local_endpoint(); }
  CoordinatorStatus status() const { return core_->status(Clock::now()); }
  // The TCP main port, when coordinator.yaml has tcp.main.
  const TcpMainPort* tcp_main() const { return tcp_main_.get(); }

  // Reads the configured revocation list file and hands the list to the coordinator: true
  // when a newer list is now in force, false when there is none or it is not newer (logged);
  // an error (logged too) when the file does not load or verify. No file configured: false.
  Expected<bool, std::string> reload_revocation_list();

  // CoordinatorEffects
  void send_udp(wire::stun::ServerSocket from, const Endpoint& to,
                std::span<const std::uint8_t> datagram) override;
  void send_tcp(ConnectionId connection, std::span<const std::uint8_t> datagram) override;
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;

 private:
  struct Socket {
    Socket(io::UdpSocket s, std::size_t batch) : socket(std::move(s)), pool(batch), rx(batch) {}
    io::UdpSocket socket;
    io::PacketPool pool;
    std::vector<io::ReceivedDatagram> rx;
    bool paused = false;                        // not read until its send queue drains
    bool waiting_sendable = false;              // an async_wait_sendable() is pending
    std::vector<io::ReceivedInPlace> in_place;  // sized when the socket has gro on
  };

  CoordinatorShell(boost::asio::io_context& io, CoordinatorLoggers logs);
  void wait(std::size_t index);
  void on_readable(std::size_t index);
  // Reads on: at once when the socket holds datagrams already read, else when readable.
  void resume(std::size_t index);
  // One receive into `s` handed to the core (in place with gro); how many datagrams.
  Expected<std::size_t, io::IoError> receive_round(Socket& s, ServerSocket which);
  // Queues relay_batch_'s datagrams on the socket being read, grouped by destination.
  void drain_relay_batch();
  void after_event();
  void flush_all();
  // Flushes one socket; when the kernel leaves some of its queue, waits for room once.
  void flush(std::size_t index);
  void on_sendable(std::size_t index);
  friend class io::ControlServer;  // open_for() calls on_control()
  void on_control(const nlohmann::json& request, io::ControlServer::Respond respond);

  CoordinatorLoggers log_;
  std::vector<std::unique_ptr<Socket>> sockets_;  // index = wire::stun::ServerSocket
  io::DeadlineTimer timer_;
  std::optional<io::ControlServer> control_;
  std::optional<io::MetricsServer> metrics_;  // coordinator.yaml metrics.listen
  std::unique_ptr<Coordinator> core_;
  std::unique_ptr<TcpMainPort> tcp_main_;      // coordinator.yaml tcp.main
  std::unique_ptr<TcpAssistPort> tcp_assist_;  // coordinator.yaml tcp.assist
  std::string name_;                           // the coordinator certificate's
  Time last_warning_{};
  bool started_ = false, stopped_ = false;
  std::optional<config::RevocationFile> revocation_file_;
  io::DeadlineTimer revocation_timer_;  // the once-a-second look at revocation_file_
  config::CoordinatorConfig config_;    // as running: what reload() compares the file with
  boost::asio::io_context& io_;
  Socket* receiving_ = nullptr;  // the socket whose receive batch the core is handling
  UdpSendBatch relay_batch_{kInPlaceBatch};
};

}  // namespace p2p::coord
