// Reloading mesh.yaml and coordinator.yaml: which changed keys apply while running, which are
// named as needing a restart (and stay as they run), and an invalid file's error with its
// file, line and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/reload.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::config {
namespace {

namespace fs = std::filesystem;

class ConfigReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto name : {"node.key", "coord.key"}) write(name, "k", fs::perms::owner_read);
    for (auto name : {"node.crt", "ca.crt", "coord.crt"}) write(name, "c", fs::perms::owner_read);
  }
  void write(const std::string& name, const std::string& text,
             fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
    const auto p = dir_ / name;
    if (fs::exists(p)) fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
    std::ofstream(p) << text;
    fs::permissions(p, mode);
  }
  test::TempDir temp_{"p2p-reload"};
  const fs::path& dir_ = temp_.path();
};

const std::string kMesh =
    "node: { key: node.key, cert: node.crt }\n"
    "ca: ca.crt\n"
    "coordinators: [203.0.113.10:7400]\n";

TEST_F(ConfigReloadTest, MeshRuntimeKeysApplyOthersNeedRestart) {
  write("mesh.yaml", kMesh);
  MeshConfig running = load_mesh_config(dir_ / "mesh.yaml");
  write("mesh.yaml", kMesh +
                         "log: { level: debug }\n"
                         "peers: [{ name: laptop, force: relay }]\n"
                         "revoked: [" +
                         std::string(64, 'a') +
                         "]\n"
                         "limits: { max_peers: 10 }\n"
                         "listen: { port: 5555 }\n"
                         "tun: { name: p2p9 }\n");
  auto plan = reload_file(running, load_mesh_config);
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_EQ(plan->applied, (std::vector<std::string>{"log", "revoked", "peers", "limits"}));
  EXPECT_EQ(plan->needs_restart, (std::vector<std::string>{"tun", "listen"}));
  EXPECT_EQ(running.log.level, LogLevel::debug);
  ASSERT_EQ(running.peers.size(), 1u);
  EXPECT_EQ(running.limits.max_peers, 10u);
  EXPECT_EQ(running.listen.port, 0);  // stays as it runs
  EXPECT_EQ(running.tun.name, "p2p0");
  EXPECT_EQ(plan->summary(),
            "applied: log, revoked, peers, limits; needs restart (ignored): tun, listen");

  // Again with the same file: the restart-only keys are named again, nothing else.
  auto again = reload_file(running, load_mesh_config);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->needs_restart, (std::vector<std::string>{"tun", "listen"}));
}

TEST_F(ConfigReloadTest, InvalidFileKeepsTheRunningOneAndNamesFileLineKey) {
  write("mesh.yaml", kMesh + "log: { level: debug }\n");
  MeshConfig running = load_mesh_config(dir_ / "mesh.yaml");
  write("mesh.yaml", kMesh + "log: { level: loud }\n");
  auto plan = reload_file(running, load_mesh_config);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().find((dir_ / "mesh.yaml").string() + ":4"), std::string::npos)
      << plan.error();
  EXPECT_NE(plan.error().find("log.level"), std::string::npos) << plan.error();
  EXPECT_EQ(running.log.level, LogLevel::debug);
}

TEST_F(ConfigReloadTest, UnchangedFileHasNoChanges) {
  write("mesh.yaml", kMesh);
  MeshConfig running = load_mesh_config(dir_ / "mesh.yaml");
  auto plan = reload_file(running, load_mesh_config);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->summary(), "no changes");
}

TEST_F(ConfigReloadTest, CoordinatorRuntimeKeysApplyOthersNeedRestart) {
  const std::string base = "key: coord.key\ncert: coord.crt\nca: ca.crt\n";
  write("coordinator.yaml", base);
  CoordinatorConfig running = load_coordinator_config(dir_ / "coordinator.yaml");
  write("coordinator.yaml", base +
                                "relay: { rate_limit: 1mbit }\n"
                                "limits: { lookup_rate: 3 }\n"
                                "listen: 0.0.0.0:7500\n"
                                "node_timeout: 30s\n");
  auto plan = reload_file(running, load_coordinator_config);
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_EQ(plan->applied, (std::vector<std::string>{"relay", "limits"}));
  EXPECT_EQ(plan->needs_restart, (std::vector<std::string>{"listen", "node_timeout"}));
  EXPECT_EQ(running.relay.rate_limit, 1'000'000u / 8);
  EXPECT_EQ(running.limits.lookup_rate, 3u);
  EXPECT_EQ(running.listen.port, 7400);
}

TEST_F(ConfigReloadTest, CoordinatorOffloadSwitchesNeedRestart) {
  const std::string base = "key: coord.key\ncert: coord.crt\nca: ca.crt\n";
  write("coordinator.yaml", base);
  CoordinatorConfig running = load_coordinator_config(dir_ / "coordinator.yaml");
  write("coordinator.yaml", base + "performance: { udp_gro: false }\n");
  auto plan = reload_file(running, load_coordinator_config);
  ASSERT_TRUE(plan) << plan.error();
  EXPECT_TRUE(plan->applied.empty());
  EXPECT_EQ(plan->needs_restart, (std::vector<std::string>{"performance"}));
  EXPECT_TRUE(running.performance.udp_gro);  // the sockets keep what they were opened with
}

}  // namespace
}  // namespace p2p::config
