// NodeShell: p2pvpnd's Boost.Asio shell around the I/O-free core::Node.
//
// It owns the OS side: the TUN device, the node's one UDP socket (coordinator, peers and NAT
// discovery all share it), the timers and the control socket, and feeds the Node:
//   UDP readable -> recvmmsg a batch into the UDP pool -> node.on_udp() per datagram
//   TUN readable -> read_batch into the TUN pool      -> node.on_tun() per packet
//   every send_udp() of a batch is queued (by reference when it lies in the pool, i.e. was
//   encrypted in place) and leaves in one sendmmsg() at the end of the batch (runs to one
//   peer as one UDP_SEGMENT message each); write_tun() of a packet decrypted in place in the
//   UDP batch's pool is gathered (offload::Coalescer) and written at the end of the batch, a
//   flow's consecutive TCP segments as one super-segment when the TUN has TSO; any other
//   write_tun() writes at once. Nothing blocks: what the socket does not take stays queued until it
//   is writable, and meanwhile the TUN is not read (back-pressure to the sending applications).
//   `now` is read once per batch. After each event the one node timer is re-armed to
//   node.next_deadline() (a no-op when unchanged).
// Beside the Node it runs NAT discovery over the same socket: nat::DiscoveryScheduler
// (daemon/nat/discovery_scheduler.hpp) decides what runs when; the shell only feeds it, with
// Clock::now(), and arms one timer (discovery_timer_) to its next_deadline() after each event:
//   STUN datagram (Node's stun sink)  -> on_stun()      (finished in after_event(), outside Node)
//   start()                           -> request(own)   the node's own run
//   network settled (netlink news about addresses, links or default routes, settled by
//   core::NetworkSettle; or, without netlink, changed addresses at kHousekeeping)
//                                     -> on_network_changed()
//   Node: public endpoint moved       -> on_public_endpoint_moved()
//   Node: registered or not any more  -> on_registered()
//   `netcheck` [server]               -> request(own or that server, respond)
// The scheduler re-runs the node's own discovery every discovery.interval too; the own result
// goes to node.set_nat(), a netcheck's to the waiting control request. Its queue, joining and
// "busy" refusals are the scheduler's.
// Local endpoints (interface addresses + our UDP port, never the TUN's) are refreshed every
// kHousekeeping; then too, the certificates' lifetimes are checked: within 30 days of the end
// of the node's certificate or the CA's a warning is logged at start and once a day, an
// expired one an error at once (and in status).
//
// Control socket requests (one JSON object per line):
//   {"cmd":"status"}                     -> status_to_json(node.status())
//   {"cmd":"ping","target":NAME|VIP}     -> {"ok":true,"rtt_ms":..,"path":..} | {"ok":false,..}
//   {"cmd":"netcheck"}                   -> after a fresh discovery: {"ok":true,"report":{..}}
//   {"cmd":"netcheck","server":"IP:PORT"} -> the same, against that STUN server
//   {"cmd":"connect","target":NAME|VIP}  -> {"ok":true}
//   {"cmd":"reload"}                     -> reload(): {"ok":true,"applied":[..],
//                                           "needs_restart":[..]} | {"ok":false,"error":..}
//   anything else                        -> {"ok":false,"error":"unknown command"}
//
// Metrics (mesh.yaml metrics.listen): GET /metrics -> render_node_metrics(node.status()).
//
// Revocation list (mesh.yaml revocation_list): read at start; every newer list the Node takes
// (pushed by a coordinator) is written back there, so a restarted node keeps what it learnt
// and cannot be rolled back. The file is not watched: coordinators distribute lists;
// reload_revocation_list() reads it again (what a configuration reload calls).
// Router port mapping (mesh.yaml port_mapping, node_shell_mapping.cpp): nat::MappingSchedule
// says when to ask, PortMapper's worker thread asks (PCP, NAT-PMP, UPnP IGD), the answer comes
// back as an event on this thread and goes to node.set_port_mapping(); one timer
// (mapping_timer_) for renewals and retries; a settled network change asks again at once;
// stop() deletes the mapping at the gateway.
//
// Threading: everything runs on the one thread that runs the io_context.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/mesh_config.hpp"
#include "config/revocation_file.hpp"
#include "config/startup.hpp"
#include "crypto/crypto_workers.hpp"
#include "daemon/core/network_settle.hpp"
#include "daemon/core/node.hpp"
#include "daemon/nat/discovery_scheduler.hpp"
#include "daemon/nat/port_mapping.hpp"
#include "daemon/shell/coordinator_stream.hpp"
#include "daemon/shell/port_mapper.hpp"
#include "daemon/shell/punch_sockets.hpp"
#include "daemon/shell/tcp_paths.hpp"
#include "net/asio/control_server.hpp"
#include "net/asio/loop.hpp"
#include "net/asio/metrics_server.hpp"
#include "net/asio/packet_pool.hpp"
#include "net/asio/udp_socket.hpp"
#include "net/expected.hpp"
#include "net/offload.hpp"
#include "tun/address_monitor.hpp"
#include "tun/tun_device.hpp"

namespace p2p::daemon {

struct NodeLoggers {
  std::shared_ptr<spdlog::logger> node, tun, ctl, nat;
};

class NodeShell final : public core::NodeEffects, private nat::SchedulerEffects {
 public:
  static constexpr std::size_t kBatch = 64;
  static constexpr int kRoundsPerWake = 4;  // batches read per readiness before yielding
  static constexpr Duration kHousekeeping = std::chrono::seconds(30);

  // Opens the TUN (named and sized from the config, addressed with our certificate's virtual
  // IP prefixes), the UDP socket and the control socket. Nothing is read or sent before
  // start(). The message says what failed and, where known, what to do.
  static Expected<std::unique_ptr<NodeShell>, std::string> create(boost::asio::io_context& io,
                                                                  const config::MeshConfig& config,
                                                                  config::LoadedIdentity identity,
                                                                  NodeLoggers logs);
  ~NodeShell() override;
  NodeShell(const NodeShell&) = delete;
  NodeShell& operator=(const NodeShell&) = delete;

  // Registers with the coordinator, starts NAT discovery and begins reading.
  void start();
  // Says goodbye to the coordinator, flushes, closes the TUN (the interface disappears), the
  // socket and the control socket (its file is removed). Idempotent. Pending handlers then
  // complete as cancelled, so the io_context runs out of work.
  void stop();
  // Reads mesh.yaml again (SIGHUP, `p2pvpnctl reload`) and applies what may change while
  // running (config/reload.hpp) without touching a session; an invalid file changes nothing.
  // Logs and returns the outcome, as the control socket's answer.
  nlohmann::json reload();

  const Endpoint& udp_endpoint() const { return udp_.local_endpoint(); }
  const std::string& tun_name() const { return tun_.name(); }
  core::NodeStatus status() const { return status_at(Clock::now()); }

  // Reads the configured revocation list file and hands it to the Node: true when taken,
  // false when there is none or it is not newer than the list held; an error (logged) when
  // it does not load or verify. No file configured: false.
  Expected<bool, std::string> reload_revocation_list();

  // core::NodeEffects
  void send_udp(const Endpoint& to, std::span<const std::uint8_t> datagram) override;
  void write_tun(std::span<const std::uint8_t> packet) override;
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;
  void public_endpoint_moved(const Endpoint& was, const Endpoint& now_at) override;
  void revocation_list_accepted(std::span<const std::uint8_t> encoded) override;
  // The coordinator link's TCP carrier (node_shell_stream.cpp, coordinator_stream.hpp).
  void coordinator_stream_open(std::uint32_t slot, const Endpoint& to) override;
  void coordinator_stream_send(std::uint32_t slot, std::span<const std::uint8_t> datagram) override;
  void coordinator_stream_close(std::uint32_t slot) override;
  core::PunchSocketEffects* punch_sockets() override { return punch_.get(); }
  // TCP paths (node_shell_tcp.cpp, tcp_paths.hpp): only with mesh.yaml punch.tcp_assist.
  core::TcpPunchEffects* tcp_punch() override;
  void send_stream(std::uint32_t stream, std::span<const std::uint8_t> datagram) override;
  void close_stream(std::uint32_t stream) override;
  // Sealing on the workers (node_shell_workers.cpp); nullptr without workers or batch.
  crypto::CryptoJobs* crypto_jobs() override;

 private:
  NodeShell(boost::asio::io_context& io, const config::MeshConfig& config,
            config::LoadedIdentity identity, NodeLoggers logs, tun::TunDevice tun,
            io::UdpSocket udp);

  // nat::SchedulerEffects: discovery probes leave through the node's socket; the own runs ask
  // mesh.yaml's discovery.server, else the coordinator in use.
  void send(const Endpoint& to, std::span<const std::uint8_t> datagram) override;
  std::optional<Endpoint> own_server() override;
  std::vector<Endpoint> local_endpoints() override { return local_endpoints_; }

  void wait_udp();
  void wait_tun();
  void on_udp_readable();
  void on_tun_readable();
  // Read the TUN for one wake; return when they first read something (Time{}: nothing).
  // Frames (offloads on): each a virtio-net header and a packet or super-segment, split here
  // into wire-sized packets in the pool. Packets: one plain packet per read, straight into it.
  Time read_tun_frames();
  Time read_tun_packets();
  // Flushes the UDP queue; when the kernel leaves some of it, waits for room once.
  void flush_udp();
  // Room again: flush, and once the queue is empty resume reading the TUN.
  void on_udp_sendable();
  void on_node_timer();
  void on_discovery_timer();
  void housekeeping();
  void open_address_monitor();
  void wait_address_monitor();
  void on_address_monitor_readable();
  void on_network_settled();
  // After every event: finish a completed discovery, hand the scheduler what the Node
  // reported (a moved public endpoint, registration), flush the send queue, re-arm the timers.
  void after_event(Time now);

  std::vector<Endpoint> gather_local_endpoints();
  // Re-reads the interface addresses into local_endpoints_; true when they changed.
  bool reread_local_endpoints();
  // The same, handing changed addresses to the Node.
  bool refresh_local_endpoints(Time now);
  std::optional<Endpoint> own_discovery_server() const;
  void handle_netcheck(Time now, const nlohmann::json& request, io::ControlServer::Respond respond);

  friend class io::ControlServer;  // open_for() calls on_control()
  void on_control(const nlohmann::json& request, io::ControlServer::Respond respond);
  void warn_limited(const char* what, const std::string& detail);

  // Port mapping (node_shell_mapping.cpp).
  core::NodeStatus status_at(Time now) const;  // the Node's, with the port mapping's
  void mapping_tick(Time now);
  void on_mapping_result(Expected<nat::Mapping, std::string> result);

  boost::asio::io_context& io_;
  NodeLoggers log_;
  IpAddress listen_address_;
  tun::TunDevice tun_;
  io::UdpSocket udp_;
  io::PacketPool udp_pool_{kBatch};
  io::PacketPool tun_pool_{kBatch};
  std::array<io::ReceivedDatagram, kBatch> received_{};
  std::array<tun::PacketSlot, kBatch> tun_slots_{};
  const io::PacketPool* batch_pool_ = nullptr;  // the pool of the batch being processed
  io::FdWatch tun_watch_;
  io::DeadlineTimer node_timer_;
  io::DeadlineTimer discovery_timer_;
  boost::asio::steady_timer housekeeping_timer_;
  // Netlink change notifications; without them (not permitted, or failed) the addresses
  // are polled every kHousekeeping instead.
  std::optional<tun::AddressMonitor> monitor_;
  std::optional<io::FdWatch> monitor_watch_;
  io::DeadlineTimer network_timer_;
  core::NetworkSettle network_settle_;  // when to act on a burst of netlink news
  std::optional<io::ControlServer> control_;
  std::optional<io::MetricsServer> metrics_;  // mesh.yaml metrics.listen
  std::unique_ptr<core::Node> node_;

  std::vector<Endpoint> local_endpoints_;
  std::optional<Endpoint> discovery_server_;  // mesh.yaml discovery.server
  nat::DiscoveryScheduler discovery_;
  bool public_moved_ = false;  // public_endpoint_moved() since the last after_event()
  bool registered_ = false;    // node.registered() as last told to discovery_

  nat::MappingSchedule mapping_;
  std::vector<nat::MappingProtocol> mapping_protocols_;
  io::DeadlineTimer mapping_timer_;
  std::optional<PortMapper> mapper_;  // when port_mapping.enabled

  std::uint64_t tun_write_drops_ = 0;
  Time last_warning_{};
  bool started_ = false, stopped_ = false;
  std::optional<config::RevocationFile> revocation_file_;  // mesh.yaml revocation_list
  config::MeshConfig config_;  // as running: what reload() compares the file with
  // Certificate lifetimes: logged at start, daily, and at once when one expires.
  void log_certificate_lifetimes(Time now);
  std::optional<Time> lifetimes_logged_;
  bool expiry_logged_ = false;
  bool tun_paused_ = false;        // the TUN is not read until the UDP queue drains
  bool waiting_sendable_ = false;  // an async_wait_sendable() is pending
  // One read from a TUN with offloads: virtio-net header + up to 64 KiB.
  std::vector<std::uint8_t> tun_frame_ =
      std::vector<std::uint8_t>(offload::kVirtioNetHdrSize + kMaxPacket);
  std::uint64_t tun_offload_drops_ = 0;  // frames whose header did not add up
  // Toward the TUN (with TSO): the packets of one UDP batch, coalesced, written at its end.
  void flush_tun();
  offload::Coalescer tun_gro_;
  std::uint64_t tun_gro_frames_ = 0;             // writes that carried more than one segment
  std::unique_ptr<CoordinatorStreams> streams_;  // made at the first coordinator_stream_open()
  // Birthday punching's extra sockets (punch_sockets.cpp); none when punch.birthday is off.
  void open_punch_sockets(const config::MeshConfig& config);
  std::unique_ptr<PunchSockets> punch_;
  std::unique_ptr<TcpPaths> tcp_paths_;  // made at the first TCP punch
  // Sealing and opening on worker threads (node_shell_workers.cpp, crypto/crypto_workers.hpp;
  // mesh.yaml performance.workers). A batch runs between begin_batch() and end_batch(): its
  // Data datagrams are opened ahead (on_udp_readable), what the Node seals into its pool is
  // sealed at end_batch(), before the flush; and before anything could make the UDP queue
  // flush in between (before_queue()).
  void open_workers(const config::MeshConfig& config);
  void begin_batch(io::PacketPool& pool);
  void run_crypto();
  void end_batch();
  void before_queue(io::UdpSocket::Hold hold);
  std::unique_ptr<crypto::CryptoWorkers> workers_;  // none: everything on the loop
  crypto::CryptoJobs crypto_jobs_{4 * kBatch};
  std::array<std::optional<std::size_t>, kBatch> opened_{};  // per datagram: its open job
};

}  // namespace p2p::daemon
