// The status JSON contract (contrib/doc/status-json.md) and its human rendering: NodeStatus
// values built by hand, checked field by field, type by type; the exact key sets are pinned so
// that a change to the schema is a deliberate one, and every key must be documented.
#include "daemon/status/status_json.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace p2p::daemon {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

Endpoint ep(const char* s) {
  return Endpoint::parse(s).value();
}
Ipv4 ip(const char* s) {
  return Ipv4::parse(s).value();
}

core::PeerStatus direct_peer() {
  core::PeerStatus p;
  p.name = "laptop";
  p.vip = ip("10.77.0.3");
  p.state = "connected";
  p.path = "direct";
  p.endpoint = ep("198.51.100.7:5000");
  p.relay_reason = "punching timed out";  // stale reason: must not show while direct
  p.since_handshake = 12'400ms;
  p.rtt = 3'123'456ns;
  p.bytes_in = 1'258'291;  // 1.2 MiB
  p.bytes_out = 348'160;   // 340.0 KiB
  p.packets_in = 900;
  p.packets_out = 400;
  p.path_kind = "public";
  p.nat = {wire::NatType::kPortRestrictedCone, wire::PortAllocation::kPreserving, 0};
  p.candidates = {{ep("192.168.1.20:5000"), "lan", false, std::nullopt},
                  {ep("198.51.100.7:5000"), "public", true, 3'100us}};
  return p;
}

core::PeerStatus relayed_peer() {
  core::PeerStatus p;
  p.name = "phone";
  p.vip = ip("10.77.0.40");
  p.state = "connected";
  p.path = "relay";
  p.endpoint = ep("203.0.113.10:7400");
  p.relay_reason = "both symmetric";
  p.since_handshake = 65s;
  p.bytes_in = 10;
  p.bytes_out = 0;
  p.nat = {wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
  return p;
}

core::PeerStatus connecting_peer() {
  core::PeerStatus p;
  p.name = "10.77.0.9";  // no certificate yet: the core names it by its address
  p.vip = ip("10.77.0.9");
  p.state = "requesting";
  p.path = "none";
  p.relay_reason = "connecting";
  return p;
}

core::NodeStatus sample_status() {
  core::NodeStatus s;
  s.name = "home-pc";
  s.vip = Ipv4Prefix::parse("10.77.0.2/24").value();
  s.public_endpoint = ep("203.0.113.5:41641");
  s.local_endpoints = {ep("192.168.1.10:41641"), ep("10.0.0.5:41641")};
  s.nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 2};
  s.coordinator = ep("203.0.113.10:7400");
  s.coordinator_state = "registered";
  s.performance = {"on", "on", "on", 0};
  s.peers = {direct_peer(), relayed_peer(), connecting_peer()};
  s.drops.malformed = 3;
  s.drops.bad_source = 1;
  return s;
}

std::set<std::string> keys(const json& j) {
  std::set<std::string> k;
  for (const auto& [key, value] : j.items()) k.insert(key);
  return k;
}

TEST(StatusJson, TopLevelAndNode) {
  const json j = status_to_json(sample_status());
  EXPECT_EQ(keys(j), (std::set<std::string>{"version", "node", "peers", "drops", "peer_table"}));
  ASSERT_TRUE(j["version"].is_number_integer());
  EXPECT_EQ(j["version"], 1);

  const json& n = j["node"];
  EXPECT_EQ(keys(n), (std::set<std::string>{"name", "vip", "mesh", "public_endpoint",
                                            "local_endpoints", "nat", "coordinator",
                                            "revocation_list", "certificate", "coordinators",
                                            "port_mapping", "performance", "birthday_punch"}));
  EXPECT_EQ(keys(n["birthday_punch"]), (std::set<std::string>{"attempts", "probes", "successes"}));
  EXPECT_EQ(keys(n["certificate"]),
            (std::set<std::string>{"not_after", "ca_not_after", "expired", "warnings"}));
  EXPECT_EQ(n["name"], "home-pc");
  EXPECT_EQ(n["vip"], "10.77.0.2");
  EXPECT_EQ(n["mesh"], "10.77.0.0/24");
  EXPECT_EQ(n["public_endpoint"], "203.0.113.5:41641");
  EXPECT_EQ(n["local_endpoints"], json({"192.168.1.10:41641", "10.0.0.5:41641"}));
  EXPECT_EQ(n["nat"],
            json({{"type", "symmetric"}, {"allocation", "sequential"}, {"port_step", 2}}));
  EXPECT_EQ(
      n["coordinator"],
      json({{"endpoint", "203.0.113.10:7400"}, {"state", "registered"}, {"transport", "udp"}}));
  EXPECT_EQ(n["revocation_list"], json({{"sequence", nullptr}, {"revoked", 0}}));
}

// The CA-signed revocation list the node took: its sequence in the JSON and one line of text;
// without one, neither a number nor a line.
TEST(StatusJson, RevocationList) {
  auto s = sample_status();
  const auto none = render_status(status_to_json(s));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->find("revocation list"), std::string::npos);
  s.revocation_sequence = 7;
  s.revoked = 3;
  const json j = status_to_json(s);
  EXPECT_EQ(j["node"]["revocation_list"], json({{"sequence", 7}, {"revoked", 3}}));
  const auto text = render_status(j);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("revocation list 7 (3 certificates revoked)\n"), std::string::npos) << *text;
}

// The offloads: all three in the JSON; a text line only for those not on.
TEST(StatusJson, PerformanceOffloads) {
  auto s = sample_status();
  EXPECT_EQ(status_to_json(s)["node"]["performance"],
            json({{"tun_offload", "on"}, {"udp_gso", "on"}, {"udp_gro", "on"}, {"workers", 0}}));
  EXPECT_EQ(render_status(status_to_json(s))->find("offloads"), std::string::npos);
  EXPECT_EQ(render_status(status_to_json(s))->find("workers"), std::string::npos);
  s.performance = {"off", "on", "unsupported", 2};
  const json j = status_to_json(s);
  EXPECT_EQ(
      j["node"]["performance"],
      json(
          {{"tun_offload", "off"}, {"udp_gso", "on"}, {"udp_gro", "unsupported"}, {"workers", 2}}));
  const auto text = render_status(j);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("offloads: tun_offload off, udp_gro unsupported\n"), std::string::npos)
      << *text;
  EXPECT_NE(text->find("crypto workers: 2 beside the loop\n"), std::string::npos) << *text;
  EXPECT_EQ(core::NodeStatus{}.performance.udp_gso, "off");
  EXPECT_EQ(core::NodeStatus{}.performance.workers, 0u);
  // A daemon from before workers: no line, no error.
  json old = j;
  old["node"]["performance"].erase("workers");
  EXPECT_EQ(render_status(old)->find("workers"), std::string::npos);
}

TEST(StatusJson, UnknownValuesAreNullNotAbsent) {
  core::NodeStatus s;
  s.name = "fresh";
  s.vip = Ipv4Prefix::parse("10.1.2.3/16").value();
  s.coordinator_state = "connecting";
  const json j = status_to_json(s);
  const json& n = j["node"];
  ASSERT_TRUE(n.contains("public_endpoint"));
  EXPECT_TRUE(n["public_endpoint"].is_null());
  EXPECT_TRUE(n["coordinator"]["endpoint"].is_null());
  EXPECT_EQ(n["mesh"], "10.1.0.0/16");
  EXPECT_TRUE(n["local_endpoints"].is_array());
  EXPECT_TRUE(n["local_endpoints"].empty());
  EXPECT_EQ(n["nat"]["type"], "unknown");
  EXPECT_EQ(n["nat"]["allocation"], "unknown");
  ASSERT_TRUE(j["peers"].is_array());
  EXPECT_TRUE(j["peers"].empty());
  for (const auto& [reason, count] : j["drops"].items()) {
    EXPECT_TRUE(count.is_number_unsigned()) << reason;
    EXPECT_EQ(count, 0) << reason;
  }
}

TEST(StatusJson, PortMapping) {
  auto s = sample_status();
  s.port_mapping = {true, "pcp", ep("11.250.42.21:41641"), Duration(std::chrono::seconds(7193)),
                    ""};
  json m = status_to_json(s)["node"]["port_mapping"];
  EXPECT_EQ(keys(m),
            (std::set<std::string>{"enabled", "protocol", "external", "lease_seconds", "error"}));
  EXPECT_EQ(m["enabled"], true);
  EXPECT_EQ(m["protocol"], "pcp");
  EXPECT_EQ(m["external"], "11.250.42.21:41641");
  EXPECT_DOUBLE_EQ(m["lease_seconds"].get<double>(), 7193.0);
  EXPECT_TRUE(m["error"].is_null());
  EXPECT_NE(
      render_status(status_to_json(s))->find("port mapping: pcp 11.250.42.21:41641, lease 7193s"),
      std::string::npos);

  s.port_mapping = {true, "", std::nullopt, std::nullopt, "no gateway answered"};
  m = status_to_json(s)["node"]["port_mapping"];
  EXPECT_TRUE(m["protocol"].is_null());
  EXPECT_TRUE(m["external"].is_null());
  EXPECT_EQ(m["error"], "no gateway answered");
  EXPECT_NE(render_status(status_to_json(s))->find("port mapping: none (no gateway answered)"),
            std::string::npos);

  s.port_mapping = {};
  EXPECT_EQ(render_status(status_to_json(s))->find("port mapping"), std::string::npos);
}

TEST(StatusJson, DirectPeer) {
  const json p = status_to_json(sample_status())["peers"][0];
  EXPECT_EQ(keys(p),
            (std::set<std::string>{"name", "vip", "state", "path", "endpoint", "relay_reason",
                                   "last_handshake_seconds", "rtt_ms", "bytes_in", "bytes_out",
                                   "packets_in", "packets_out", "nat", "candidates", "path_kind",
                                   "punch_method", "transport"}));
  EXPECT_EQ(p["name"], "laptop");
  EXPECT_EQ(p["punch_method"], "plain");
  EXPECT_EQ(p["vip"], "10.77.0.3");
  EXPECT_EQ(p["state"], "connected");
  EXPECT_EQ(p["path_kind"], "public");
  EXPECT_EQ(p["path"], "direct");
  EXPECT_EQ(p["endpoint"], "198.51.100.7:5000");
  EXPECT_TRUE(p["relay_reason"].is_null());
  // Seconds to the millisecond, milliseconds to the microsecond, as JSON numbers.
  ASSERT_TRUE(p["last_handshake_seconds"].is_number_float());
  EXPECT_DOUBLE_EQ(p["last_handshake_seconds"].get<double>(), 12.4);
  ASSERT_TRUE(p["rtt_ms"].is_number_float());
  EXPECT_DOUBLE_EQ(p["rtt_ms"].get<double>(), 3.123);
  EXPECT_EQ(p["bytes_in"], 1'258'291u);
  EXPECT_EQ(p["bytes_out"], 348'160u);
  EXPECT_EQ(p["packets_in"], 900u);
  EXPECT_EQ(p["packets_out"], 400u);
  EXPECT_TRUE(p["bytes_in"].is_number_unsigned());
  EXPECT_EQ(p["nat"]["type"], "port-restricted cone");
  EXPECT_EQ(p["nat"]["allocation"], "port-preserving");

  const json& c = p["candidates"];
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(keys(c[0]),
            (std::set<std::string>{"endpoint", "kind", "confirmed", "rtt_ms", "transport"}));
  EXPECT_EQ(c[0]["endpoint"], "192.168.1.20:5000");
  EXPECT_EQ(c[0]["kind"], "lan");
  EXPECT_EQ(c[0]["confirmed"], false);
  EXPECT_TRUE(c[0]["rtt_ms"].is_null());
  EXPECT_EQ(c[1]["confirmed"], true);
  EXPECT_DOUBLE_EQ(c[1]["rtt_ms"].get<double>(), 3.1);
}

TEST(StatusJson, RelayedAndConnectingPeers) {
  const json peers = status_to_json(sample_status())["peers"];
  const json& relayed = peers[1];
  EXPECT_EQ(relayed["path"], "relay");
  EXPECT_EQ(relayed["relay_reason"], "both symmetric");
  EXPECT_DOUBLE_EQ(relayed["last_handshake_seconds"].get<double>(), 65.0);
  EXPECT_TRUE(relayed["rtt_ms"].is_null());
  EXPECT_TRUE(relayed["candidates"].is_array());

  const json& connecting = peers[2];
  EXPECT_EQ(connecting["path"], "none");
  EXPECT_EQ(connecting["state"], "requesting");
  EXPECT_TRUE(connecting["endpoint"].is_null());
  EXPECT_TRUE(connecting["relay_reason"].is_null());  // only a relayed peer has a reason
  EXPECT_TRUE(connecting["last_handshake_seconds"].is_null());
  EXPECT_EQ(connecting["bytes_in"], 0u);
}

TEST(StatusJson, DurationsRoundToTheDocumentedPrecision) {
  core::NodeStatus s = sample_status();
  s.peers[0].since_handshake = 1'234'567'891ns;
  s.peers[0].rtt = 987'654ns;
  const json p = status_to_json(s)["peers"][0];
  EXPECT_DOUBLE_EQ(p["last_handshake_seconds"].get<double>(), 1.235);
  EXPECT_DOUBLE_EQ(p["rtt_ms"].get<double>(), 0.988);
}

TEST(StatusJson, Drops) {
  const json d = status_to_json(sample_status())["drops"];
  EXPECT_EQ(keys(d),
            (std::set<std::string>{
                "malformed", "unknown_index", "decrypt_failed", "bad_source", "no_route",
                "queue_full", "handshake_failed", "unknown_address", "lookup_rate",
                "peer_table_full", "queue_budget", "handshake_unpadded", "handshake_bad_mac1",
                "handshake_rate_limited", "handshake_replay", "cookies_sent", "internal_error"}));
  EXPECT_EQ(d["malformed"], 3u);
  EXPECT_EQ(d["bad_source"], 1u);
  EXPECT_EQ(d["no_route"], 0u);
}

// The bounded state behind the peers: counts only (the negative cache is never listed).
TEST(StatusJson, PeerTable) {
  core::NodeStatus s = sample_status();
  s.peer_table = {2, 4096, 9000, 3, 4200, 5, 1};
  s.drops.unknown_address = 7;
  const json j = status_to_json(s);
  EXPECT_EQ(j["peer_table"], json({{"peers", 2},
                                   {"max_peers", 4096},
                                   {"unknown_addresses", 9000},
                                   {"queued_packets", 3},
                                   {"queued_bytes", 4200},
                                   {"evicted_idle", 5},
                                   {"evicted_full", 1}}));
  EXPECT_EQ(j["drops"]["unknown_address"], 7u);
}

nat::Report symmetric_report() {
  nat::Report r;
  r.server = ep("203.0.113.10:7400");
  r.public_endpoint = ep("203.0.113.5:40001");
  r.behind_nat = true;
  r.port_preserved = false;
  r.server_rfc5780 = true;
  r.mapping = nat::Behaviour::kAddressAndPortDependent;
  r.filtering = nat::Behaviour::kAddressAndPortDependent;
  r.hairpinning = false;
  r.port_allocation = nat::analyse_ports({40001, 40002, 40003});
  r.type = nat::NatType::kSymmetric;
  return r;
}

TEST(ReportJson, EveryFieldOfTheReport) {
  const nat::Report r = symmetric_report();
  const json j = report_to_json(r);
  EXPECT_EQ(keys(j),
            (std::set<std::string>{"server", "udp_blocked", "public_endpoint", "behind_nat",
                                   "port_preserved", "server_rfc5780", "mapping", "filtering",
                                   "hairpinning", "port_allocation", "type", "description"}));
  EXPECT_EQ(j["server"], "203.0.113.10:7400");
  EXPECT_EQ(j["udp_blocked"], false);
  EXPECT_EQ(j["public_endpoint"], "203.0.113.5:40001");
  EXPECT_EQ(j["behind_nat"], true);
  EXPECT_EQ(j["port_preserved"], false);
  EXPECT_EQ(j["server_rfc5780"], true);
  EXPECT_EQ(j["mapping"], "address-and-port-dependent");
  EXPECT_EQ(j["filtering"], "address-and-port-dependent");
  EXPECT_EQ(j["hairpinning"], false);
  EXPECT_EQ(j["type"], "symmetric");
  EXPECT_EQ(j["port_allocation"],
            json({{"kind", "sequential"}, {"step", 1}, {"ports", {40001, 40002, 40003}}}));
  EXPECT_EQ(j["description"], nat::describe(r));
}

TEST(ReportJson, BlockedUdpLeavesTheUnknownsNull) {
  nat::Report r;
  r.udp_blocked = true;
  r.type = nat::NatType::kUdpBlocked;
  const json j = report_to_json(r);
  EXPECT_EQ(j["udp_blocked"], true);
  EXPECT_EQ(j["type"], "UDP blocked");
  for (const char* k : {"public_endpoint", "behind_nat", "port_preserved", "hairpinning"})
    EXPECT_TRUE(j[k].is_null()) << k;
  EXPECT_EQ(j["mapping"], "unknown");
  EXPECT_EQ(j["port_allocation"]["kind"], "not-measured");
  EXPECT_TRUE(j["port_allocation"]["ports"].empty());
}

TEST(StatusJson, AFirewallWithoutNatKeepsItsVersionOneNames) {
  // The summary names the v1 list has (a firewall without NAT shows as the port-restricted
  // cone it is punched as); the report names it exactly, in its JSON and its description.
  core::NodeStatus s = sample_status();
  s.nat = {wire::NatType::kFirewalled, wire::PortAllocation::kPreserving, 0};
  s.peers = {direct_peer()};
  s.peers[0].nat.type = wire::NatType::kFirewalled;
  const json j = status_to_json(s);
  EXPECT_EQ(j["node"]["nat"]["type"], "port-restricted cone");
  EXPECT_EQ(j["peers"][0]["nat"]["type"], "port-restricted cone");
  auto text = render_status(j);
  ASSERT_TRUE(text.has_value()) << text.error();
  EXPECT_NE(text->find("NAT port-restricted cone, coordinator"), std::string::npos) << *text;

  nat::Report r;
  r.behind_nat = false;
  r.filtering = nat::Behaviour::kAddressDependent;
  r.type = nat::NatType::kFirewalled;
  const json report = report_to_json(r);
  EXPECT_EQ(report["type"], "no NAT, firewalled");
  const auto description = report["description"].get<std::string>();
  EXPECT_NE(description.find("NAT type:        no NAT, firewalled\n"), std::string::npos)
      << description;
}

// Every key the producers emit appears, as `key` or `parent.key`, in the documentation.
void collect_keys(const json& j, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      out.insert(key);
      collect_keys(value, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_keys(v, out);
  }
}

TEST(StatusJson, EveryKeyIsDocumented) {
  std::ifstream in(std::string(P2P_TESTDATA_DIR) + "/../../contrib/doc/status-json.md");
  ASSERT_TRUE(in) << "contrib/doc/status-json.md is missing";
  std::stringstream doc;
  doc << in.rdbuf();
  std::set<std::string> all;
  collect_keys(status_to_json(sample_status()), all);
  collect_keys(report_to_json(symmetric_report()), all);
  for (const auto& k : all) {
    const bool documented = doc.str().find("`" + k + "`") != std::string::npos ||
                            doc.str().find("." + k + "`") != std::string::npos;  // `a.b.k`
    EXPECT_TRUE(documented) << "undocumented key " << k;
  }
}

// ---- Human rendering ------------------------------------------------------------------------

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(RenderStatus, NodeLinePeerTableAndDrops) {
  const auto text = render_status(status_to_json(sample_status()));
  ASSERT_TRUE(text) << text.error();
  const auto l = lines(*text);
  ASSERT_EQ(l.size(), 8u) << *text;
  EXPECT_EQ(l[0],
            "home-pc 10.77.0.2/24, public 203.0.113.5:41641, NAT symmetric, sequential ports "
            "(step 2), coordinator 203.0.113.10:7400 registered");
  EXPECT_EQ(l[1], "");
  EXPECT_EQ(l[2].rfind("PEER", 0), 0u);
  EXPECT_EQ(l[3],
            "laptop     10.77.0.3   connected   direct                  198.51.100.7:5000  "
            "12s ago    3.1 ms  1.2 MiB  340.0 KiB");
  EXPECT_EQ(l[4],
            "phone      10.77.0.40  connected   relay (both symmetric)  203.0.113.10:7400  "
            "1m 5s ago  -       10 B     0 B");
  EXPECT_EQ(l[5],
            "10.77.0.9  10.77.0.9   requesting  none                    -                  "
            "-          -       0 B      0 B");
  EXPECT_EQ(l[6], "");
  EXPECT_EQ(l[7], "dropped: 1 bad_source, 3 malformed");
  // Columns line up: every header word starts where its column does.
  for (const char* h : {"VIP", "STATE", "PATH", "ENDPOINT", "HANDSHAKE", "RTT", "IN", "OUT"}) {
    const auto at = l[2].find(std::string("  ") + h) + 2;
    for (int row = 3; row <= 5; ++row) {
      EXPECT_EQ(l[row].substr(at - 2, 2), "  ") << h << " in row " << row;
      EXPECT_NE(l[row][at], ' ') << h << " in row " << row;
    }
  }
}

// Certificate warnings follow the node line; an expired certificate's is an ERROR line.
TEST(RenderStatus, CertificateWarnings) {
  core::NodeStatus s;
  s.name = "lonely";
  s.vip = Ipv4Prefix::parse("10.9.0.1/24").value();
  s.coordinator_state = "registered";
  s.certificates.warnings = {"certificate 'lonely' expires in 3 days (2026-12-03T00:00:00Z): x"};
  auto text = render_status(status_to_json(s));
  ASSERT_TRUE(text) << text.error();
  EXPECT_NE(text->find("\nwarning: certificate 'lonely' expires in 3 days"), std::string::npos)
      << *text;
  s.certificates.expired = true;
  s.certificates.warnings = {"certificate 'lonely' expired 2026-12-03T00:00:00Z: x"};
  text = render_status(status_to_json(s));
  ASSERT_TRUE(text) << text.error();
  EXPECT_NE(text->find("\nERROR: certificate 'lonely' expired"), std::string::npos) << *text;
}

TEST(RenderStatus, NoPeersAndNothingDropped) {
  core::NodeStatus s;
  s.name = "lonely";
  s.performance = {"on", "on", "on", 0};
  s.vip = Ipv4Prefix::parse("10.9.0.1/24").value();
  s.coordinator_state = "refused: certificate revoked";
  const auto text = render_status(status_to_json(s));
  ASSERT_TRUE(text) << text.error();
  EXPECT_EQ(*text,
            "lonely 10.9.0.1/24, public -, NAT unknown, coordinator refused: certificate "
            "revoked\nno peers\n");
}

// A discovery nobody answered says so, not "UDP blocked" (the JSON keeps its v1 value).
TEST(RenderStatus, NatWithoutAnswerIsNotCalledUdpBlocked) {
  core::NodeStatus s;
  s.name = "lonely";
  s.performance = {"on", "on", "on", 0};
  s.vip = Ipv4Prefix::parse("10.9.0.1/24").value();
  s.nat.type = wire::NatType::kUdpBlocked;
  s.coordinator_state = "connecting";
  const auto j = status_to_json(s);
  EXPECT_EQ(j["node"]["nat"]["type"], "UDP blocked");
  const auto text = render_status(j);
  ASSERT_TRUE(text) << text.error();
  EXPECT_EQ(*text,
            "lonely 10.9.0.1/24, public -, NAT unknown (no answer to NAT discovery), "
            "coordinator connecting\nno peers\n");
}

TEST(RenderStatus, RejectsWhatIsNotAVersionOneStatus) {
  json good = status_to_json(sample_status());
  auto expect_error = [](const json& j, const std::string& needle) {
    const auto r = render_status(j);
    ASSERT_FALSE(r) << "rendered:\n" << *r;
    EXPECT_NE(r.error().find(needle), std::string::npos) << r.error();
  };
  json v2 = good;
  v2["version"] = 2;
  expect_error(v2, "status version 2 is not supported");
  json no_node = good;
  no_node.erase("node");
  expect_error(no_node, "malformed status");
  json bad_type = good;
  bad_type["peers"][0]["bytes_in"] = "lots";
  expect_error(bad_type, "malformed status");
  json bad_null = good;
  bad_null["peers"][1]["name"] = nullptr;
  expect_error(bad_null, "malformed status");
  expect_error(json::array({1, 2}), "malformed status");
  expect_error(json("status"), "malformed status");
  expect_error(json{{"ok", false}, {"error", "nope"}}, "malformed status");
}

TEST(RenderStatus, LaterVersionOneFieldsAreIgnored) {
  json j = status_to_json(sample_status());
  j["node"]["future_field"] = {1, 2, 3};
  j["peers"][0]["future_field"] = "x";
  j["drops"]["future_reason"] = 0;
  const auto text = render_status(j);
  ASSERT_TRUE(text) << text.error();
  EXPECT_EQ(*text, *render_status(status_to_json(sample_status())));
}

TEST(HumanUnits, Bytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(5ull << 30), "5.0 GiB");
  EXPECT_EQ(format_bytes(std::numeric_limits<std::uint64_t>::max()), "16.0 EiB");
}

TEST(HumanUnits, Ages) {
  EXPECT_EQ(format_age(0), "0s ago");
  EXPECT_EQ(format_age(12.9), "12s ago");
  EXPECT_EQ(format_age(60), "1m 0s ago");
  EXPECT_EQ(format_age(3599), "59m 59s ago");
  EXPECT_EQ(format_age(3600 + 4 * 60 + 7), "1h 4m ago");
  EXPECT_EQ(format_age(3 * 86400 + 3600), "3d 1h ago");
  EXPECT_EQ(format_age(-5), "0s ago");  // a daemon's clock oddity is not negative time
  EXPECT_EQ(format_age(std::numeric_limits<double>::quiet_NaN()), "0s ago");
  EXPECT_EQ(format_age(std::numeric_limits<double>::infinity()), "11574074d 1h ago");
}

TEST(HumanUnits, RoundTripTimes) {
  EXPECT_EQ(format_rtt(0.42), "0.42 ms");
  EXPECT_EQ(format_rtt(3.14), "3.1 ms");
  EXPECT_EQ(format_rtt(99.94), "99.9 ms");
  EXPECT_EQ(format_rtt(150.4), "150 ms");
  EXPECT_EQ(format_rtt(-1), "0.00 ms");
}

// A node whose coordinator answers only over TCP (its network drops UDP): the transport in
// the JSON (node.coordinator and each coordinators[] entry), "over TCP" in the text, and the
// NAT called what it is, UDP blocked. An older daemon's document, without transport, still
// renders as UDP.
TEST(StatusJson, CoordinatorOverTcp) {
  core::NodeStatus s;
  s.name = "hotel";
  s.vip = Ipv4Prefix::parse("10.9.0.4/24").value();
  s.nat.type = wire::NatType::kUdpBlocked;
  s.coordinator = ep("203.0.113.10:7400");
  s.coordinator_state = "registered";
  s.coordinator_transport = "tcp";
  s.coordinators = {{ep("203.0.113.10:7400"), "registered", 30ms, true, "tcp"},
                    {ep("198.51.100.20:7400"), "connecting", std::nullopt, false, "udp"}};
  core::PeerStatus p = relayed_peer();
  p.relay_reason = "UDP blocked";
  s.peers = {p};
  const json j = status_to_json(s);
  EXPECT_EQ(j["node"]["coordinator"]["transport"], "tcp");
  ASSERT_EQ(j["node"]["coordinators"].size(), 2u);
  EXPECT_EQ(keys(j["node"]["coordinators"][0]),
            (std::set<std::string>{"endpoint", "state", "rtt_ms", "relay", "transport"}));
  EXPECT_EQ(j["node"]["coordinators"][0]["transport"], "tcp");
  EXPECT_EQ(j["node"]["coordinators"][1]["transport"], "udp");
  EXPECT_EQ(j["peers"][0]["relay_reason"], "UDP blocked");
  const auto text = render_status(j);
  ASSERT_TRUE(text) << text.error();
  const auto l = lines(*text);
  ASSERT_GE(l.size(), 2u) << *text;
  EXPECT_EQ(l[0],
            "hotel 10.9.0.4/24, public -, NAT UDP blocked (coordinator over TCP), coordinator "
            "203.0.113.10:7400 registered over TCP");
  EXPECT_EQ(l[1],
            "coordinators: 203.0.113.10:7400 registered, rtt 30.0 ms (relay) over TCP; "
            "198.51.100.20:7400 connecting");
  EXPECT_NE(text->find("relay (UDP blocked)"), std::string::npos) << *text;

  json older = j;
  older["node"]["coordinator"].erase("transport");
  for (auto& c : older["node"]["coordinators"]) c.erase("transport");
  const auto old_text = render_status(older);
  ASSERT_TRUE(old_text) << old_text.error();
  EXPECT_EQ(lines(*old_text)[0],
            "hotel 10.9.0.4/24, public -, NAT unknown (no answer to NAT discovery), coordinator "
            "203.0.113.10:7400 registered");
}

}  // namespace
}  // namespace p2p::daemon

// ---- TCP paths (issue 10): peers[].transport, candidates[].transport, "direct tcp" --------------

namespace p2p::daemon {
namespace {

TEST(StatusJson, TransportOfPathsAndCandidates) {
  auto s = sample_status();
  json peers = status_to_json(s)["peers"];
  EXPECT_TRUE(peers[0]["transport"].is_null());  // the sample's direct peer predates transports
  EXPECT_TRUE(peers[1]["transport"].is_null());  // relayed
  EXPECT_EQ(peers[0]["candidates"][0]["transport"], "udp");

  s.peers[0].transport = "tcp";
  s.peers[0].candidates.push_back(
      {*Endpoint::parse("198.51.100.7:40001"), "public", true, std::nullopt, "tcp"});
  peers = status_to_json(s)["peers"];
  EXPECT_EQ(peers[0]["transport"], "tcp");
  EXPECT_EQ(peers[0]["candidates"][2]["transport"], "tcp");
  const auto text = render_status(status_to_json(s));
  ASSERT_TRUE(text) << text.error();
  EXPECT_NE(text->find("connected   direct tcp "), std::string::npos) << *text;

  s.peers[0].transport = "udp";
  const auto udp = render_status(status_to_json(s));
  ASSERT_TRUE(udp) << udp.error();
  EXPECT_EQ(udp->find("direct tcp"), std::string::npos) << *udp;
}

}  // namespace
}  // namespace p2p::daemon
