// mesh.yaml and coordinator.yaml loading: the issue's examples, defaults, every class of error
// with its exact file:line:column and key, relative paths, and key-file permissions on disk.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "config/bandwidth.hpp"
#include "config/coordinator_config.hpp"
#include "config/duration.hpp"
#include "config/mesh_config.hpp"
#include "config/schema.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void write_file(const fs::path& p, const std::string& text, fs::perms mode) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  fs::permissions(p, mode);
}

constexpr auto kKeyMode = fs::perms::owner_read | fs::perms::owner_write;
constexpr auto kPublicMode = kKeyMode | fs::perms::group_read | fs::perms::others_read;

// Runs `f` and returns the ConfigError it throws (any other exception fails the test).
ConfigError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError("", -1, -1, "", "");
}

// A temporary folder holding the key and certificate files the configs refer to.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto name : {"node.key", "coord.key", "home-pc.key"})
      write_file(dir_ / name, "k", kKeyMode);
    for (auto name : {"node.crt", "ca.crt", "coord.crt", "home-pc.crt"}) {
      write_file(dir_ / name, "c", kPublicMode);
    }
  }

  MeshConfig mesh(const std::string& text) { return parse_mesh_config(text, dir_ / "mesh.yaml"); }
  CoordinatorConfig coordinator(const std::string& text) {
    return parse_coordinator_config(text, dir_ / "coordinator.yaml");
  }
  ConfigError mesh_error(const std::string& text) {
    return error_of([&] { mesh(text); });
  }
  ConfigError coordinator_error(const std::string& text) {
    return error_of([&] { coordinator(text); });
  }
  // The file name errors about mesh.yaml start with.
  std::string mesh_file() const { return (dir_ / "mesh.yaml").string(); }

  test::TempDir temp_{"p2p-config"};
  const fs::path& dir_ = temp_.path();
};

// Six lines every mesh.yaml needs; tests append from line 7 on.
const std::string kMeshBase =
    "node:\n"
    "  key: node.key\n"
    "  cert: node.crt\n"
    "ca: ca.crt\n"
    "coordinators:\n"
    "  - 203.0.113.10:7400\n";

const std::string kCoordinatorBase =
    "key: coord.key\n"
    "cert: coord.crt\n"
    "ca: ca.crt\n";

void expect_at(const ConfigError& e, int line, int column, const std::string& key,
               const std::string& message_part) {
  EXPECT_EQ(e.line(), line) << e.what();
  EXPECT_EQ(e.column(), column) << e.what();
  EXPECT_EQ(e.key(), key) << e.what();
  EXPECT_NE(e.message().find(message_part), std::string::npos) << e.what();
}

// --- mesh.yaml: what loads -------------------------------------------------------------------

TEST_F(ConfigTest, MeshExampleFromIssueLoads) {
  auto c = mesh(R"(node:
  key: home-pc.key
  cert: home-pc.crt
ca: ca.crt
coordinators:
  - 203.0.113.10:7400
tun: { name: p2p0, mtu: 1400 }
listen: { port: 0 }          # 0 = pick a free port
control_socket: /run/p2pvpnd.sock
log: { level: info }
)");
  EXPECT_EQ(c.source, dir_ / "mesh.yaml");
  EXPECT_EQ(c.node.key, dir_ / "home-pc.key");
  EXPECT_EQ(c.node.cert, dir_ / "home-pc.crt");
  EXPECT_EQ(c.ca, dir_ / "ca.crt");
  ASSERT_EQ(c.coordinators.size(), 1u);
  EXPECT_EQ(c.coordinators[0], *Endpoint::parse("203.0.113.10:7400"));
  EXPECT_EQ(c.tun.name, "p2p0");
  EXPECT_EQ(c.tun.mtu, 1400);
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.control_socket, fs::path("/run/p2pvpnd.sock"));
  EXPECT_EQ(c.log.level, LogLevel::info);
}

TEST_F(ConfigTest, MeshDefaults) {
  auto c = mesh(kMeshBase);
  EXPECT_EQ(c.tun.name, "p2p0");
  EXPECT_EQ(c.tun.mtu, 1400);
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.listen.address, IpAddress{*Ipv4::parse("0.0.0.0")});
  EXPECT_EQ(c.control_socket, fs::path("/run/p2pvpnd.sock"));
  EXPECT_EQ(c.log.level, LogLevel::info);
  EXPECT_EQ(c.keepalive, 25s);
  EXPECT_TRUE(c.revoked.empty());
  EXPECT_TRUE(c.peers.empty());
  EXPECT_TRUE(c.punch.enabled);
  EXPECT_EQ(c.punch.timeout, 10s);
  EXPECT_TRUE(c.punch.port_prediction);
  EXPECT_TRUE(c.relay.allowed);
  EXPECT_FALSE(c.discovery.server);  // the coordinator
  EXPECT_EQ(c.discovery.interval, 10min);
}

TEST_F(ConfigTest, MeshEmptySectionsKeepDefaults) {
  auto c = mesh(kMeshBase + "tun:\nlisten:\npunch: {}\nrevoked:\npeers: []\n");
  EXPECT_EQ(c.tun.mtu, 1400);
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_TRUE(c.punch.enabled);
  EXPECT_TRUE(c.revoked.empty());
}

TEST_F(ConfigTest, MeshEveryKeySet) {
  auto c = mesh(kMeshBase + R"(  - "[2001:db8::7]:7500"
tun: { name: vpn-7, mtu: 9000 }
listen: { port: 51820, address: "::" }
control_socket: run/ctl.sock
log: { level: off }
keepalive: 1m
revoked:
  - 00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff
peers:
  - { name: laptop, force: relay }
  - { vip: 10.77.0.9, force: direct }
punch: { enabled: false, timeout: 3s, port_prediction: false }
relay: { allowed: false }
discovery: { server: "[2001:db8::9]:3478", interval: 1h }
)");
  ASSERT_EQ(c.coordinators.size(), 2u);
  EXPECT_EQ(c.coordinators[1], *Endpoint::parse("[2001:db8::7]:7500"));
  EXPECT_EQ(c.tun.name, "vpn-7");
  EXPECT_EQ(c.tun.mtu, 9000);
  EXPECT_EQ(c.listen.port, 51820);
  EXPECT_EQ(c.listen.address, IpAddress{Ipv6{}});
  EXPECT_EQ(c.control_socket, dir_ / "run/ctl.sock");
  EXPECT_EQ(c.log.level, LogLevel::off);
  EXPECT_EQ(c.keepalive, 60s);
  ASSERT_EQ(c.revoked.size(), 1u);
  // Lowercase, as crypto::fingerprint() prints it and the certificate check compares.
  EXPECT_EQ(c.revoked[0], "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[0].name, "laptop");
  EXPECT_FALSE(c.peers[0].vip);
  EXPECT_EQ(c.peers[0].force, ForcedPath::relay);
  EXPECT_FALSE(c.peers[1].name);
  EXPECT_EQ(c.peers[1].vip, Ipv4::parse("10.77.0.9"));
  EXPECT_EQ(c.peers[1].force, ForcedPath::direct);
  EXPECT_FALSE(c.punch.enabled);
  EXPECT_EQ(c.punch.timeout, 3s);
  EXPECT_FALSE(c.punch.port_prediction);
  EXPECT_FALSE(c.relay.allowed);
  EXPECT_EQ(c.discovery.server, Endpoint::parse("[2001:db8::9]:3478"));
  EXPECT_EQ(c.discovery.interval, 1h);
}

TEST_F(ConfigTest, MeshLimits) {
  using Limits = MeshConfig::Limits;
  EXPECT_EQ(mesh(kMeshBase).limits, (Limits{4096, 5min, 30s, 4096, 20, 40, 1024, 4 << 20}));
  auto c = mesh(kMeshBase + R"(limits:
  max_peers: 100
  peer_idle_timeout: 1h
  unknown_address_ttl: 5s
  unknown_addresses: 0
  lookups_per_second: 5
  lookup_burst: 7
  queued_packets: 64
  queued_bytes: 65536
)");
  EXPECT_EQ(c.limits, (Limits{100, 1h, 5s, 0, 5, 7, 64, 65536}));

  expect_at(mesh_error(kMeshBase + "limits:\n  max_peers: 0\n"), 8, 14, "limits.max_peers",
            "1..1000000");
  expect_at(mesh_error(kMeshBase + "limits: { peer_idle_timeout: 1s }\n"), 7, 30,
            "limits.peer_idle_timeout", "10s..1d");
  expect_at(mesh_error(kMeshBase + "limits:\n  unknown_address_ttl: 2h\n"), 8, 24,
            "limits.unknown_address_ttl", "1s..1h");
  expect_at(mesh_error(kMeshBase + "limits:\n  queued_bytes: 1000\n"), 8, 17, "limits.queued_bytes",
            "65536..1073741824");
  expect_at(mesh_error(kMeshBase + "limits:\n  lookups_per_secnd: 5\n"), 8, 3,
            "limits.lookups_per_secnd", "did you mean 'lookups_per_second'?");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
  write_file(dir_ / "keys/n.key", "k", kKeyMode);
  write_file(dir_ / "etc/p2p/n.crt", "c", kPublicMode);
  auto c = parse_mesh_config(R"(node: { key: ../../keys/n.key, cert: n.crt }
ca: )" + (dir_ / "ca.crt").string() +
                                 R"(
coordinators: [203.0.113.10:7400]
control_socket: ../../run/./p2p.sock
)",
                             dir_ / "etc/p2p/mesh.yaml");
  EXPECT_EQ(c.node.key, dir_ / "keys/n.key");
  EXPECT_EQ(c.node.cert, dir_ / "etc/p2p/n.crt");
  EXPECT_EQ(c.ca, dir_ / "ca.crt");
  EXPECT_EQ(c.control_socket, dir_ / "run/p2p.sock");
  EXPECT_TRUE(c.node.key.is_absolute());
  expect_at(mesh_error(kMeshBase + "control_socket: ~/p2p.sock\n"), 7, 17, "control_socket",
            "'~' is not expanded");
}

TEST_F(ConfigTest, LoadsRealFiles) {
  write_file(dir_ / "conf/mesh.yaml",
             "node: { key: ../node.key, cert: ../node.crt }\nca: ../ca.crt\n"
             "coordinators: ['[::1]:7400']\nlisten: { address: '::' }\n",
             kPublicMode);
  auto m = load_mesh_config(dir_ / "conf/mesh.yaml");
  EXPECT_EQ(m.source, dir_ / "conf/mesh.yaml");
  EXPECT_EQ(m.node.key, dir_ / "node.key");
  EXPECT_EQ(m.coordinators[0], *Endpoint::parse("[::1]:7400"));

  write_file(dir_ / "coordinator.yaml", kCoordinatorBase, kPublicMode);
  auto c = load_coordinator_config(dir_ / "coordinator.yaml");
  EXPECT_EQ(c.source, dir_ / "coordinator.yaml");
  EXPECT_EQ(c.key, dir_ / "coord.key");
}

TEST_F(ConfigTest, MissingConfigFileNamesTheFile) {
  auto e = error_of([&] { load_mesh_config(dir_ / "nope.yaml"); });
  EXPECT_EQ(e.file(), (dir_ / "nope.yaml").string());
  EXPECT_EQ(e.line(), 0);
  EXPECT_EQ(std::string(e.what()),
            (dir_ / "nope.yaml").string() + ": cannot read: No such file or directory");
  e = error_of([&] { load_coordinator_config(dir_); });
  EXPECT_NE(e.message().find("not a regular file"), std::string::npos);
}

// --- mesh.yaml: errors, each with file, line, column and key ---------------------------------

TEST_F(ConfigTest, WrongTypeReadsLikeTheContract) {
  auto e = mesh_error(kMeshBase + "tun:\n  mtu: big\n");
  EXPECT_EQ(std::string(e.what()),
            mesh_file() + ":8:8: tun.mtu: expected an integer 576..9000, got \"big\"");
  EXPECT_EQ(e.file(), mesh_file());

  // A quoted number is a string, not a number.
  expect_at(mesh_error(kMeshBase + "tun: { mtu: \"1400\" }\n"), 7, 13, "tun.mtu",
            "expected an integer 576..9000, got \"1400\"");
  expect_at(mesh_error(kMeshBase + "tun: { mtu: 1400.0 }\n"), 7, 13, "tun.mtu", "integer");
  expect_at(mesh_error(kMeshBase + "tun: { mtu: 01400 }\n"), 7, 13, "tun.mtu", "integer");
  expect_at(mesh_error(kMeshBase + "tun: [1400]\n"), 7, 6, "tun", "expected a mapping, got a list");
  expect_at(mesh_error(kMeshBase + "coordinators2: 1\n"), 7, 1, "coordinators2",
            "did you mean 'coordinators'?");
  expect_at(mesh_error(kMeshBase + "punch: { enabled: yes }\n"), 7, 19, "punch.enabled",
            "expected true or false, got \"yes\"");
  expect_at(mesh_error(kMeshBase + "punch: { enabled: 'true' }\n"), 7, 19, "punch.enabled",
            "expected true or false");
  expect_at(mesh_error(kMeshBase + "node: 5\n"), 7, 1, "node", "duplicate key");
  expect_at(mesh_error("node: node.key\n"), 1, 7, "node", "expected a mapping, got \"node.key\"");
  expect_at(mesh_error("- a\n- b\n"), 1, 1, "", "expected a mapping, got a list");
  expect_at(mesh_error(kMeshBase + "control_socket: [a]\n"), 7, 17, "control_socket",
            "expected a text value, got a list");
  expect_at(mesh_error(kMeshBase + "control_socket: \"a\\tb\"\n"), 7, 17, "control_socket",
            "control characters");
  expect_at(mesh_error(kMeshBase + "? [a, b]\n: 1\n"), 7, 3, "", "a key must be a plain word");
}

TEST_F(ConfigTest, OutOfRangeNumbers) {
  expect_at(mesh_error(kMeshBase + "tun: { mtu: 575 }\n"), 7, 13, "tun.mtu", "576..9000");
  expect_at(mesh_error(kMeshBase + "tun: { mtu: 9001 }\n"), 7, 13, "tun.mtu", "576..9000");
  expect_at(mesh_error(kMeshBase + "listen:\n  port: 65536\n"), 8, 9, "listen.port",
            "expected an integer 0..65535, got \"65536\"");
  expect_at(mesh_error(kMeshBase + "listen:\n  port: -1\n"), 8, 9, "listen.port", "0..65535");
  expect_at(mesh_error(kMeshBase + "listen:\n  port: 99999999999999999999999\n"), 8, 9,
            "listen.port", "0..65535");
  EXPECT_EQ(mesh(kMeshBase + "listen: { port: 65535 }\n").listen.port, 65535);
  EXPECT_EQ(mesh(kMeshBase + "tun: { mtu: 576 }\n").tun.mtu, 576);
}

TEST_F(ConfigTest, MissingRequiredKeys) {
  expect_at(mesh_error("node:\n  key: node.key\nca: ca.crt\ncoordinators: [1.2.3.4:5]\n"), 2, 3,
            "node.cert", "missing required key");
  expect_at(mesh_error("node: { key: node.key, cert: node.crt }\nca: ca.crt\n"), 1, 1,
            "coordinators", "missing required key");
  expect_at(mesh_error(""), 1, 1, "node", "missing required key");
  expect_at(mesh_error("# only a comment\n"), 1, 1, "node", "missing required key");
  expect_at(mesh_error("node:\nca: ca.crt\n"), 1, 1, "node.key", "missing required key");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: laptop }\n"), 8, 5, "peers[0].force",
            "missing required key");
}

TEST_F(ConfigTest, UnknownKeysSuggestTheClosest) {
  expect_at(mesh_error(kMeshBase + "tun:\n  mut: 1400\n"), 8, 3, "tun.mut",
            "unknown key \"mut\"; did you mean 'mtu'?");
  expect_at(mesh_error(kMeshBase + "keepalvie: 30s\n"), 7, 1, "keepalvie",
            "did you mean 'keepalive'?");
  expect_at(mesh_error(kMeshBase + "punch: { port_predicton: false }\n"), 7, 10,
            "punch.port_predicton", "did you mean 'port_prediction'?");
  auto e = mesh_error(kMeshBase + "log: { colour: red }\n");
  expect_at(e, 7, 8, "log.colour", "unknown key \"colour\"; known keys here: level");
  e = mesh_error(kMeshBase + "firewall: on\n");
  EXPECT_EQ(e.message().find("did you mean"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("coordinators"), std::string::npos) << e.what();
}

// A coordinators[] entry may be a mapping that adds the coordinator's TCP main port (the
// carrier when UDP gets no answer); plain entries have none. Errors name file, line and key.
TEST_F(ConfigTest, CoordinatorTcpPort) {
  auto m = mesh(kMeshBase + "  - { endpoint: 198.51.100.20:7400, tcp: 443 }\n");
  ASSERT_EQ(m.coordinators.size(), 2u);
  ASSERT_EQ(m.coordinator_tcp.size(), 2u);
  EXPECT_EQ(m.coordinators[1], *Endpoint::parse("198.51.100.20:7400"));
  EXPECT_FALSE(m.coordinator_tcp[0]);
  EXPECT_EQ(m.coordinator_tcp[1], std::optional<std::uint16_t>(443));
  m = mesh(kMeshBase + "  - { endpoint: 198.51.100.20:7400 }\n");
  EXPECT_FALSE(m.coordinator_tcp[1]);
  auto e = mesh_error(kMeshBase + "  - { endpoint: 198.51.100.20:7400, tcp: 0 }\n");
  EXPECT_EQ(e.file(), mesh_file());
  expect_at(e, 7, 42, "coordinators[1].tcp", "1..65535");
  expect_at(mesh_error(kMeshBase + "  - { tcp: 443 }\n"), 7, 5, "coordinators[1].endpoint",
            "missing required key");
  expect_at(mesh_error(kMeshBase + "  - { endpoint: 198.51.100.20:7400, tpc: 443 }\n"), 7, 37,
            "coordinators[1].tpc", "did you mean 'tcp'?");
  expect_at(mesh_error(kMeshBase + "  - { endpoint: 203.0.113.10:7400, tcp: 443 }\n"), 7, 5,
            "coordinators[1]", "duplicate entry");
}

TEST_F(ConfigTest, InvalidAddressesAndEndpoints) {
  expect_at(mesh_error(kMeshBase + "listen: { address: 300.1.1.1 }\n"), 7, 20, "listen.address",
            "expected an IPv4 or IPv6 address, got \"300.1.1.1\"");
  for (std::string bad :
       {"203.0.113.10", "203.0.113.10:", "203.0.113.10:70000", "203.0.113.10:0", "2001:db8::1:7400",
        "'[2001:db8::1]'", "host.example:7400", "'[1.2.3.4]:5'"}) {
    expect_at(mesh_error(kMeshBase + "  - " + bad + "\n"), 7, 5, "coordinators[1]", "IP:PORT");
  }
  expect_at(mesh_error(kMeshBase + "  - 0.0.0.0:7400\n"), 7, 5, "coordinators[1]",
            "specific address");
  expect_at(mesh_error("node: { key: node.key, cert: node.crt }\nca: ca.crt\ncoordinators: []\n"),
            3, 15, "coordinators", "expected a list of at least 1 entry, got a list");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { vip: 10.77.0.256, force: relay }\n"), 8, 12,
            "peers[0].vip", "expected an IPv4 address");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { vip: '::1', force: relay }\n"), 8, 12,
            "peers[0].vip", "expected an IPv4 address");
}

TEST_F(ConfigTest, DiscoveryServer) {
  auto c = mesh(kMeshBase + "discovery: { server: 198.51.100.7:3478, interval: 1m }\n");
  EXPECT_EQ(c.discovery.server, Endpoint::parse("198.51.100.7:3478"));
  EXPECT_EQ(c.discovery.interval, 1min);
  EXPECT_EQ(mesh(kMeshBase + "discovery: { interval: 24h }\n").discovery.interval, 24h);
  expect_at(mesh_error(kMeshBase + "discovery: { server: 0.0.0.0:3478 }\n"), 7, 22,
            "discovery.server", "specific");
  expect_at(mesh_error(kMeshBase + "discovery: { server: 198.51.100.7 }\n"), 7, 22,
            "discovery.server", "198.51.100.7");
  expect_at(mesh_error(kMeshBase + "discovery: { interval: 59s }\n"), 7, 24, "discovery.interval",
            "1m..1d");
  expect_at(mesh_error(kMeshBase + "discovery: { interval: 25h }\n"), 7, 24, "discovery.interval",
            "1m..1d");
  expect_at(mesh_error(kMeshBase + "discovery:\n  server: '[2001:db8::9]:3478'\n"), 8, 11,
            "discovery.server", "IPv6 listen.address");
  expect_at(mesh_error(kMeshBase + "discovery: { sever: 198.51.100.7:3478 }\n"), 7, 14,
            "discovery.sever", "did you mean 'server'?");
}

TEST_F(ConfigTest, Ipv6CoordinatorNeedsAnIpv6Socket) {
  expect_at(mesh_error(kMeshBase + "  - '[2001:db8::1]:7400'\n"), 7, 5, "coordinators[1]",
            "IPv6 listen.address");
  EXPECT_EQ(
      mesh(kMeshBase + "  - '[2001:db8::1]:7400'\nlisten: { address: '::' }\n").coordinators.size(),
      2u);
}

TEST_F(ConfigTest, InvalidDurations) {
  expect_at(mesh_error(kMeshBase + "keepalive: 25\n"), 7, 12, "keepalive",
            "expected a duration 1s..10m (units ms, s, m, h, d, w, e.g. \"25s\"), got \"25\"");
  expect_at(mesh_error(kMeshBase + "keepalive: 2.5s\n"), 7, 12, "keepalive", "duration");
  expect_at(mesh_error(kMeshBase + "keepalive: 999ms\n"), 7, 12, "keepalive", "1s..10m");
  expect_at(mesh_error(kMeshBase + "keepalive: 11m\n"), 7, 12, "keepalive", "1s..10m");
  expect_at(mesh_error(kMeshBase + "punch:\n  timeout: soon\n"), 8, 12, "punch.timeout", "1s..5m");
  EXPECT_EQ(mesh(kMeshBase + "keepalive: 10m\n").keepalive, 10min);
  EXPECT_EQ(mesh(kMeshBase + "keepalive: 1000ms\n").keepalive, 1s);
}

TEST_F(ConfigTest, DuplicateEntries) {
  expect_at(mesh_error(kMeshBase + "  - 203.0.113.10:7400\n"), 7, 5, "coordinators[1]",
            "duplicate entry, same as coordinators[0]");
  expect_at(mesh_error(kMeshBase + "tun: { mtu: 1400, mtu: 1500 }\n"), 7, 19, "tun.mtu",
            "duplicate key (first given on line 7)");
  std::string fp(64, 'a');
  std::string fp_upper(64, 'A');
  expect_at(mesh_error(kMeshBase + "revoked:\n  - " + fp + "\n  - " + fp_upper + "\n"), 9, 5,
            "revoked[1]", "duplicate entry, same as revoked[0]");
  expect_at(mesh_error(kMeshBase +
                       "peers:\n  - { name: a, force: relay }\n  - { name: a, force: direct }\n"),
            9, 5, "peers[1]", "duplicate entry, same as peers[0]");
  // The same vip and the same name are different peers' identities.
  EXPECT_EQ(mesh(kMeshBase + "peers:\n  - { name: a, force: relay }\n"
                             "  - { vip: 10.0.0.1, force: relay }\n")
                .peers.size(),
            2u);
}

TEST_F(ConfigTest, PeersNeedExactlyOneIdentity) {
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: a, vip: 10.0.0.1, force: relay }\n"), 8, 5,
            "peers[0]", "exactly one of 'name' and 'vip'");
  expect_at(mesh_error(kMeshBase + "peers:\n  - name: a\n    force: direct\n  - force: relay\n"),
            10, 5, "peers[1]", "exactly one of 'name' and 'vip'");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: a, force: relya }\n"), 8, 23,
            "peers[0].force",
            "expected one of direct, relay, got \"relya\"; did you mean 'relay'?");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: 'a b', force: relay }\n"), 8, 13,
            "peers[0].name", "node name");
  expect_at(mesh_error(kMeshBase + "peers: { name: a }\n"), 7, 8, "peers",
            "expected a list, got a mapping");
}

TEST_F(ConfigTest, InvalidWordsAndNames) {
  expect_at(mesh_error(kMeshBase + "log: { level: warning }\n"), 7, 15, "log.level",
            "expected one of trace, debug, info, warn, error, off, got \"warning\"; did you mean "
            "'warn'?");
  expect_at(mesh_error(kMeshBase + "tun: { name: averyveryverylong }\n"), 7, 14, "tun.name",
            "interface name");
  expect_at(mesh_error(kMeshBase + "tun: { name: a/b }\n"), 7, 14, "tun.name", "interface name");
  expect_at(mesh_error(kMeshBase + "tun: { name: '..' }\n"), 7, 14, "tun.name", "interface name");
  expect_at(mesh_error(kMeshBase + "tun: { name: '' }\n"), 7, 14, "tun.name", "empty");
  EXPECT_EQ(mesh(kMeshBase + "tun: { name: abcdefghijklmno }\n").tun.name, "abcdefghijklmno");
  expect_at(mesh_error(kMeshBase + "revoked: [abc]\n"), 7, 11, "revoked[0]",
            "64 hex digits), got \"abc\"");
  expect_at(mesh_error(kMeshBase + "revoked:\n  - " + std::string(63, 'a') + "g\n"), 8, 5,
            "revoked[0]", "64 hex digits");
}

TEST_F(ConfigTest, YamlSyntaxErrorsCarryTheirPosition) {
  auto e = mesh_error(kMeshBase + "tun: { mtu: 1400\n");
  EXPECT_EQ(e.line(), 8) << e.what();
  EXPECT_EQ(e.key(), "");
  EXPECT_NE(e.message().find("invalid YAML"), std::string::npos) << e.what();
  e = mesh_error("node:\n  key: [a\n  cert: b\n");
  EXPECT_GE(e.line(), 2) << e.what();
  e = error_of([] { parse_mesh_config("a: b: c\n", "mesh.yaml"); });
  EXPECT_EQ(std::string(e.what()).rfind("mesh.yaml:1:", 0), 0u) << e.what();
  expect_at(mesh_error(kMeshBase + "---\nca: other\n"), 7, 1, "", "found another one");
  // yaml-cpp's LoadAll would loop forever on this one.
  expect_at(mesh_error(","), 1, 1, "", "found another one (or stray text)");
  expect_at(mesh_error(kMeshBase + ","), 7, 1, "", "invalid YAML: end of map not found");
  // An explicit document end is fine.
  EXPECT_EQ(mesh(kMeshBase + "...\n").tun.mtu, 1400);
}

TEST_F(ConfigTest, HostileYamlIsAnErrorNotACrash) {
  // An alias cycle: the loader must not walk it forever.
  // An alias reports at the node it names.
  expect_at(mesh_error(kMeshBase + "peers: &a [*a]\n"), 7, 8, "peers[0]", "expected a mapping");
  expect_at(mesh_error("node: &n { key: *n }\n"), 1, 7, "node.key", "got a mapping");
  auto deep = std::string(3000, '[') + std::string(3000, ']');
  EXPECT_NE(mesh_error(deep).message().find("invalid YAML"), std::string::npos);
  std::string binary("\0\xff\xfe\x01", 4);
  EXPECT_FALSE(mesh_error(binary).message().empty());
}

// --- Files the config refers to --------------------------------------------------------------

TEST_F(ConfigTest, GroupReadableKeyFileIsRefused) {
  write_file(dir_ / "loose.key", "k", kPublicMode);
  auto e = mesh_error(
      "node:\n  key: loose.key\n  cert: node.crt\nca: ca.crt\n"
      "coordinators: [1.2.3.4:5]\n");
  expect_at(e, 2, 8, "node.key", "is readable by group/others; run chmod 600");
  EXPECT_NE(e.message().find("(mode 0644)"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find((dir_ / "loose.key").string()), std::string::npos) << e.what();

  fs::permissions(dir_ / "loose.key", kKeyMode | fs::perms::group_write);
  expect_at(mesh_error("node:\n  key: loose.key\n  cert: node.crt\nca: ca.crt\n"
                       "coordinators: [1.2.3.4:5]\n"),
            2, 8, "node.key", "accessible by group/others");

  fs::permissions(dir_ / "loose.key", fs::perms::owner_read);
  EXPECT_EQ(mesh("node:\n  key: loose.key\n  cert: node.crt\nca: ca.crt\n"
                 "coordinators: [1.2.3.4:5]\n")
                .node.key,
            dir_ / "loose.key");
}

TEST_F(ConfigTest, MissingOrNonRegularFilesAreRefused) {
  auto e = mesh_error("node:\n  key: node.key\n  cert: gone.crt\nca: ca.crt\n");
  expect_at(e, 3, 9, "node.cert", "cannot read file");
  EXPECT_NE(e.message().find("No such file or directory"), std::string::npos) << e.what();
  fs::create_directory(dir_ / "adir");
  expect_at(mesh_error("node:\n  key: node.key\n  cert: node.crt\nca: adir\n"), 4, 5, "ca",
            "is not a regular file");
  expect_at(coordinator_error("key: coord.key\ncert: coord.crt\nca: missing/ca.crt\n"), 3, 5, "ca",
            "cannot read file");
}

// --- coordinator.yaml ------------------------------------------------------------------------

TEST_F(ConfigTest, CoordinatorExampleFromIssueLoads) {
  auto c = coordinator(R"(key: coord.key
cert: coord.crt
ca: ca.crt
listen: 0.0.0.0:7400
revoked: []
log: { level: info }
)");
  EXPECT_EQ(c.source, dir_ / "coordinator.yaml");
  EXPECT_EQ(c.key, dir_ / "coord.key");
  EXPECT_EQ(c.cert, dir_ / "coord.crt");
  EXPECT_EQ(c.ca, dir_ / "ca.crt");
  EXPECT_EQ(c.listen, *Endpoint::parse("0.0.0.0:7400"));
  EXPECT_TRUE(c.revoked.empty());
  EXPECT_EQ(c.log.level, LogLevel::info);
}

TEST_F(ConfigTest, CoordinatorDefaults) {
  auto c = coordinator(kCoordinatorBase);
  EXPECT_EQ(c.listen, *Endpoint::parse("0.0.0.0:7400"));
  EXPECT_FALSE(c.alternate_address);
  EXPECT_FALSE(c.alternate_port);
  EXPECT_FALSE(c.alternate());
  EXPECT_EQ(c.node_timeout, 90s);
  EXPECT_TRUE(c.relay.enabled);
  EXPECT_EQ(c.relay.rate_limit, 2'500'000u);  // 20 mbit/s
  EXPECT_EQ(c.relay.burst, 2'500'000u);       // one second of it
  EXPECT_EQ(c.control_socket, fs::path("/run/p2pvpn-coordinator.sock"));
  EXPECT_EQ(c.log.level, LogLevel::info);
}

// limits: and stun: (coordinator/core/coordinator.hpp says what each bounds).
TEST_F(ConfigTest, CoordinatorLimits) {
  auto c = coordinator(kCoordinatorBase);
  EXPECT_EQ(c.limits.max_nodes, 65536u);
  EXPECT_EQ(c.limits.lookup_rate, 10u);
  EXPECT_EQ(c.limits.lookup_burst, 50u);
  EXPECT_EQ(c.limits.introduction_rate, 10u);
  EXPECT_EQ(c.limits.introduction_burst, 50u);
  EXPECT_EQ(c.stun.rate_limit, 2000u);  // 16 kbit/s
  EXPECT_EQ(c.stun.burst, 8000u);
  EXPECT_EQ(c.stun.sources, 16384u);

  c = coordinator(kCoordinatorBase +
                  "limits:\n  max_nodes: 100000\n  lookup_rate: 200\n  introduction_rate: 3\n"
                  "  introduction_burst: 4\nstun:\n  rate_limit: 1mbit\n  sources: 64\n");
  EXPECT_EQ(c.limits.max_nodes, 100000u);
  EXPECT_EQ(c.limits.lookup_rate, 200u);
  EXPECT_EQ(c.limits.lookup_burst, 200u);  // never below one second of the rate
  EXPECT_EQ(c.limits.introduction_rate, 3u);
  EXPECT_EQ(c.limits.introduction_burst, 4u);
  EXPECT_EQ(c.stun.rate_limit, 125'000u);
  EXPECT_EQ(c.stun.burst, 125'000u);
  EXPECT_EQ(c.stun.sources, 64u);

  expect_at(coordinator_error(kCoordinatorBase + "limits:\n  max_nodes: 0\n"), 5, 14,
            "limits.max_nodes", "");
  expect_at(coordinator_error(kCoordinatorBase + "limits:\n  lookup_rate: 10\n  lookup_burst: 5\n"),
            6, 17, "limits.lookup_burst", "at least the rate");
  expect_at(coordinator_error(kCoordinatorBase + "limits:\n  introductions: 5\n"), 5, 3,
            "limits.introductions", "");
  expect_at(coordinator_error(kCoordinatorBase + "stun:\n  burst: 8kbit\n"), 5, 10, "stun.burst",
            "at least 2 KiB");
  expect_at(coordinator_error(kCoordinatorBase + "stun:\n  sources: 10\n"), 5, 12, "stun.sources",
            "");
}

TEST_F(ConfigTest, CoordinatorAlternateAddress) {
  auto c = coordinator(kCoordinatorBase +
                       "listen: 203.0.113.10:7400\nalternate_address: 203.0.113.11\n");
  EXPECT_EQ(c.alternate(), Endpoint::parse("203.0.113.11:7401"));
  c = coordinator(kCoordinatorBase +
                  "listen: 203.0.113.10:7400\nalternate_address: 203.0.113.11\n"
                  "alternate_port: 3478\n");
  EXPECT_EQ(c.alternate(), Endpoint::parse("203.0.113.11:3478"));

  expect_at(coordinator_error(kCoordinatorBase + "alternate_port: 7401\n"), 4, 17, "alternate_port",
            "needs alternate_address");
  expect_at(coordinator_error(kCoordinatorBase + "alternate_address: '2001:db8::1'\n"), 4, 20,
            "alternate_address", "listen address's family");
  expect_at(coordinator_error(kCoordinatorBase +
                              "listen: 203.0.113.10:7400\nalternate_address: 203.0.113.10\n"),
            5, 20, "alternate_address", "equals the listen address");
  expect_at(coordinator_error(kCoordinatorBase + "alternate_address: 0.0.0.0\n"), 4, 20,
            "alternate_address", "specific address");
  expect_at(coordinator_error(kCoordinatorBase +
                              "listen: 203.0.113.10:65535\nalternate_address: 203.0.113.11\n"),
            5, 20, "alternate_address", "alternate_port must be given");
  expect_at(coordinator_error(kCoordinatorBase +
                              "alternate_address: 203.0.113.11\nalternate_port: 7400\n"),
            5, 17, "alternate_port", "must differ from the listen port");
  // The README's first version: a wildcard listen with an alternate address cannot bind (the
  // wildcard holds the alternate's port too) and gives RFC 5780 no primary address to name.
  expect_at(coordinator_error(kCoordinatorBase +
                              "listen: 0.0.0.0:7400\nalternate_address: 203.0.113.11\n"),
            4, 9, "listen",
            "with alternate_address the listen address must be the primary public address, not "
            "0.0.0.0: write listen: 203.0.113.10:7400");
  expect_at(coordinator_error(kCoordinatorBase + "alternate_address: 203.0.113.11\n"), 4, 20,
            "alternate_address", "needs listen set to the primary public address");
  expect_at(coordinator_error(kCoordinatorBase + "listen: '[::]:7400'\nalternate_address: "
                                                 "'2001:db8::11'\n"),
            4, 9, "listen", "not ::: write listen: [2001:db8::10]:7400");
  EXPECT_EQ(coordinator(kCoordinatorBase + "listen: 0.0.0.0:7400\n").listen,
            *Endpoint::parse("0.0.0.0:7400"));  // a wildcard alone is fine
  expect_at(coordinator_error(kCoordinatorBase + "alternate_address: 203.0.113.300\n"), 4, 20,
            "alternate_address", "expected an IPv4 or IPv6 address");
  expect_at(coordinator_error(kCoordinatorBase + "listen: 0.0.0.0\n"), 4, 9, "listen",
            "expected IP:PORT");
}

TEST_F(ConfigTest, CoordinatorRelayRates) {
  auto c = coordinator(kCoordinatorBase + "relay:\n  rate_limit: 100Mbit\n  burst: 4mbit\n");
  EXPECT_EQ(c.relay.rate_limit, 12'500'000u);
  EXPECT_EQ(c.relay.burst, 500'000u);
  c = coordinator(kCoordinatorBase + "relay: { enabled: false, rate_limit: 64kbit }\n");
  EXPECT_FALSE(c.relay.enabled);
  EXPECT_EQ(c.relay.rate_limit, 8'000u);
  EXPECT_EQ(c.relay.burst, CoordinatorConfig::kMinRelayBurst);  // a second would be too small

  expect_at(coordinator_error(kCoordinatorBase + "relay:\n  rate_limit: 20mb\n"), 5, 15,
            "relay.rate_limit",
            "expected a rate such as \"20mbit\" (bit, kbit, mbit or gbit per second, at least "
            "8bit), got \"20mb\"");
  expect_at(coordinator_error(kCoordinatorBase + "relay:\n  rate_limit: 4bit\n"), 5, 15,
            "relay.rate_limit", "at least 8bit");
  expect_at(coordinator_error(kCoordinatorBase + "relay:\n  rate_limit: [20mbit]\n"), 5, 15,
            "relay.rate_limit", "got a list");
  expect_at(coordinator_error(kCoordinatorBase + "relay:\n  burst: 8kbit\n"), 5, 10, "relay.burst",
            "below 16 KiB");
  expect_at(coordinator_error(kCoordinatorBase + "relay:\n  burst: 99999999999999999999gbit\n"), 5,
            10, "relay.burst", "an amount such as");
}

TEST_F(ConfigTest, CoordinatorErrors) {
  expect_at(coordinator_error(kCoordinatorBase + "node_timout: 60s\n"), 4, 1, "node_timout",
            "did you mean 'node_timeout'?");
  expect_at(coordinator_error(kCoordinatorBase + "node_timeout: 1s\n"), 4, 15, "node_timeout",
            "5s..1d");
  expect_at(coordinator_error("cert: coord.crt\nca: ca.crt\n"), 1, 1, "key",
            "missing required key");
  expect_at(coordinator_error(kCoordinatorBase + "revoked: [" + std::string(64, '0') + ", " +
                              std::string(64, '0') + "]\n"),
            4, 77, "revoked[1]", "duplicate entry");
  expect_at(coordinator_error(kCoordinatorBase + "log:\n  level: loud\n"), 5, 10, "log.level",
            "expected one of trace");
  write_file(dir_ / "coord.key", "k", kPublicMode);
  expect_at(coordinator_error(kCoordinatorBase), 1, 6, "key", "run chmod 600");
}

// --- The generic pieces ----------------------------------------------------------------------

struct PrefixHolder {
  Ipv4Prefix prefix;
  std::vector<int> ports;
};

TEST(ConfigSchema, GenericReadersInATableOfTheirOwn) {
  const Schema<PrefixHolder> schema{{
      {"prefix", kRequired, into(&PrefixHolder::prefix, read_ipv4_prefix)},
      {"ports", kOptional, into(&PrefixHolder::ports, list_of(integer_in<int>(1, 9), 2))},
  }};
  Source source{"t.yaml", "/"};
  auto holder = read_document("prefix: 10.77.0.2/24\nports: [1, 2]\n", source, schema);
  EXPECT_EQ(holder.prefix, *Ipv4Prefix::parse("10.77.0.2/24"));
  EXPECT_EQ(holder.ports, (std::vector<int>{1, 2}));

  auto e = error_of([&] { read_document("prefix: 10.77.0.2/33\n", source, schema); });
  expect_at(e, 1, 9, "prefix", "expected an IPv4 address with prefix length");
  e = error_of([&] { read_document("prefix: 10.0.0.0/8\nports: [1]\n", source, schema); });
  expect_at(e, 2, 8, "ports", "at least 2 entries");
  e = error_of([&] { read_document("prefix: 10.0.0.0/8\nports: [1, 10]\n", source, schema); });
  expect_at(e, 2, 12, "ports[1]", "expected an integer 1..9, got \"10\"");
  EXPECT_EQ(std::string(e.what()), "t.yaml:2:12: ports[1]: expected an integer 1..9, got \"10\"");
}

TEST(ConfigSchema, ClosestMatch) {
  std::vector<std::string_view> keys{"keepalive", "coordinators", "control_socket", "tun"};
  EXPECT_EQ(closest_match("keeplaive", keys), "keepalive");
  EXPECT_EQ(closest_match("coordinator", keys), "coordinators");
  EXPECT_EQ(closest_match("controlsocket", keys), "control_socket");
  EXPECT_EQ(closest_match("tap", keys), std::nullopt);
  EXPECT_EQ(closest_match("tnu", keys), "tun");
  EXPECT_EQ(closest_match("zzzzzzzzz", keys), std::nullopt);
}

TEST(ConfigError, WhatOmitsWhatIsUnknown) {
  EXPECT_STREQ(ConfigError("m.yaml", 7, 9, "tun.mtu", "bad").what(), "m.yaml:7:9: tun.mtu: bad");
  EXPECT_STREQ(ConfigError("m.yaml", 3, 1, "", "bad").what(), "m.yaml:3:1: bad");
  EXPECT_STREQ(ConfigError("m.yaml", 0, 0, "", "gone").what(), "m.yaml: gone");
}

TEST(ConfigUnits, Bits) {
  EXPECT_EQ(parse_bits("20mbit"), 20'000'000u);
  EXPECT_EQ(parse_bits("20Mbit"), 20'000'000u);
  EXPECT_EQ(parse_bits("1gbit"), 1'000'000'000u);
  EXPECT_EQ(parse_bits("7bit"), 7u);
  EXPECT_EQ(parse_bits("3kbit"), 3'000u);
  EXPECT_EQ(parse_bits("20"), std::nullopt);
  EXPECT_EQ(parse_bits("mbit"), std::nullopt);
  EXPECT_EQ(parse_bits("-1mbit"), std::nullopt);
  EXPECT_EQ(parse_bits("1.5mbit"), std::nullopt);
  EXPECT_EQ(parse_bits("20 mbit"), std::nullopt);
  EXPECT_EQ(parse_bits("20000000000gbit"), std::nullopt);  // overflows 64 bits
}

TEST(ConfigUnits, Durations) {
  EXPECT_EQ(parse_duration("25s"), std::chrono::milliseconds(25'000));
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("365d"), std::chrono::hours(365 * 24));
  EXPECT_EQ(parse_duration("2w"), std::chrono::hours(14 * 24));
  EXPECT_EQ(parse_duration("25"), std::nullopt);
  EXPECT_EQ(parse_duration("-5s"), std::nullopt);
  EXPECT_EQ(parse_duration("1.5s"), std::nullopt);
  EXPECT_EQ(parse_duration("5 s"), std::nullopt);
  EXPECT_EQ(parse_duration("99999999999999999w"), std::nullopt);
  EXPECT_EQ(format_duration(std::chrono::minutes(10)), "10m");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(std::chrono::hours(24)), "1d");
}

TEST(ConfigCommon, LogLevelNames) {
  EXPECT_EQ(to_string(LogLevel::trace), "trace");
  EXPECT_EQ(to_string(LogLevel::warn), "warn");
  EXPECT_EQ(to_string(LogLevel::off), "off");
}

// --- metrics: { listen: } in both files --------------------------------------------------------

TEST_F(ConfigTest, MetricsOffUnlessConfigured) {
  EXPECT_FALSE(mesh(kMeshBase).metrics.listen);
  EXPECT_FALSE(coordinator(kCoordinatorBase).metrics.listen);
}

TEST_F(ConfigTest, MetricsListenLoadsInBothFiles) {
  EXPECT_EQ(mesh(kMeshBase + "metrics: { listen: 127.0.0.1:9101 }\n").metrics.listen,
            Endpoint::parse("127.0.0.1:9101"));
  EXPECT_EQ(coordinator(kCoordinatorBase + "metrics:\n  listen: \"[::1]:9102\"\n").metrics.listen,
            Endpoint::parse("[::1]:9102"));
}

TEST_F(ConfigTest, MetricsErrorsNameLineAndKey) {
  expect_at(mesh_error(kMeshBase + "metrics: { listen: 127.0.0.1 }\n"), 7, 20, "metrics.listen",
            "");
  expect_at(coordinator_error(kCoordinatorBase + "metrics: { lisen: 127.0.0.1:9101 }\n"), 4, 12,
            "metrics.lisen", "listen");
  expect_at(mesh_error(kMeshBase + "metrics: {}\n"), 7, 10, "metrics.listen", "missing");
}

// --- port_mapping ------------------------------------------------------------------------------

TEST_F(ConfigTest, PortMappingIsOnByDefaultWithEveryProtocol) {
  auto c = mesh(kMeshBase);
  EXPECT_TRUE(c.port_mapping.enabled);
  EXPECT_EQ(c.port_mapping.protocols, (std::vector<std::string>{"pcp", "natpmp", "upnp"}));
  c = mesh(kMeshBase + "port_mapping: { enabled: false, protocols: [upnp, pcp] }\n");
  EXPECT_FALSE(c.port_mapping.enabled);
  EXPECT_EQ(c.port_mapping.protocols, (std::vector<std::string>{"upnp", "pcp"}));
}

TEST_F(ConfigTest, PortMappingErrorsNameLineAndKey) {
  auto e = mesh_error(kMeshBase + "port_mapping:\n  protocols: [pcp, igd]\n");
  EXPECT_EQ(e.line(), 8) << e.what();
  EXPECT_NE(e.key().find("port_mapping.protocols"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("natpmp"), std::string::npos) << e.what();
  e = mesh_error(kMeshBase + "port_mapping:\n  protocols: [pcp, pcp]\n");
  EXPECT_EQ(e.line(), 8) << e.what();
  EXPECT_NE(e.message().find("duplicate"), std::string::npos) << e.what();
  e = mesh_error(kMeshBase + "port_mapping:\n  protocols: []\n");
  EXPECT_EQ(e.key(), "port_mapping.protocols") << e.what();
  e = mesh_error(kMeshBase + "port_mapping:\n  enabled: yes\n");
  EXPECT_EQ(e.key(), "port_mapping.enabled") << e.what();
  e = mesh_error(kMeshBase + "port_mapping:\n  upnp: true\n");
  EXPECT_EQ(e.line(), 8) << e.what();
}

// --- performance: the offload switches ------------------------------------------------------

TEST_F(ConfigTest, PerformanceSwitchesDefaultOnAndTurnOff) {
  EXPECT_TRUE(mesh(kMeshBase).performance.tun_offload);
  EXPECT_FALSE(mesh(kMeshBase + "performance: { tun_offload: false }\n").performance.tun_offload);
  expect_at(mesh_error(kMeshBase + "performance: { tun_offload: maybe }\n"), 7, 29,
            "performance.tun_offload", "");
  expect_at(mesh_error(kMeshBase + "performance: { tun_ofload: false }\n"), 7, 16,
            "performance.tun_ofload", "tun_offload");
  EXPECT_TRUE(mesh(kMeshBase).performance.udp_gso);
  EXPECT_TRUE(mesh(kMeshBase).performance.udp_gro);
  auto off = mesh(kMeshBase + "performance: { udp_gso: false, udp_gro: false }\n").performance;
  EXPECT_FALSE(off.udp_gso);
  EXPECT_FALSE(off.udp_gro);
  EXPECT_TRUE(off.tun_offload);
  expect_at(mesh_error(kMeshBase + "performance:\n  udp_gso: true\n  udp_gro: 3\n"), 9, 12,
            "performance.udp_gro", "");
}

TEST_F(ConfigTest, CoordinatorPerformanceSwitchesDefaultOnAndTurnOff) {
  const auto on = coordinator(kCoordinatorBase).performance;
  EXPECT_TRUE(on.udp_gso);
  EXPECT_TRUE(on.udp_gro);
  auto off = coordinator(kCoordinatorBase + "performance: { udp_gso: false, udp_gro: false }\n")
                 .performance;
  EXPECT_FALSE(off.udp_gso);
  EXPECT_FALSE(off.udp_gro);
  EXPECT_FALSE(
      coordinator(kCoordinatorBase + "performance: { udp_gro: false }\n").performance.udp_gro);
  expect_at(coordinator_error(kCoordinatorBase + "performance:\n  udp_gso: true\n  udp_gro: 3\n"),
            6, 12, "performance.udp_gro", "");
  expect_at(coordinator_error(kCoordinatorBase + "performance: { tun_offload: false }\n"), 4, 16,
            "performance.tun_offload", "");
}

TEST_F(ConfigTest, PerformanceWorkersAutoOrACount) {
  EXPECT_EQ(mesh(kMeshBase).performance.workers, 0u);  // off unless asked for
  EXPECT_EQ(mesh(kMeshBase + "performance: { workers: auto }\n").performance.workers, std::nullopt);
  EXPECT_EQ(mesh(kMeshBase + "performance: { workers: 0 }\n").performance.workers, 0u);
  EXPECT_EQ(mesh(kMeshBase + "performance: { workers: 16 }\n").performance.workers, 16u);
  expect_at(mesh_error(kMeshBase + "performance: { workers: 17 }\n"), 7, 25, "performance.workers",
            "");
  expect_at(mesh_error(kMeshBase + "performance:\n  workers: many\n"), 8, 12, "performance.workers",
            "");
  expect_at(mesh_error(kMeshBase + "performance: { workers: \"auto\" }\n"), 7, 25,
            "performance.workers", "");
}

}  // namespace
}  // namespace p2p::config

// --- coordinator.yaml tcp: { main, assist, max_connections, per_source } -------------------------

namespace p2p::config {
namespace {

TEST_F(ConfigTest, TcpOffUnlessConfigured) {
  auto c = coordinator(kCoordinatorBase);
  EXPECT_FALSE(c.tcp.main);
  EXPECT_FALSE(c.tcp.assist);
}

TEST_F(ConfigTest, TcpPortsAndLimitsLoad) {
  auto c = coordinator(kCoordinatorBase +
                       "tcp:\n  main: 0.0.0.0:443\n  assist: \"[::]:7402\"\n"
                       "  max_connections: 100\n  per_source: 4\n");
  EXPECT_EQ(c.tcp.main, Endpoint::parse("0.0.0.0:443"));
  EXPECT_EQ(c.tcp.assist, Endpoint::parse("[::]:7402"));
  EXPECT_EQ(c.tcp.max_connections, 100u);
  EXPECT_EQ(c.tcp.per_source, 4u);
  EXPECT_EQ(coordinator(kCoordinatorBase + "tcp: { main: 0.0.0.0:443 }\n").tcp.max_connections,
            4096u);
}

TEST_F(ConfigTest, TcpErrorsNameLineAndKey) {
  expect_at(coordinator_error(kCoordinatorBase + "tcp: { assist: 0.0.0.0:7402 }\n"), 4, 6,
            "tcp.main", "missing");
  expect_at(
      coordinator_error(kCoordinatorBase + "tcp: { main: 1.2.3.4:443, assist: 1.2.3.4:443 }\n"), 4,
      35, "tcp.assist", "another port");
  expect_at(coordinator_error(kCoordinatorBase + "tcp: { main: 1.2.3.4:443, per_source: 0 }\n"), 4,
            39, "tcp.per_source", "");
}

// --- punch.birthday -----------------------------------------------------------------------------

TEST_F(ConfigTest, BirthdayPunchIsOnByDefaultWithItsCaps) {
  auto c = mesh(kMeshBase);
  EXPECT_TRUE(c.punch.birthday.enabled);
  EXPECT_EQ(c.punch.birthday.sockets, 256u);
  EXPECT_EQ(c.punch.birthday.probes_per_second, 200u);
  EXPECT_EQ(c.punch.birthday.max_probes, 1024u);
  c = mesh(kMeshBase +
           "punch: { birthday: { enabled: false, sockets: 64, probes_per_second: 50, "
           "max_probes: 300 } }\n");
  EXPECT_FALSE(c.punch.birthday.enabled);
  EXPECT_EQ(c.punch.birthday.sockets, 64u);
  EXPECT_EQ(c.punch.birthday.probes_per_second, 50u);
  EXPECT_EQ(c.punch.birthday.max_probes, 300u);
}

TEST_F(ConfigTest, BirthdayPunchErrorsNameLineAndKey) {
  auto e = mesh_error(kMeshBase + "punch:\n  birthday:\n    sockets: 5000\n");
  EXPECT_EQ(e.line(), 9) << e.what();
  EXPECT_EQ(e.key(), "punch.birthday.sockets") << e.what();
  e = mesh_error(kMeshBase + "punch:\n  birthday:\n    probes_per_second: 0\n");
  EXPECT_EQ(e.line(), 9) << e.what();
  EXPECT_EQ(e.key(), "punch.birthday.probes_per_second") << e.what();
  e = mesh_error(kMeshBase + "punch:\n  birthday:\n    max_probes: 100000\n");
  EXPECT_EQ(e.key(), "punch.birthday.max_probes") << e.what();
  e = mesh_error(kMeshBase + "punch:\n  birthday:\n    enabled: yes\n");
  EXPECT_EQ(e.key(), "punch.birthday.enabled") << e.what();
  e = mesh_error(kMeshBase + "punch:\n  birthday:\n    socket: 10\n");
  EXPECT_EQ(e.line(), 9) << e.what();
  EXPECT_NE(e.message().find("sockets"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace p2p::config

// --- mesh.yaml peers[].transport and punch.tcp_assist ---------------------------------------

namespace p2p::config {
namespace {

TEST_F(ConfigTest, PeerTransportLoads) {
  auto c = mesh(kMeshBase +
                "peers:\n  - { name: a, transport: tcp }\n  - { name: b, force: direct, "
                "transport: udp }\n  - { vip: 10.0.0.1, force: relay }\n"
                "  - { name: c, transport: auto }\n");
  ASSERT_EQ(c.peers.size(), 4u);
  EXPECT_EQ(c.peers[0].transport, PeerTransport::tcp);
  EXPECT_FALSE(c.peers[0].force);
  EXPECT_EQ(c.peers[1].transport, PeerTransport::udp);
  EXPECT_EQ(c.peers[1].force, ForcedPath::direct);
  EXPECT_EQ(c.peers[2].transport, PeerTransport::automatic);
  EXPECT_EQ(c.peers[3].transport, PeerTransport::automatic);
  EXPECT_FALSE(c.punch.tcp_assist);
}

TEST_F(ConfigTest, PeerTransportErrorsNameLineAndKey) {
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: a, transport: quic }\n"), 8, 27,
            "peers[0].transport", "");
  expect_at(mesh_error(kMeshBase + "peers:\n  - { name: a, force: relay }\n"
                                   "  - { name: b }\n"),
            9, 5, "peers[1].force", "missing required key");
}

TEST_F(ConfigTest, TcpAssistPort) {
  EXPECT_EQ(mesh(kMeshBase + "punch: { tcp_assist: 7402 }\n").punch.tcp_assist, 7402);
  expect_at(mesh_error(kMeshBase + "punch: { tcp_assist: 0 }\n"), 7, 22, "punch.tcp_assist", "");
  expect_at(mesh_error(kMeshBase + "punch:\n  tcp_assist: 70000\n"), 8, 15, "punch.tcp_assist", "");
}

}  // namespace
}  // namespace p2p::config
