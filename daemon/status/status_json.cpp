#include "daemon/status/status_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

namespace p2p::daemon {
namespace {

using nlohmann::json;

json endpoint_or_null(const std::optional<Endpoint>& ep) {
  return ep ? json(ep->to_string()) : json(nullptr);
}

template <class T>
json optional_or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// Durations as numbers: seconds to the millisecond, milliseconds to the microsecond.
double seconds(Duration d) {
  return std::round(std::chrono::duration<double, std::milli>(d).count()) / 1e3;
}
double milliseconds(Duration d) {
  return std::round(std::chrono::duration<double, std::micro>(d).count()) / 1e3;
}
json seconds_or_null(const std::optional<Duration>& d) {
  return d ? json(seconds(*d)) : json(nullptr);
}
json milliseconds_or_null(const std::optional<Duration>& d) {
  return d ? json(milliseconds(*d)) : json(nullptr);
}

// A NAT summary's "type". Schema v1 lists no "no NAT, firewalled" there: such a node has
// always been shown as what a peer punches it as, a port-restricted cone. (The report's "type"
// names every type.)
const char* summary_type(wire::NatType t) {
  return wire::to_string(t == wire::NatType::kFirewalled ? wire::NatType::kPortRestrictedCone : t);
}

json nat_to_json(const wire::NatSummary& nat) {
  return {{"type", summary_type(nat.type)},
          {"allocation", wire::to_string(nat.allocation)},
          {"port_step", nat.port_step}};
}

json drops_to_json(const core::DropCounters& d) {
  json out = json::object();
  d.for_each([&](const char* reason, std::uint64_t n) { out[reason] = n; });
  return out;
}

json peer_table_to_json(const core::PeerTableStatus& t) {
  return {{"peers", t.peers},
          {"max_peers", t.max_peers},
          {"unknown_addresses", t.unknown_addresses},
          {"queued_packets", t.queued_packets},
          {"queued_bytes", t.queued_bytes},
          {"evicted_idle", t.evicted_idle},
          {"evicted_full", t.evicted_full}};
}

json peer_to_json(const core::PeerStatus& p) {
  json candidates = json::array();
  for (const auto& c : p.candidates) {
    candidates.push_back({{"endpoint", c.endpoint.to_string()},
                          {"kind", c.kind},
                          {"confirmed", c.confirmed},
                          {"rtt_ms", milliseconds_or_null(c.rtt)},
                          {"transport", c.transport}});
  }
  const bool relayed = p.path == "relay" && !p.relay_reason.empty();
  return {{"name", p.name},
          {"vip", p.vip.to_string()},
          {"state", p.state},
          {"path", p.path},
          {"endpoint", endpoint_or_null(p.endpoint)},
          {"relay_reason", relayed ? json(p.relay_reason) : json(nullptr)},
          {"last_handshake_seconds", seconds_or_null(p.since_handshake)},
          {"rtt_ms", milliseconds_or_null(p.rtt)},
          {"bytes_in", p.bytes_in},
          {"bytes_out", p.bytes_out},
          {"packets_in", p.packets_in},
          {"packets_out", p.packets_out},
          {"nat", nat_to_json(p.nat)},
          {"candidates", std::move(candidates)},
          {"path_kind", p.path_kind.empty() ? json(nullptr) : json(p.path_kind)},
          {"punch_method", p.punch_method},
          {"transport", p.transport.empty() ? json(nullptr) : json(p.transport)}};
}

json port_mapping_to_json(const core::PortMappingStatus& m) {
  return {{"enabled", m.enabled},
          {"protocol", m.protocol.empty() ? json(nullptr) : json(m.protocol)},
          {"external", endpoint_or_null(m.external)},
          {"lease_seconds", seconds_or_null(m.lease_left)},
          {"error", m.error.empty() ? json(nullptr) : json(m.error)}};
}

std::string_view to_string(nat::PortAllocation::Kind k) {
  switch (k) {
    case nat::PortAllocation::Kind::kNotMeasured: return "not-measured";
    case nat::PortAllocation::Kind::kSequential: return "sequential";
    case nat::PortAllocation::Kind::kRandom: return "random";
  }
  return "not-measured";
}

// ---- Rendering: reads a version-1 document; nlohmann throws on a missing or mistyped field,
// which render_status() turns into its error.

// A string field that may be null, shown as "-" when null.
std::string text_or_dash(const json& j, const char* key) {
  const json& v = j.at(key);
  return v.is_null() ? "-" : v.get<std::string>();
}

std::string nat_text(const json& nat, bool over_tcp = false) {
  std::string s = nat.at("type").get<std::string>();
  // All a discovery without answers knows (the JSON keeps its schema value), unless the
  // coordinator answers over TCP: then UDP is what is missing.
  if (s == "UDP blocked")
    return over_tcp ? "UDP blocked (coordinator over TCP)" : "unknown (no answer to NAT discovery)";
  const auto allocation = nat.at("allocation").get<std::string>();
  if (allocation == "sequential")
    s += fmt::format(", sequential ports (step {})", nat.at("port_step").get<int>());
  else if (allocation == "random")
    s += ", random ports";
  return s;
}

// With more than one coordinator, each with its state and RTT (an older daemon has no array).
std::string coordinators_line(const json& node) {
  const auto it = node.find("coordinators");
  if (it == node.end() || it->size() < 2) return "";
  std::string s;
  for (const auto& c : *it) {
    const json& rtt = c.at("rtt_ms");
    s += fmt::format("{}{} {}{}{}{}", s.empty() ? "coordinators: " : "; ",
                     c.at("endpoint").get<std::string>(), c.at("state").get<std::string>(),
                     rtt.is_null() ? "" : ", rtt " + format_rtt(rtt.get<double>()),
                     c.at("relay").get<bool>() ? " (relay)" : "",
                     c.value("transport", std::string("udp")) == "tcp" ? " over TCP" : "");
  }
  return s + "\n";
}

// "port mapping: pcp 11.250.42.21:7400, lease 7193s", or why there is none; empty: disabled.
std::string port_mapping_line(const json& node) {
  auto it = node.find("port_mapping");
  if (it == node.end() || !it->at("enabled").get<bool>()) return "";
  const json& m = *it;
  if (!m.at("protocol").is_null()) {
    const json& lease = m.at("lease_seconds");
    return fmt::format("port mapping: {} {}, lease {}\n", m.at("protocol").get<std::string>(),
                       text_or_dash(m, "external"),
                       lease.is_null() ? "-" : fmt::format("{:.0f}s", lease.get<double>()));
  }
  if (!m.at("error").is_null()) {
    return fmt::format("port mapping: none ({})\n", m.at("error").get<std::string>());
  }
  return "port mapping: asking the router\n";
}

// "offloads: tun_offload off, udp_gro unsupported": the ones not on; empty when all are (or
// from a daemon before they were reported). Then "crypto workers: N beside the loop" if any.
std::string performance_line(const json& node) {
  auto it = node.find("performance");
  if (it == node.end()) return "";
  std::string out;
  for (const char* key : {"tun_offload", "udp_gso", "udp_gro"}) {
    const auto value = it->at(key).get<std::string>();
    if (value != "on") out += fmt::format("{}{} {}", out.empty() ? "" : ", ", key, value);
  }
  out = out.empty() ? "" : "offloads: " + out + "\n";
  // An older daemon has no workers.
  if (const auto workers = it->value("workers", 0); workers > 0)
    out += fmt::format("crypto workers: {} beside the loop\n", workers);
  return out;
}

std::string node_line(const json& node) {
  const auto& coordinator = node.at("coordinator");
  std::string coord = coordinator.at("state").get<std::string>();
  if (!coordinator.at("endpoint").is_null())
    coord = coordinator.at("endpoint").get<std::string>() + " " + coord;
  // An older daemon has no transport.
  const bool over_tcp = coordinator.value("transport", std::string("udp")) == "tcp";
  if (over_tcp) coord += " over TCP";
  const auto mesh = node.at("mesh").get<std::string>();
  const auto slash = mesh.find('/');
  const std::string length = slash == std::string::npos ? "" : mesh.substr(slash);
  return fmt::format("{} {}{}, public {}, NAT {}, coordinator {}\n",
                     node.at("name").get<std::string>(), node.at("vip").get<std::string>(), length,
                     text_or_dash(node, "public_endpoint"), nat_text(node.at("nat"), over_tcp),
                     coord) +
         coordinators_line(node);
}

// "warning: certificate ... expires in 12 days ..." lines; none from a daemon before they were
// reported.
std::string certificate_lines(const json& node) {
  const auto c = node.find("certificate");
  if (c == node.end()) return {};
  std::string out;
  const bool expired = c->at("expired").get<bool>();
  for (const auto& w : c->at("warnings")) {
    const auto text = w.get<std::string>();
    out += (expired && text.find(" expired ") != std::string::npos ? "ERROR: " : "warning: ") +
           text + "\n";
  }
  return out;
}

std::vector<std::string> peer_row(const json& p) {
  std::string path = p.at("path").get<std::string>();
  if (!p.at("relay_reason").is_null()) path += " (" + p.at("relay_reason").get<std::string>() + ")";
  // A direct path a hard-NAT punch found says so (absent from older daemons' documents).
  const auto method = p.value("punch_method", std::string("plain"));
  // A TCP path says so: "direct tcp" (absent or null: UDP, or no direct path).
  const bool tcp = p.contains("transport") && p.at("transport") == "tcp";
  if (path == "direct" && tcp) path += " tcp";
  if (path == "direct" && method != "plain" && method != "none") path += " (" + method + ")";
  const json& handshake = p.at("last_handshake_seconds");
  const json& rtt = p.at("rtt_ms");
  return {p.at("name").get<std::string>(),
          p.at("vip").get<std::string>(),
          p.at("state").get<std::string>(),
          std::move(path),
          text_or_dash(p, "endpoint"),
          handshake.is_null() ? "-" : format_age(handshake.get<double>()),
          rtt.is_null() ? "-" : format_rtt(rtt.get<double>()),
          format_bytes(p.at("bytes_in").get<std::uint64_t>()),
          format_bytes(p.at("bytes_out").get<std::uint64_t>())};
}

std::string drops_line(const json& drops) {
  std::string s;
  for (const auto& [reason, count] : drops.items()) {
    const auto n = count.get<std::uint64_t>();
    if (n == 0) continue;
    s += fmt::format("{}{} {}", s.empty() ? "dropped: " : ", ", n, reason);
  }
  return s.empty() ? s : s + "\n";
}

// "revocation list 7 (3 certificates revoked)\n"; nothing without a list (or from a daemon
// older than the field).
std::string revocation_line(const json& node) {
  auto it = node.find("revocation_list");
  if (it == node.end() || it->at("sequence").is_null()) return "";
  return fmt::format("revocation list {} ({} certificates revoked)\n",
                     it->at("sequence").get<std::uint64_t>(), it->at("revoked").get<std::size_t>());
}

}  // namespace

json status_to_json(const core::NodeStatus& s) {
  json local = json::array();
  for (const auto& ep : s.local_endpoints) local.push_back(ep.to_string());
  json peers = json::array();
  for (const auto& p : s.peers) peers.push_back(peer_to_json(p));
  json coordinators = json::array();
  for (const auto& c : s.coordinators)
    coordinators.push_back({{"endpoint", c.endpoint.to_string()},
                            {"state", c.state},
                            {"rtt_ms", milliseconds_or_null(c.rtt)},
                            {"relay", c.relay},
                            {"transport", c.transport}});
  const Ipv4Prefix mesh{s.vip.network(), s.vip.length};
  json node = {{"name", s.name},
               {"vip", s.vip.address.to_string()},
               {"mesh", mesh.to_string()},
               {"public_endpoint", endpoint_or_null(s.public_endpoint)},
               {"local_endpoints", std::move(local)},
               {"nat", nat_to_json(s.nat)},
               {"coordinator",
                {{"endpoint", endpoint_or_null(s.coordinator)},
                 {"state", s.coordinator_state},
                 {"transport", s.coordinator_transport}}},
               {"coordinators", std::move(coordinators)},
               {"certificate",
                {{"not_after", s.certificates.not_after},
                 {"ca_not_after", s.certificates.ca_not_after},
                 {"expired", s.certificates.expired},
                 {"warnings", s.certificates.warnings}}},
               {"port_mapping", port_mapping_to_json(s.port_mapping)}};
  node["revocation_list"] = {
      {"sequence", s.revocation_sequence == 0 ? json(nullptr) : json(s.revocation_sequence)},
      {"revoked", s.revoked}};
  node["performance"] = {{"tun_offload", s.performance.tun_offload},
                         {"udp_gso", s.performance.udp_gso},
                         {"udp_gro", s.performance.udp_gro},
                         {"workers", s.performance.workers}};
  node["birthday_punch"] = {{"attempts", s.counters.birthday_attempts},
                            {"probes", s.counters.birthday_probes},
                            {"successes", s.counters.birthday_successes}};
  return {{"version", kStatusVersion},
          {"node", std::move(node)},
          {"peers", std::move(peers)},
          {"drops", drops_to_json(s.drops)},
          {"peer_table", peer_table_to_json(s.peer_table)}};
}

json report_to_json(const nat::Report& r) {
  const auto& pa = r.port_allocation;
  return {
      {"server", r.server.to_string()},
      {"udp_blocked", r.udp_blocked},
      {"public_endpoint", endpoint_or_null(r.public_endpoint)},
      {"behind_nat", optional_or_null(r.behind_nat)},
      {"port_preserved", optional_or_null(r.port_preserved)},
      {"server_rfc5780", r.server_rfc5780},
      {"mapping", nat::to_string(r.mapping)},
      {"filtering", nat::to_string(r.filtering)},
      {"hairpinning", optional_or_null(r.hairpinning)},
      {"port_allocation", {{"kind", to_string(pa.kind)}, {"step", pa.step}, {"ports", pa.ports}}},
      {"type", wire::to_string(r.type)},
      {"description", nat::describe(r)}};
}

Expected<std::string, std::string> render_status(const json& status) {
  try {
    const auto version = status.at("version").get<int>();
    if (version != kStatusVersion)
      return fail(fmt::format("status version {} is not supported (this p2pvpnctl reads {})",
                              version, kStatusVersion));
    std::string out = node_line(status.at("node"));
    out += certificate_lines(status.at("node"));
    out += port_mapping_line(status.at("node"));
    out += performance_line(status.at("node"));
    const auto& peers = status.at("peers");
    if (peers.empty()) {
      out += "no peers\n";
    } else {
      std::vector<std::vector<std::string>> rows{
          {"PEER", "VIP", "STATE", "PATH", "ENDPOINT", "HANDSHAKE", "RTT", "IN", "OUT"}};
      for (const auto& p : peers) rows.push_back(peer_row(p));
      out += "\n" + format_table(rows);
    }
    const std::string drops = drops_line(status.at("drops"));
    if (!drops.empty()) out += "\n" + drops;
    out += revocation_line(status.at("node"));
    return out;
  } catch (const json::exception& e) {
    return fail(std::string("malformed status: ") + e.what());
  }
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size())
        out += row[i];
      else
        out += fmt::format("{:<{}}  ", row[i], width[i]);
    }
    out += '\n';
  }
  return out;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  constexpr std::array<const char*, 6> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (v >= 1024 && unit + 1 < kUnits.size()) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

std::string format_age(double seconds) {
  const auto s = static_cast<std::int64_t>(seconds > 0 ? std::min(seconds, 1e12) : 0.0);
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m {}s ago", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h {}m ago", s / 3600, s % 3600 / 60);
  return fmt::format("{}d {}h ago", s / 86400, s % 86400 / 3600);
}

std::string format_rtt(double ms) {
  if (!(ms >= 1)) return fmt::format("{:.2f} ms", ms > 0 ? ms : 0.0);
  if (ms < 100) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.0f} ms", ms);
}

}  // namespace p2p::daemon
