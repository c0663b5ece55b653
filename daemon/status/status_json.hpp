// The daemon's status and NAT report as JSON, and the human rendering of that JSON.
//
// status_to_json() is the one producer of the status document that p2pvpnd answers on its
// control socket and `p2pvpnctl status --json` prints; its schema ("version": 1) is a
// contract documented field by field in contrib/doc/status-json.md: within version 1 fields
// are only ever added, never removed or retyped. report_to_json() does the same for a NAT
// discovery report (`p2pvpnctl netcheck`). render_status() turns a status document back into
// the table `p2pvpnctl status` prints; it reads only the JSON, so it works against any daemon
// that speaks version 1.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/nat/nat_discovery.hpp"
#include "daemon/status/status.hpp"
#include "net/expected.hpp"

namespace p2p::daemon {

inline constexpr int kStatusVersion = 1;

// The status document (see contrib/doc/status-json.md). Never throws.
nlohmann::json status_to_json(const core::NodeStatus& status);

// A NAT discovery report: every field of nat::Report plus "description" (nat::describe()).
nlohmann::json report_to_json(const nat::Report& report);

// The human form of a status document: this node's line, then one aligned row per peer, then
// the drop counters that are not zero. Fails (with the reason) when the document is not a
// version-1 status: a missing or mistyped field, or another version.
Expected<std::string, std::string> render_status(const nlohmann::json& status);

// Human units shared by the renderings: "0 B", "512 B", "1.5 KiB", "3.2 GiB"; "12s ago",
// "5m 3s ago", "2h 4m ago", "3d 1h ago"; "0.42 ms", "3.1 ms", "120 ms".
std::string format_bytes(std::uint64_t bytes);
std::string format_age(double seconds);
std::string format_rtt(double milliseconds);
// Rows as left-aligned columns two spaces apart; the last column is not padded.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace p2p::daemon
