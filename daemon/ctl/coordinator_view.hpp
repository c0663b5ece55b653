// The coordinator's answer to {"cmd":"status"} on its control socket, as `p2pvpnctl status`
// prints it. p2pvpnctl tells the two daemons apart by the answer: the coordinator's carries
// "kind":"coordinator" (coordinator/shell/coordinator_shell.hpp has its fields), p2pvpnd's a
// "version" (contrib/doc/status-json.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "net/expected.hpp"

namespace p2p::ctl {

bool is_coordinator_status(const nlohmann::json& answer);

// "coordinator NAME, listening on A, B, ...; N nodes", one row per registered node (name, vip,
// observed endpoint, NAT, last seen, relayed bytes), then the counters. Fails (with the
// reason) on a missing or mistyped field.
Expected<std::string, std::string> render_coordinator_status(const nlohmann::json& status);

}  // namespace p2p::ctl
