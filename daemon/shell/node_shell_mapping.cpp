// NodeShell's router port mapping: the schedule's timer, the worker's answers, the status
// (with the data path's offloads).
#include "daemon/shell/node_shell.hpp"

namespace p2p::daemon {

core::NodeStatus NodeShell::status_at(Time now) const {
  core::NodeStatus s = node_->status(now);
  s.port_mapping.enabled = mapping_.enabled();
  if (const auto& m = mapping_.mapping()) {
    s.port_mapping.protocol = nat::to_string(m->protocol);
    s.port_mapping.external = m->external;
    s.port_mapping.lease_left = std::max(Duration::zero(), m->expires() - now);
  }
  s.port_mapping.error = mapping_.last_error();
  const auto& tun = tun_.offloads();
  s.performance.tun_offload = !config_.performance.tun_offload ? "off"
                              : tun.vnet_hdr && tun.tso        ? "on"
                                                               : "unsupported";
  s.performance.udp_gso = io::to_string(udp_.gso());
  s.performance.udp_gro = io::to_string(udp_.gro());
  s.performance.workers = static_cast<std::uint32_t>(workers_ ? workers_->threads() : 0);
  return s;
}

void NodeShell::mapping_tick(Time now) {
  if (stopped_ || !mapper_) return;
  if (mapping_.expire(now)) {
    log_.nat->warn("port mapping expired without renewal; peers reach us by punching again");
    node_->set_port_mapping(now, std::nullopt);
  }
  if (mapping_.due(now)) {
    mapping_.started();
    mapper_->request(
        udp_.local_endpoint().port, mapping_protocols_, mapping_.mapping(),
        [this](Expected<nat::Mapping, std::string> r) { on_mapping_result(std::move(r)); });
  }
  mapping_timer_.arm(mapping_.deadline());
}

void NodeShell::on_mapping_result(Expected<nat::Mapping, std::string> result) {
  if (stopped_) return;
  Time now = Clock::now();
  const auto held = mapping_.mapping();
  if (mapping_.on_result(now, result)) {
    log_.nat->warn(
        "port mapping refused or failed: {} (next attempt in {}s; the same failure "
        "is logged again after {} min)",
        result.error(),
        std::chrono::duration_cast<std::chrono::seconds>(mapping_.deadline() - now).count(),
        std::chrono::duration_cast<std::chrono::minutes>(nat::kSameErrorLogInterval).count());
  }
  if (result) {
    const bool fresh = !held || held->external != result->external;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(result->lifetime).count();
    if (fresh) {
      log_.nat->info("port mapping by {}: {} -> port {} (lease {}s)",
                     nat::to_string(result->protocol), result->external.to_string(),
                     result->internal_port, secs);
    } else {
      log_.nat->debug("port mapping by {} renewed (lease {}s)", nat::to_string(result->protocol),
                      secs);
    }
    node_->set_port_mapping(now, result->external);
  }
  mapping_tick(now);
  after_event(now);
}

}  // namespace p2p::daemon
