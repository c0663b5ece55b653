#include "config/reload.hpp"

#include <spdlog/spdlog.h>

#include <tuple>

namespace p2p::config {
namespace {

// Collects the changed keys of one reload: runtime ones are adopted into `running`.
class Merge {
 public:
  template <class T>
  void adopt(const char* key, T& running, const T& next, bool changed) {
    if (!changed) return;
    running = next;
    plan_.applied.push_back(key);
  }
  void keep(const char* key, bool changed) {
    if (changed) plan_.needs_restart.push_back(key);
  }
  ReloadPlan done() { return std::move(plan_); }

 private:
  ReloadPlan plan_;
};

bool same(const MeshConfig::Peer& a, const MeshConfig::Peer& b) {
  return a.name == b.name && a.vip == b.vip && a.force == b.force && a.transport == b.transport;
}

bool same(const std::vector<MeshConfig::Peer>& a, const std::vector<MeshConfig::Peer>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}

}  // namespace

std::string ReloadPlan::summary() const {
  if (applied.empty() && needs_restart.empty()) return "no changes";
  auto list = [](const std::vector<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
    return out;
  };
  std::string out;
  if (!applied.empty()) out = "applied: " + list(applied);
  if (!needs_restart.empty())
    out +=
        (out.empty() ? "" : "; ") + std::string("needs restart (ignored): ") + list(needs_restart);
  return out;
}

ReloadPlan merge_reload(MeshConfig& running, const MeshConfig& next) {
  Merge m;
  const auto& r = running;
  const auto& n = next;
  m.adopt("log", running.log, n.log, r.log.level != n.log.level);
  m.adopt("revoked", running.revoked, n.revoked, r.revoked != n.revoked);
  m.adopt("peers", running.peers, n.peers, !same(r.peers, n.peers));
  m.adopt("limits", running.limits, n.limits, !(r.limits == n.limits));
  m.keep("node.key", r.node.key != n.node.key);
  m.keep("node.cert", r.node.cert != n.node.cert);
  m.keep("ca", r.ca != n.ca);
  m.keep("coordinators",
         r.coordinators != n.coordinators || r.coordinator_tcp != n.coordinator_tcp);
  m.keep("tun", r.tun.name != n.tun.name || r.tun.mtu != n.tun.mtu);
  m.keep("listen", r.listen.port != n.listen.port || r.listen.address != n.listen.address);
  m.keep("control_socket", r.control_socket != n.control_socket);
  m.keep("keepalive", r.keepalive != n.keepalive);
  m.keep("punch", std::tie(r.punch.enabled, r.punch.timeout, r.punch.port_prediction) !=
                          std::tie(n.punch.enabled, n.punch.timeout, n.punch.port_prediction) ||
                      !(r.punch.birthday == n.punch.birthday));
  m.keep("relay", r.relay.allowed != n.relay.allowed);
  m.keep("discovery",
         r.discovery.server != n.discovery.server || r.discovery.interval != n.discovery.interval);
  m.keep("metrics", r.metrics.listen != n.metrics.listen);
  m.keep("performance", !(r.performance == n.performance));
  return m.done();
}

ReloadPlan merge_reload(CoordinatorConfig& running, const CoordinatorConfig& next) {
  Merge m;
  const auto& r = running;
  const auto& n = next;
  auto relay = [](const CoordinatorConfig::Relay& x) {
    return std::tie(x.enabled, x.rate_limit, x.burst);
  };
  auto limits = [](const CoordinatorConfig::Limits& x) {
    return std::tie(x.max_nodes, x.lookup_rate, x.lookup_burst, x.introduction_rate,
                    x.introduction_burst);
  };
  auto stun = [](const CoordinatorConfig::Stun& x) {
    return std::tie(x.rate_limit, x.burst, x.sources);
  };
  m.adopt("log", running.log, n.log, r.log.level != n.log.level);
  m.adopt("revoked", running.revoked, n.revoked, r.revoked != n.revoked);
  m.adopt("relay", running.relay, n.relay, relay(r.relay) != relay(n.relay));
  m.adopt("limits", running.limits, n.limits, limits(r.limits) != limits(n.limits));
  m.keep("key", r.key != n.key);
  m.keep("cert", r.cert != n.cert);
  m.keep("ca", r.ca != n.ca);
  m.keep("listen", r.listen != n.listen);
  m.keep("alternate_address", r.alternate_address != n.alternate_address);
  m.keep("alternate_port", r.alternate_port != n.alternate_port);
  m.keep("node_timeout", r.node_timeout != n.node_timeout);
  m.keep("stun", stun(r.stun) != stun(n.stun));
  m.keep("control_socket", r.control_socket != n.control_socket);
  m.keep("metrics", r.metrics.listen != n.metrics.listen);
  m.keep("performance", !(r.performance == n.performance));
  return m.done();
}

void log_reload(spdlog::logger& logger, const std::filesystem::path& file, const ReloadPlan& plan) {
  logger.log(plan.needs_restart.empty() ? spdlog::level::info : spdlog::level::warn,
             "reloaded {}: {}", file.string(), plan.summary());
}

void set_log_level(spdlog::logger& logger, LogLevel level) {
  switch (level) {
    case LogLevel::trace: logger.set_level(spdlog::level::trace); break;
    case LogLevel::debug: logger.set_level(spdlog::level::debug); break;
    case LogLevel::info: logger.set_level(spdlog::level::info); break;
    case LogLevel::warn: logger.set_level(spdlog::level::warn); break;
    case LogLevel::error: logger.set_level(spdlog::level::err); break;
    case LogLevel::off: logger.set_level(spdlog::level::off); break;
  }
}

}  // namespace p2p::config
