#include "daemon/shell/node_shell.hpp"

#include <sodium.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "config/reload.hpp"
#include "crypto/armor.hpp"
#include "daemon/status/node_metrics.hpp"
#include "daemon/status/status_json.hpp"
#include "net/asio/socket_address.hpp"
#include "net/offload.hpp"
#include "tun/netlink.hpp"

namespace p2p::daemon {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr Duration kWarningInterval = std::chrono::seconds(10);

std::string endpoints_text(const std::vector<Endpoint>& endpoints) {
  std::string out = "[";
  for (const auto& e : endpoints) out += (out.size() > 1 ? " " : "") + e.to_string();
  return out + "]";
}

core::NodeSettings node_settings(const config::MeshConfig& c) {
  core::NodeSettings s;
  s.coordinators = c.coordinators;
  s.coordinator_tcp = c.coordinator_tcp;
  s.keepalive = c.keepalive;
  s.punch_enabled = c.punch.enabled;
  s.punch_timeout = c.punch.timeout;
  s.port_prediction = c.punch.port_prediction;
  const auto& b = c.punch.birthday;
  s.birthday = {b.enabled, static_cast<int>(b.sockets), static_cast<int>(b.probes_per_second),
                static_cast<int>(b.max_probes)};
  s.tcp_assist = c.punch.tcp_assist;
  s.relay_allowed = c.relay.allowed;
  s.revoked = c.revoked;
  for (const auto& p : c.peers) {
    core::PeerPolicy policy;
    if (p.vip) {
      policy.match = *p.vip;
    } else {
      policy.match = p.name.value_or("");
    }
    policy.force = !p.force                                ? core::Force::kAuto
                   : *p.force == config::ForcedPath::relay ? core::Force::kRelay
                                                           : core::Force::kDirect;
    policy.transport = static_cast<core::TransportPolicy>(p.transport);
    s.policies.push_back(std::move(policy));
  }
  const auto& l = c.limits;
  s.limits = {l.max_peers,
              l.peer_idle_timeout,
              l.unknown_address_ttl,
              l.unknown_addresses,
              static_cast<double>(l.lookups_per_second),
              static_cast<double>(l.lookup_burst),
              l.queued_packets,
              l.queued_bytes};
  return s;
}

json refusal(const std::string& message) {
  return json{{"ok", false}, {"error", message}};
}

// A control request's "target": a virtual IP or a certificate name.
std::optional<std::variant<Ipv4, std::string>> target_of(const json& request) {
  auto it = request.find("target");
  if (it == request.end() || !it->is_string()) return std::nullopt;
  const auto& text = it->get_ref<const std::string&>();
  if (text.empty()) return std::nullopt;
  if (auto vip = Ipv4::parse(text)) return std::variant<Ipv4, std::string>(*vip);
  return std::variant<Ipv4, std::string>(text);
}

// A refusal that asking again will not change ("final": p2pvpnctl ping stops at once).
json final_refusal(const std::string& message) {
  json out = refusal(message);
  out["final"] = true;
  return out;
}

// Why a ping or connect to `target` can never be answered, if so: this node itself, the
// coordinator (its name or virtual IP), or an address outside the mesh prefix. Such a target
// never reaches the Node (no peer row).
std::optional<std::string> unreachable_target(const crypto::Certificate& self,
                                              const std::optional<crypto::Certificate>& coordinator,
                                              const std::variant<Ipv4, std::string>& target) {
  const auto* name = std::get_if<std::string>(&target);
  const auto* vip_given = std::get_if<Ipv4>(&target);
  if (coordinator && ((name && *name == coordinator->name) ||
                      (vip_given && *vip_given == coordinator->vip.address)))
    return (name ? *name : vip_given->to_string()) + " is the coordinator (" + coordinator->name +
           ", " + coordinator->vip.address.to_string() + "), not a peer: it carries no tunnel";
  if (name) {
    if (*name == self.name) return *name + " is this node (" + self.vip.address.to_string() + ")";
    return std::nullopt;
  }
  const Ipv4 vip = std::get<Ipv4>(target);
  if (vip == self.vip.address) return vip.to_string() + " is this node (" + self.name + ")";
  if (!self.vip.contains(vip))
    return vip.to_string() + " is outside the mesh " +
           Ipv4Prefix{self.vip.network(), self.vip.length}.to_string();
  return std::nullopt;
}

}  // namespace

Expected<std::unique_ptr<NodeShell>, std::string> NodeShell::create(
    asio::io_context& io, const config::MeshConfig& config, config::LoadedIdentity identity,
    NodeLoggers logs) {
  const auto& cert = identity.identity.certificate;
  // The control socket first: a daemon that cannot have it (another p2pvpnd holds it) exits
  // before it raises a TUN. Nothing reads it before the io_context runs, by then `target` is set.
  auto target = std::make_shared<NodeShell*>(nullptr);
  auto control = io::ControlServer::open(
      io, config.control_socket, [target](const json& request, io::ControlServer::Respond respond) {
        if (*target == nullptr) return respond(json{{"ok", false}, {"error", "starting"}});
        (*target)->on_control(request, std::move(respond));
      });
  if (!control) return fail(control.error().message);
  auto tun = tun::TunDevice::open(config.tun.name, config.tun.mtu, cert.vip, cert.vip6,
                                  config.performance.tun_offload);
  if (!tun) return fail(tun.error().message);
  const auto& off = tun->offloads();
  logs.tun->info("interface={} up vip={} mtu={} vnet_hdr={} tso={} uso={}", tun->name(),
                 cert.vip.to_string(), config.tun.mtu, off.vnet_hdr, off.tso, off.uso);
  io::UdpOptions udp_options;
  udp_options.gso = config.performance.udp_gso;
  udp_options.gro = config.performance.udp_gro;
  auto udp =
      io::UdpSocket::open(io, Endpoint{config.listen.address, config.listen.port}, udp_options);
  if (!udp) return fail(udp.error().message);
  logs.node->info("udp={} gso={} gro={}", udp->local_endpoint().to_string(),
                  io::to_string(udp->gso()), io::to_string(udp->gro()));
  std::unique_ptr<NodeShell> shell(new NodeShell(io, config, std::move(identity), std::move(logs),
                                                 std::move(*tun), std::move(*udp)));
  *target = shell.get();
  shell->control_.emplace(std::move(*control));
  if (config.metrics.listen) {
    auto metrics = io::MetricsServer::open(io, *config.metrics.listen, [self = shell.get()] {
      return render_node_metrics(self->status(), self->tun_write_drops_);
    });
    if (!metrics) return fail(metrics.error().message);
    shell->log_.node->info("metrics at http://{}/metrics", metrics->endpoint().to_string());
    shell->metrics_.emplace(std::move(*metrics));
  }
  return shell;
}

NodeShell::NodeShell(asio::io_context& io, const config::MeshConfig& config,
                     config::LoadedIdentity identity, NodeLoggers logs, tun::TunDevice tun,
                     io::UdpSocket udp)
    : io_(io),
      log_(std::move(logs)),
      listen_address_(config.listen.address),
      tun_(std::move(tun)),
      udp_(std::move(udp)),
      tun_watch_(io, tun_.native_handle()),
      node_timer_(io, [this] { on_node_timer(); }),
      discovery_timer_(io, [this] { on_discovery_timer(); }),
      housekeeping_timer_(io),
      network_timer_(io, [this] { on_network_settled(); }),

      discovery_server_(config.discovery.server),
      discovery_(
          nat::SchedulerSettings{.interval = config.discovery.interval, .software = "p2pvpnd"},
          static_cast<nat::SchedulerEffects&>(*this),
          [](std::span<std::uint8_t> out) { randombytes_buf(out.data(), out.size()); },
          [this](Time now, const nat::Report& report) {
            node_->set_nat(now, nat::summarize(report));
          },
          log_.nat),
      mapping_(config.port_mapping.enabled),
      mapping_timer_(io, [this] { mapping_tick(Clock::now()); }) {
  config_ = config;
  for (std::size_t i = 0; i < kBatch; ++i) {
    tun_slots_[i] = tun::PacketSlot{tun_pool_.packet(i), io::PacketPool::kPacketCapacity, 0};
  }
  node_ = std::make_unique<core::Node>(std::move(identity.identity), std::move(identity.ca),
                                       node_settings(config), *this, log_.node);
  if (!config.revocation_list.empty()) revocation_file_.emplace(config.revocation_list);
  for (const auto& name : config.port_mapping.protocols) {
    if (auto p = nat::parse_mapping_protocol(name)) mapping_protocols_.push_back(*p);
  }
  if (config.port_mapping.enabled) mapper_.emplace(io, *log_.nat);
  open_punch_sockets(config);
  open_workers(config);
  node_->set_stun_sink([this](Time now, const Endpoint& from, std::span<const std::uint8_t> d) {
    // Only feeds the run; a run this completes is finished in after_event(), outside the Node.
    discovery_.on_stun(now, from, d);
  });
}

NodeShell::~NodeShell() {
  stop();
}

void NodeShell::start() {
  if (started_ || stopped_) return;
  started_ = true;
  Time now = Clock::now();
  log_.node->info("listening on udp={} tun={}", udp_.local_endpoint().to_string(), tun_.name());
  open_address_monitor();  // before reading the addresses, so no change slips in between
  local_endpoints_ = gather_local_endpoints();
  node_->set_local_endpoints(now, local_endpoints_);
  (void)reload_revocation_list();
  node_->start(now);
  log_certificate_lifetimes(now);
  discovery_.request(now, std::nullopt);
  mapping_tick(now);
  after_event(now);
  wait_udp();
  wait_tun();
  housekeeping_timer_.expires_after(kHousekeeping);
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

void NodeShell::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (started_) {
    node_->stop(Clock::now());  // Goodbye to the coordinator
    udp_.flush();
  }
  discovery_.stop();  // waiting netchecks are refused
  mapping_timer_.arm(Time::max());
  if (mapper_) mapper_->stop(mapping_.mapping());  // deletes it at the gateway, bounded
  node_timer_.arm(Time::max());
  discovery_timer_.arm(Time::max());
  network_timer_.arm(Time::max());
  housekeeping_timer_.cancel();
  monitor_watch_.reset();
  monitor_.reset();
  tun_watch_.release();
  tun_.close();
  udp_.close();
  if (punch_) punch_->close_all();
  if (control_) control_->close();
  if (metrics_) metrics_->close();
  if (tcp_paths_) tcp_paths_->close_all();
  const auto& st = udp_.stats();
  log_.node->info(
      "stopped: udp received={} sent={} send_errors={} send_dropped={} tun_write_drops={} "
      "tun_oversize_drops={} udp_send_blocked={} tun_offload_drops={} udp_gso_sends={} "
      "udp_gro_buffers={} tun_gro_frames={}",
      st.received, st.sent, st.send_errors, st.send_dropped, tun_write_drops_,
      tun_.oversize_drops(), st.send_blocked, tun_offload_drops_, st.gso_sends, st.gro_buffers,
      tun_gro_frames_);
}

json NodeShell::reload() {
  auto plan = config::reload_file(config_, config::load_mesh_config);
  if (!plan) {
    log_.node->error("reload refused, the running configuration stays: {}", plan.error());
    return refusal(plan.error());
  }
  for (const auto* log : {&log_.node, &log_.tun, &log_.ctl, &log_.nat})
    config::set_log_level(**log, config_.log.level);
  if (!stopped_) {
    Time now = Clock::now();
    node_->reconfigure(now, node_settings(config_));
    after_event(now);
    (void)reload_revocation_list();  // the signed list's file, read again (logs its outcome)
  }
  config::log_reload(*log_.node, config_.source, *plan);
  return json{{"ok", true},
              {"applied", plan->applied},
              {"needs_restart", plan->needs_restart},
              {"summary", plan->summary()}};
}

// ---------------------------------------------------------------------------------------
// Effects

void NodeShell::send_udp(const Endpoint& to, std::span<const std::uint8_t> datagram) {
  // A datagram in the pool of the current batch was built in place and stays untouched until
  // the flush at the end of the batch: send it from there.
  auto hold = batch_pool_ && batch_pool_->contains(datagram) ? io::UdpSocket::Hold::kReference
                                                             : io::UdpSocket::Hold::kCopy;
  before_queue(hold);
  udp_.queue(to, datagram, hold);
}

void NodeShell::send(const Endpoint& to, std::span<const std::uint8_t> datagram) {
  before_queue(io::UdpSocket::Hold::kCopy);
  udp_.queue(to, datagram, io::UdpSocket::Hold::kCopy);
}

void NodeShell::fill_random(std::span<std::uint8_t> out) {
  randombytes_buf(out.data(), out.size());
}

std::uint64_t NodeShell::unix_nanos() {
  auto since = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since).count());
}

void NodeShell::revocation_list_accepted(std::span<const std::uint8_t> encoded) {
  if (!revocation_file_) return;
  auto ok = crypto::write_armored_file(
      revocation_file_->path(), crypto::armor(crypto::kRevocationListLabel, encoded), 0644, true);
  if (!ok) log_.node->warn("cannot keep the revocation list: {}", ok.error().message);
}

void NodeShell::public_endpoint_moved(const Endpoint& was, const Endpoint& now_at) {
  // A new public endpoint may mean another NAT; discovery re-runs in after_event().
  log_.nat->info("public endpoint moved {} -> {}, re-running NAT discovery", was.to_string(),
                 now_at.to_string());
  public_moved_ = true;
}

void NodeShell::warn_limited(const char* what, const std::string& detail) {
  Time now = Clock::now();
  if (now - last_warning_ < kWarningInterval) return;
  last_warning_ = now;
  log_.node->warn("{}: {} (further warnings suppressed for {}s)", what, detail,
                  std::chrono::duration_cast<std::chrono::seconds>(kWarningInterval).count());
}

void NodeShell::on_node_timer() {
  if (stopped_) return;
  Time now = Clock::now();
  node_->on_tick(now);
  after_event(now);
}

void NodeShell::after_event(Time now) {
  if (stopped_) return;
  if (discovery_.next_deadline() <= now) discovery_.on_tick(now);
  if (public_moved_) {
    public_moved_ = false;
    discovery_.on_public_endpoint_moved(now);
  }
  if (node_->registered() != registered_) {
    registered_ = !registered_;
    discovery_.on_registered(now, registered_);
  }
  if (udp_.queued() > 0) flush_udp();
  node_timer_.arm(node_->next_deadline());
  discovery_timer_.arm(discovery_.next_deadline());
}

// ---------------------------------------------------------------------------------------
// Local endpoints and NAT discovery

std::vector<Endpoint> NodeShell::gather_local_endpoints() {
  const std::uint16_t port = udp_.local_endpoint().port;
  if (!io::is_unspecified(listen_address_)) return {Endpoint{listen_address_, port}};
  auto addresses = tun::list_local_addresses(tun_.name());
  if (!addresses) {
    warn_limited("listing local addresses failed", addresses.error().message);
    return local_endpoints_;
  }
  std::vector<Endpoint> out;
  for (const auto& a : *addresses) {
    if (udp_.family() == AF_INET && !std::holds_alternative<Ipv4>(a.address)) continue;
    out.push_back(Endpoint{a.address, port});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool NodeShell::reread_local_endpoints() {
  auto endpoints = gather_local_endpoints();
  if (endpoints == local_endpoints_) return false;
  log_.nat->info("local endpoints changed: {} -> {}", endpoints_text(local_endpoints_),
                 endpoints_text(endpoints));
  local_endpoints_ = std::move(endpoints);
  return true;
}

bool NodeShell::refresh_local_endpoints(Time now) {
  if (!reread_local_endpoints()) return false;
  node_->set_local_endpoints(now, local_endpoints_);
  return true;
}

void NodeShell::housekeeping() {
  if (stopped_) return;
  Time now = Clock::now();
  // Without netlink news, poll the addresses.
  if (!monitor_ && refresh_local_endpoints(now)) discovery_.on_network_changed(now);
  log_certificate_lifetimes(now);
  after_event(now);
  housekeeping_timer_.expires_after(kHousekeeping);
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

void NodeShell::open_address_monitor() {
  auto monitor = tun::AddressMonitor::open(tun_.name());
  if (!monitor) {
    log_.nat->warn("no network change notifications ({}); polling addresses every {}s",
                   monitor.error().message,
                   std::chrono::duration_cast<std::chrono::seconds>(kHousekeeping).count());
    return;
  }
  monitor_.emplace(std::move(*monitor));
  monitor_watch_.emplace(io_, monitor_->native_handle());
  wait_address_monitor();
}

void NodeShell::wait_address_monitor() {
  monitor_watch_->async_wait_readable([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) on_address_monitor_readable();
  });
}

void NodeShell::on_address_monitor_readable() {
  auto changes = monitor_->drain();
  if (!changes) {
    log_.nat->warn("network change notifications failed ({}); polling addresses every {}s",
                   changes.error().message,
                   std::chrono::duration_cast<std::chrono::seconds>(kHousekeeping).count());
    monitor_watch_.reset();
    monitor_.reset();
  }
  if (changes && *changes > 0) log_.nat->debug("network news: {} change(s)", *changes);
  if (!changes || *changes > 0) {
    network_timer_.arm(network_settle_.on_news(Clock::now()));
  }
  if (monitor_) wait_address_monitor();
}

void NodeShell::on_network_settled() {
  if (stopped_) return;
  Time now = Clock::now();
  if (!network_settle_.due(now)) return network_timer_.arm(network_settle_.deadline());
  // Even with the same addresses (say, another default route) the NAT in front may differ.
  reread_local_endpoints();
  node_->network_changed(now, local_endpoints_);
  log_.nat->info("network changed, re-running NAT discovery");
  discovery_.on_network_changed(now);
  mapping_.on_network_changed(now);
  mapping_tick(now);
  after_event(now);
}

std::optional<Endpoint> NodeShell::own_discovery_server() const {
  return discovery_server_ ? discovery_server_ : node_->coordinator();
}

std::optional<Endpoint> NodeShell::own_server() {
  return own_discovery_server();
}

void NodeShell::on_discovery_timer() {
  if (stopped_) return;
  Time now = Clock::now();
  discovery_.on_tick(now);
  after_event(now);
}

// ---------------------------------------------------------------------------------------
// Control socket

void NodeShell::on_control(const json& request, io::ControlServer::Respond respond) {
  if (stopped_) return respond(refusal("daemon stopping"));
  Time now = Clock::now();
  auto cmd_it = request.find("cmd");
  const std::string cmd =
      cmd_it != request.end() && cmd_it->is_string() ? cmd_it->get<std::string>() : "";
  if (cmd == "status") {
    respond(status_to_json(status_at(now)));
  } else if (cmd == "ping" || cmd == "connect") {
    auto target = target_of(request);
    if (!target) return respond(refusal("missing \"target\": a peer name or virtual IP"));
    if (auto why =
            unreachable_target(node_->certificate(), node_->coordinator_certificate(), *target))
      return respond(final_refusal(*why));
    if (cmd == "connect") {
      node_->connect(now, *target);
      respond(json{{"ok", true}});
    } else {
      node_->ping(
          now, *target,
          [this, respond, target = *target](std::optional<Duration> rtt, std::string path) {
            if (rtt) {
              double ms = std::chrono::duration<double, std::milli>(*rtt).count();
              respond(json{{"ok", true}, {"rtt_ms", ms}, {"path", path}});
              return;
            }
            if (path == "not connected" && !stopped_) {
              // Start connecting (outside the Node's call), so that the next ping
              // finds a session.
              asio::post(io_, [this, target] {
                if (stopped_) return;
                Time t = Clock::now();
                node_->connect(t, target);
                after_event(t);
              });
              path += " (connecting now)";
            }
            respond(path.starts_with(core::kUnknownPeer) ? final_refusal(path) : refusal(path));
          });
    }
  } else if (cmd == "netcheck") {
    handle_netcheck(now, request, std::move(respond));
  } else if (cmd == "reload") {
    respond(reload());
  } else {
    respond(refusal("unknown command"));
  }
  after_event(now);
}

void NodeShell::handle_netcheck(Time now, const json& request, io::ControlServer::Respond respond) {
  if (refresh_local_endpoints(now)) discovery_.on_network_changed(now);
  std::optional<Endpoint> server;
  if (auto it = request.find("server"); it != request.end()) {
    auto parsed =
        it->is_string() ? Endpoint::parse(it->get_ref<const std::string&>()) : std::nullopt;
    if (!parsed || io::is_unspecified(parsed->address) || parsed->port == 0)
      return respond(refusal("\"server\" must be a STUN server's IP:PORT or [IPv6]:PORT"));
    if (!parsed->is_v4() && udp_.family() == AF_INET)
      return respond(refusal(fmt::format("cannot reach {} from this daemon's {} socket",
                                         parsed->to_string(), udp_.local_endpoint().to_string())));
    // Asking our own discovery server is asking for the node's own discovery.
    if (parsed != own_discovery_server()) server = parsed;
  }
  auto done = [respond = std::move(respond)](const Expected<nat::Report, std::string>& r) {
    respond(r ? json{{"ok", true}, {"report", report_to_json(*r)}} : refusal(r.error()));
  };
  discovery_.request(now, server, std::move(done));
}

}  // namespace p2p::daemon
