#include "coordinator/shell/coordinator_shell.hpp"

#include <sodium.h>

#include <boost/asio/post.hpp>
#include <chrono>

#include "config/reload.hpp"
#include "coordinator/shell/coordinator_metrics.hpp"

namespace p2p::coord {

namespace asio = boost::asio;
using nlohmann::json;
using wire::stun::ServerSocket;

namespace {

constexpr Duration kWarningInterval = std::chrono::seconds(10);
constexpr Duration kRevocationPoll = std::chrono::seconds(1);

CoordinatorSettings settings_from(const config::CoordinatorConfig& c) {
  CoordinatorSettings s;
  s.node_timeout = c.node_timeout;
  s.relay_enabled = c.relay.enabled;
  s.relay_rate = c.relay.rate_limit;
  s.relay_burst = c.relay.burst;
  s.revoked = c.revoked;
  s.max_nodes = c.limits.max_nodes;
  s.lookup_rate = c.limits.lookup_rate;
  s.lookup_burst = c.limits.lookup_burst;
  s.introduction_rate = c.limits.introduction_rate;
  s.introduction_burst = c.limits.introduction_burst;
  s.stun_rate = c.stun.rate_limit;
  s.stun_burst = c.stun.burst;
  s.stun_sources = c.stun.sources;
  return s;
}

json nat_json(const wire::NatSummary& n) {
  return json{{"type", wire::to_string(n.type)},
              {"allocation", wire::to_string(n.allocation)},
              {"port_step", n.port_step}};
}

}  // namespace

json status_to_json(const CoordinatorStatus& status) {
  json nodes = json::array();
  for (const auto& n : status.nodes) {
    json locals = json::array();
    for (const auto& e : n.local_endpoints) locals.push_back(e.to_string());
    nodes.push_back(json{
        {"name", n.name},
        {"vip", n.vip.to_string()},
        {"observed", n.observed.to_string()},
        {"local_endpoints", std::move(locals)},
        {"nat", nat_json(n.nat)},
        {"seconds_since_seen", std::chrono::duration<double>(n.since_seen).count()},
        {"relayed_bytes", n.relayed_bytes},
        {"relay_dropped", n.relay_dropped},
        {"lookups_refused", n.lookups_refused},
        {"introductions_refused", n.introductions_refused},
        {"carrier", n.tcp ? "tcp" : "udp"},
    });
  }
  return json{{"ok", true},
              {"nodes", std::move(nodes)},
              {"counters",
               {{"handshakes_refused", status.handshakes_refused},
                {"malformed", status.malformed},
                {"stun_answered", status.stun_answered},
                {"stun_rate_limited", status.stun_rate_limited},
                {"registry_full", status.registry_full},
                {"lookups_refused", status.lookups_refused},
                {"introductions_refused", status.introductions_refused},
                {"init_unpadded", status.init_unpadded},
                {"init_bad_mac1", status.init_bad_mac1},
                {"init_rate_limited", status.init_rate_limited},
                {"cookies_sent", status.cookies_sent},
                {"init_pending_full", status.init_pending_full},
                {"internal_error", status.internal_error},
                {"revoked_removed", status.revoked_removed}}},
              {"revocation_sequence", status.revocation_sequence}};
}

Expected<std::unique_ptr<CoordinatorShell>, std::string> CoordinatorShell::create(
    asio::io_context& io, const config::CoordinatorConfig& config, config::LoadedIdentity identity,
    CoordinatorLoggers logs) {
  std::unique_ptr<CoordinatorShell> shell(new CoordinatorShell(io, std::move(logs)));
  // Local endpoints, index = ServerSocket: A1:P1, then A1:P2, A2:P1, A2:P2.
  std::vector<Endpoint> endpoints{config.listen};
  if (config.alternate_address && config.alternate_port) {
    endpoints.push_back(Endpoint{config.listen.address, *config.alternate_port});
    endpoints.push_back(Endpoint{*config.alternate_address, config.listen.port});
    endpoints.push_back(Endpoint{*config.alternate_address, *config.alternate_port});
  }
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    auto batch = i == 0 ? kBatch : kAlternateBatch;
    // Offloads on the primary socket only: the others answer single STUN requests.
    const bool primary = i == 0;
    auto udp = io::UdpSocket::open(io, endpoints[i],
                                   io::UdpOptions{.max_batch = batch,
                                                  .gso = primary && config.performance.udp_gso,
                                                  .gro = primary && config.performance.udp_gro});
    if (!udp) return fail(udp.error().message);
    shell->sockets_.push_back(std::make_unique<Socket>(std::move(*udp), batch));
    auto& s = *shell->sockets_.back();
    if (s.socket.gro() == io::UdpSocket::Offload::kOn) s.in_place.resize(kInPlaceBatch);
  }

  wire::stun::ServerConfig stun_config;
  stun_config.primary = shell->endpoint();
  stun_config.alternate_address = config.alternate_address;
  stun_config.alternate_port = config.alternate_port.value_or(0);
  auto stun = wire::stun::Server::create(stun_config);
  if (!stun) return fail("STUN server: " + stun.error());
  shell->name_ = identity.identity.certificate.name;
  shell->config_ = config;
  shell->core_ = std::make_unique<Coordinator>(std::move(identity.identity), std::move(identity.ca),
                                               settings_from(config), std::move(*stun), *shell,
                                               shell->log_.coord);
  if (!config.revocation_list.empty()) shell->revocation_file_.emplace(config.revocation_list);
  if (!config.control_socket.empty()) {
    auto control = io::ControlServer::open_for(io, config.control_socket, shell.get());
    if (!control) return fail(control.error().message);
    shell->control_.emplace(std::move(*control));
  }
  if (config.metrics.listen) {
    auto metrics = io::MetricsServer::open(io, *config.metrics.listen, [self = shell.get()] {
      return render_coordinator_metrics(self->status());
    });
    if (!metrics) return fail(metrics.error().message);
    shell->log_.coord->info("metrics at http://{}/metrics", metrics->endpoint().to_string());
    shell->metrics_.emplace(std::move(*metrics));
  }
  if (config.tcp.main) {
    TcpPortLimits limits;
    limits.max_connections = config.tcp.max_connections;
    limits.per_source = config.tcp.per_source;
    limits.idle_timeout = config.node_timeout;
    auto* self = shell.get();
    auto port = TcpMainPort::open(
        io, *config.tcp.main, limits,
        TcpMainPort::Handlers{
            [self](ConnectionId id, const Endpoint& from, PacketView frame) {
              if (self->stopped_) return;
              self->core_->on_tcp(Clock::now(), id, from, frame);
              self->after_event();
            },
            [self](ConnectionId id) { self->core_->on_tcp_closed(id); },
            [self](ConnectionId id) { return self->core_->tcp_authenticated(id); }});
    if (!port) return fail(port.error().message);
    shell->tcp_main_ = std::move(*port);
  }
  if (config.tcp.assist) {  // tcp_assist_port.hpp
    auto* self = shell.get();
    auto assist = TcpAssistPort::open(
        io, *config.tcp.assist, [self](const Endpoint& from, std::span<const std::uint8_t> hello) {
          if (self->stopped_) return;
          self->core_->on_assist(Clock::now(), from, hello);
          self->after_event();
        });
    if (!assist) return fail(assist.error().message);
    shell->tcp_assist_ = std::move(*assist);
  }
  return shell;
}

CoordinatorShell::CoordinatorShell(asio::io_context& io, CoordinatorLoggers logs)
    : log_(std::move(logs)),
      timer_(io,
             [this] {
               if (stopped_) return;
               core_->on_tick(Clock::now());
               after_event();
             }),
      revocation_timer_(io,
                        [this] {
                          if (stopped_) return;
                          if (revocation_file_->changed()) (void)reload_revocation_list();
                          revocation_timer_.arm(Clock::now() + kRevocationPoll);
                        }),
      io_(io) {}

CoordinatorShell::~CoordinatorShell() {
  stop();
}

void CoordinatorShell::start() {
  if (started_ || stopped_) return;
  started_ = true;
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    const auto& u = sockets_[i]->socket;
    log_.coord->info("listening on udp={}{}", u.local_endpoint().to_string(),
                     i == 0 ? fmt::format(" (udp_gso {}, udp_gro {})", io::to_string(u.gso()),
                                          io::to_string(u.gro()))
                            : std::string(" (STUN only)"));
    wait(i);
  }
  if (tcp_main_) log_.coord->info("listening on tcp={} (main)", tcp_main_->endpoint().to_string());
  if (tcp_assist_)
    log_.coord->info("listening on tcp={} (assist)", tcp_assist_->endpoint().to_string());
  if (revocation_file_) {
    (void)revocation_file_->changed();  // the stamp of what is read now
    (void)reload_revocation_list();
    revocation_timer_.arm(Clock::now() + kRevocationPoll);
  }
  after_event();
}

Expected<bool, std::string> CoordinatorShell::reload_revocation_list() {
  if (!revocation_file_) return false;
  auto list = revocation_file_->load();
  if (!list) {
    log_.coord->error("revocation list not taken: {}", list.error());
    return fail(list.error());
  }
  if (!*list) {
    log_.coord->info("no revocation list at {} yet", revocation_file_->path().string());
    return false;
  }
  auto taken = core_->set_revocation_list(Clock::now(), **list);
  after_event();
  if (!taken) {
    log_.coord->error("revocation list {} not taken: {}", revocation_file_->path().string(),
                      taken.error().message);
    return fail(taken.error().message);
  }
  if (!*taken)
    log_.coord->warn("revocation list {} not taken: its sequence {} is not newer than {}",
                     revocation_file_->path().string(), (*list)->sequence,
                     core_->revocation_sequence());
  return *taken;
}

void CoordinatorShell::stop() {
  if (stopped_) return;
  stopped_ = true;
  flush_all();
  timer_.arm(Time::max());
  revocation_timer_.arm(Time::max());
  for (auto& s : sockets_) s->socket.close();
  if (control_) control_->close();
  if (metrics_) metrics_->close();
  if (tcp_main_) tcp_main_->close();
  if (tcp_assist_) tcp_assist_->close();
  log_.coord->info("stopped");
}

json CoordinatorShell::reload() {
  auto plan = config::reload_file(config_, config::load_coordinator_config);
  if (!plan) {
    log_.coord->error("reload refused, the running configuration stays: {}", plan.error());
    return json{{"ok", false}, {"error", plan.error()}};
  }
  for (const auto* log : {&log_.coord, &log_.ctl}) config::set_log_level(**log, config_.log.level);
  if (!stopped_) {
    core_->reconfigure(Clock::now(), settings_from(config_));
    after_event();
    (void)reload_revocation_list();  // the signed list's file, read again (logs its outcome)
  }
  config::log_reload(*log_.coord, config_.source, *plan);
  return json{{"ok", true},
              {"applied", plan->applied},
              {"needs_restart", plan->needs_restart},
              {"summary", plan->summary()}};
}

void CoordinatorShell::send_udp(ServerSocket from, const Endpoint& to,
                                std::span<const std::uint8_t> datagram) {
  auto index = static_cast<std::size_t>(from);
  if (index >= sockets_.size()) return;  // the core only names sockets that exist
  Socket& s = *sockets_[index];
  const bool held =
      receiving_ && (receiving_->pool.contains(datagram) || receiving_->socket.holds(datagram));
  if (held && receiving_ == &s) {
    // In the buffers of the batch being read (a relayed datagram): sent when it is done.
    if (relay_batch_.add(to, datagram)) return;
    drain_relay_batch();
    relay_batch_.add(to, datagram);
    return;
  }
  s.socket.queue(to, datagram, held ? io::UdpSocket::Hold::kReference : io::UdpSocket::Hold::kCopy);
}

void CoordinatorShell::drain_relay_batch() {
  if (!receiving_) return;
  io::UdpSocket& socket = receiving_->socket;
  relay_batch_.drain([&](const Endpoint& to, std::span<const std::uint8_t> datagram) {
    socket.queue(to, datagram, io::UdpSocket::Hold::kReference);
  });
}

void CoordinatorShell::send_tcp(ConnectionId connection, std::span<const std::uint8_t> datagram) {
  if (tcp_main_) tcp_main_->send(connection, datagram);
}

void CoordinatorShell::fill_random(std::span<std::uint8_t> out) {
  randombytes_buf(out.data(), out.size());
}

std::uint64_t CoordinatorShell::unix_nanos() {
  auto since = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since).count());
}

void CoordinatorShell::wait(std::size_t index) {
  sockets_[index]->socket.async_wait_readable([this, index](const boost::system::error_code& ec) {
    if (!ec && !stopped_) on_readable(index);
  });
}

void CoordinatorShell::on_readable(std::size_t index) {
  Socket& s = *sockets_[index];
  const auto which = static_cast<ServerSocket>(index);
  // A socket whose send queue the kernel would not take is not read until it drains.
  for (int round = 0; round < kRoundsPerWake && s.socket.queued() == 0; ++round) {
    auto n = receive_round(s, which);
    if (!n) {
      Time now = Clock::now();
      if (now - last_warning_ >= kWarningInterval) {
        last_warning_ = now;
        log_.coord->warn("{}", n.error().message);
      }
      break;
    }
    if (*n == 0) break;
    flush_all();  // what the kernel leaves is copied out of the buffers the next read reuses
    if (s.in_place.empty() && *n < s.rx.size()) break;
  }
  after_event();
  if (stopped_) return;
  if (s.socket.queued() > 0) {
    s.paused = true;  // on_sendable() resumes
  } else {
    resume(index);
  }
}

void CoordinatorShell::resume(std::size_t index) {
  if (!sockets_[index]->socket.has_pending()) return wait(index);
  // Datagrams already read (a coalesced buffer not yet handed out): no readability to wait for.
  asio::post(io_, [this, index] {
    if (!stopped_) on_readable(index);
  });
}

Expected<std::size_t, io::IoError> CoordinatorShell::receive_round(Socket& s, ServerSocket which) {
  const bool in_place = !s.in_place.empty();
  auto n = in_place ? s.socket.receive_in_place(s.in_place) : s.socket.receive_batch(s.pool, s.rx);
  if (!n || *n == 0) return n;
  const Time now = Clock::now();
  receiving_ = &s;
  for (std::size_t i = 0; i < *n; ++i) {
    if (in_place) {
      auto bytes = s.in_place[i].bytes;
      core_->on_udp(now, which, s.in_place[i].from,
                    PacketView(bytes.data(), bytes.size(), 0, bytes.size()));
    } else {
      core_->on_udp(now, which, s.rx[i].from, s.pool.view(i, s.rx[i].length));
    }
  }
  drain_relay_batch();
  receiving_ = nullptr;
  return n;
}

void CoordinatorShell::flush_all() {
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    if (sockets_[i]->socket.queued() > 0) flush(i);
  }
}

void CoordinatorShell::flush(std::size_t index) {
  Socket& s = *sockets_[index];
  s.socket.flush();
  if (s.socket.queued() == 0 || s.waiting_sendable || stopped_) return;
  s.waiting_sendable = true;
  s.socket.async_wait_sendable([this, index](const boost::system::error_code& ec) {
    sockets_[index]->waiting_sendable = false;
    if (!ec && !stopped_) on_sendable(index);
  });
}

void CoordinatorShell::on_sendable(std::size_t index) {
  Socket& s = *sockets_[index];
  flush(index);
  if (s.socket.queued() > 0 || !s.paused) return;
  s.paused = false;
  resume(index);
}

void CoordinatorShell::after_event() {
  if (stopped_) return;
  flush_all();
  timer_.arm(core_->next_deadline());
}

void CoordinatorShell::on_control(const json& request, io::ControlServer::Respond respond) {
  auto cmd = request.find("cmd");
  if (cmd != request.end() && *cmd == "status") {
    json status = status_to_json(core_->status(Clock::now()));
    status["kind"] = "coordinator";  // p2pvpnctl status tells the two daemons apart by it
    status["name"] = name_;
    json listen = json::array();
    for (const auto& s : sockets_) listen.push_back(s->socket.local_endpoint().to_string());
    status["listen"] = std::move(listen);
    const auto& primary = sockets_[0]->socket;
    status["performance"] =
        json{{"udp_gso", io::to_string(primary.gso())}, {"udp_gro", io::to_string(primary.gro())}};
    const auto& u = primary.stats();
    status["udp"] = json{{"received", u.received},         {"sent", u.sent},
                         {"gso_sends", u.gso_sends},       {"gro_buffers", u.gro_buffers},
                         {"send_blocked", u.send_blocked}, {"send_dropped", u.send_dropped},
                         {"send_errors", u.send_errors}};
    if (tcp_main_) {
      const auto& t = tcp_main_->stats();
      status["tcp"] = json{{"main", tcp_main_->endpoint().to_string()},
                           {"connections", tcp_main_->connections()},
                           {"accepted", t.accepted},
                           {"refused_full", t.refused_full},
                           {"refused_source", t.refused_source},
                           {"closed_unauthenticated", t.closed_unauthenticated},
                           {"closed_idle", t.closed_idle},
                           {"closed_by_peer", t.closed_by_peer},
                           {"send_dropped", t.send_dropped}};
    }
    respond(status);
  } else if (cmd != request.end() && *cmd == "reload") {
    respond(reload());
  } else {
    respond(json{{"ok", false}, {"error", "unknown command"}});
  }
}

}  // namespace p2p::coord
