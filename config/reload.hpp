// What a reload (SIGHUP, `p2pvpnctl reload`) may change in a running daemon, and what only a
// restart can.
//
//   mesh.yaml         applied: log, revoked, peers, limits
//                     needs restart: node.key, node.cert, ca, coordinators, tun, listen,
//                     control_socket, keepalive, punch, relay, discovery, metrics
//   coordinator.yaml  applied: log, revoked, relay, limits
//                     needs restart: key, cert, ca, listen, alternate_address, alternate_port,
//                     node_timeout, stun, control_socket, metrics
//
// merge_reload() compares the running configuration with a freshly loaded (hence valid) one:
// the keys that may change are copied into `running`, the others are left as they run and
// named in needs_restart, so that every later reload names them again until the restart.
// An invalid file never gets this far: its ConfigError (file, line and key) is the answer.
#pragma once

#include <string>
#include <vector>

#include "config/common.hpp"
#include "config/config_error.hpp"
#include "config/coordinator_config.hpp"
#include "config/mesh_config.hpp"
#include "net/expected.hpp"

namespace spdlog {
class logger;
}

namespace p2p::config {

struct ReloadPlan {
  std::vector<std::string> applied;        // keys that changed and now apply
  std::vector<std::string> needs_restart;  // keys that changed and are ignored until a restart
  // "applied: log, peers; needs restart (ignored): listen" or "no changes".
  std::string summary() const;
};

ReloadPlan merge_reload(MeshConfig& running, const MeshConfig& next);
ReloadPlan merge_reload(CoordinatorConfig& running, const CoordinatorConfig& next);

// Reads `running.source` again with `load` (load_mesh_config or load_coordinator_config) and
// merges it into `running`; an invalid file leaves `running` as it was and the answer is its
// ConfigError's message (file, line and key).
template <class Config, class Load>
Expected<ReloadPlan, std::string> reload_file(Config& running, Load load) {
  Config next;
  try {
    next = load(running.source);
  } catch (const ConfigError& e) {
    return fail(std::string(e.what()));
  }
  return merge_reload(running, next);
}

// "reloaded FILE: <summary>", a warning when some key needs a restart.
void log_reload(spdlog::logger& logger, const std::filesystem::path& file, const ReloadPlan& plan);

// Sets `logger`'s level (make_logger() uses it too).
void set_log_level(spdlog::logger& logger, LogLevel level);

}  // namespace p2p::config
