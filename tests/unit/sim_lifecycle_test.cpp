// A running node and coordinator changed as a whole, on the virtual clock: a node leaving
// (Goodbye to its peers and the coordinator), a reload of policies, revocations and limits
// without dropping sessions, pings of targets no peer row exists for, and certificate
// lifetimes in status.
#include <gtest/gtest.h>

#include "crypto/cert_lifetime.hpp"
#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

struct World {
  SimNet net{11};
  TestCa ca{net.unix_now()};
  SimCoordinator* coord = nullptr;
  core::NodeSettings settings;

  World() {
    coord = &net.add_coordinator(ep("203.0.113.10:7400"), ip("203.0.113.11"),
                                 ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator),
                                 ca.cert, coord::CoordinatorSettings{});
    settings.coordinators = {ep("203.0.113.10:7400")};
  }
  SimNode& node(const std::string& name, const char* vip, const char* socket) {
    return net.add_node(name, -1, ep(socket), ca.issue(name, vip), ca.cert, settings);
  }
  // a and b registered, connected and on a direct path.
  std::pair<SimNode*, SimNode*> connected_pair() {
    auto& a = node("a", "10.77.0.2/24", "198.51.100.2:5000");
    auto& b = node("b", "10.77.0.3/24", "198.51.100.3:5000");
    EXPECT_TRUE(net.run_until([&] { return a.node().registered() && b.node().registered(); }, 10s));
    a.send_udp_to(b.vip(), "hello");
    EXPECT_TRUE(net.run_until(
        [&] {
          auto p = peer_status(a.node().status(net.now()), "b");
          auto q = peer_status(b.node().status(net.now()), "a");
          return p && p->path == "direct" && q && q->path == "direct";
        },
        10s))
        << net.trace_tail();
    return {&a, &b};
  }
  std::string state_of(SimNode& n, const std::string& peer) {
    auto p = peer_status(n.node().status(net.now()), peer);
    return p ? p->state : "(no row)";
  }
};

TEST(SimLifecycle, GoodbyeDropsTheSessionAtOnceAndUnregisters) {
  World w;
  auto [a, b] = w.connected_pair();
  ASSERT_EQ(w.coord->core().status(w.net.now()).nodes.size(), 2u);
  a->node().stop(w.net.now());
  w.net.remove_node("a");  // as p2pvpnd exits: nothing drives it any more
  // One one-way latency (20 ms), not a timeout.
  ASSERT_TRUE(w.net.run_until([&] { return w.state_of(*b, "a") == "gone"; }, 100ms))
      << w.net.trace_tail();
  auto p = peer_status(b->node().status(w.net.now()), "a");
  EXPECT_EQ(p->path, "none");
  // The coordinator's Goodbye left at the same moment.
  EXPECT_TRUE(
      w.net.run_until([&] { return w.coord->core().status(w.net.now()).nodes.size() == 1; }, 10ms));
}

TEST(SimLifecycle, GoodbyeCrossesTheRelayToo) {
  World w;
  w.settings.policies = {{ip("10.77.0.2"), core::Force::kRelay},
                         {ip("10.77.0.3"), core::Force::kRelay}};
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.net.run_until([&] { return a.node().registered() && b.node().registered(); }, 10s));
  a.send_udp_to(b.vip(), "hello");
  ASSERT_TRUE(w.net.run_until(
      [&] { return w.state_of(b, "a") == "connected" && w.state_of(a, "b") == "connected"; }, 5s));
  a.node().stop(w.net.now());
  w.net.remove_node("a");
  ASSERT_TRUE(w.net.run_until([&] { return w.state_of(b, "a") == "gone"; }, 200ms))
      << w.net.trace_tail();
}

TEST(SimLifecycle, ReloadedPolicyMovesAPeerToTheRelayWithoutANewHandshake) {
  World w;
  auto [a, b] = w.connected_pair();
  const auto handshakes = a->node().status(w.net.now()).counters.handshakes_completed;
  core::NodeSettings next = w.settings;
  next.policies = {{std::string("b"), core::Force::kRelay}};
  a->node().reconfigure(w.net.now(), next);
  auto p = peer_status(a->node().status(w.net.now()), "b");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "relay");
  EXPECT_EQ(p->state, "connected");
  b->tun_out.clear();
  a->send_udp_to(b->vip(), "over the relay");
  ASSERT_TRUE(w.net.run_until([&] { return !b->tun_out.empty(); }, 1s));
  EXPECT_EQ(a->node().status(w.net.now()).counters.handshakes_completed, handshakes);

  // And back: the policy gone, punching finds the direct path again.
  a->node().reconfigure(w.net.now(), w.settings);
  ASSERT_TRUE(w.net.run_until(
      [&] {
        auto q = peer_status(a->node().status(w.net.now()), "b");
        return q && q->path == "direct";
      },
      10s));
}

TEST(SimLifecycle, ReloadedRevocationCutsTheSession) {
  World w;
  auto [a, b] = w.connected_pair();
  core::NodeSettings next = w.settings;
  next.revoked = {crypto::fingerprint(b->node().certificate())};
  a->node().reconfigure(w.net.now(), next);
  EXPECT_EQ(w.state_of(*a, "10.77.0.3"), "refused");

  // The coordinator's reload: the revoked node is told and forgotten.
  coord::CoordinatorSettings cs;
  cs.revoked = next.revoked;
  w.coord->core().reconfigure(w.net.now(), cs);
  auto nodes = w.coord->core().status(w.net.now()).nodes;
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].name, "a");
  ASSERT_TRUE(w.net.run_until([&] { return !b->node().registered(); }, 1s));
}

TEST(SimLifecycle, PingOfAnUnknownTargetSaysSoAndLeavesNoRow) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  ASSERT_TRUE(w.net.run_until([&] { return a.node().registered(); }, 10s));
  std::vector<std::string> answers;
  auto record = [&](std::optional<Duration> rtt, std::string how) {
    EXPECT_FALSE(rtt);
    answers.push_back(std::move(how));
  };
  a.node().ping(w.net.now(), std::string("nobody"), record);
  a.node().ping(w.net.now(), ip("10.77.0.99"), record);
  ASSERT_TRUE(w.net.run_until([&] { return answers.size() == 2; }, 3s));
  for (const auto& how : answers) EXPECT_TRUE(how.starts_with(core::kUnknownPeer)) << how;
  EXPECT_TRUE(a.node().status(w.net.now()).peers.empty());
  w.net.run_for(20s);
  EXPECT_TRUE(a.node().status(w.net.now()).peers.empty());

  // The coordinator's certificate is known, so the shell can refuse its virtual IP at once.
  ASSERT_TRUE(a.node().coordinator_certificate());
  EXPECT_EQ(a.node().coordinator_certificate()->vip.address, ip("10.77.0.1"));
}

TEST(SimLifecycle, PingOfANodeFoundByNameStartsTheHandshake) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.net.run_until([&] { return a.node().registered() && b.node().registered(); }, 10s));
  std::optional<std::string> answer;
  a.node().ping(w.net.now(), std::string("b"),
                [&](std::optional<Duration>, std::string how) { answer = how; });
  ASSERT_TRUE(w.net.run_until([&] { return answer.has_value(); }, 3s));
  EXPECT_NE(answer->find("found, handshake started"), std::string::npos) << *answer;
  ASSERT_TRUE(w.net.run_until([&] { return w.state_of(a, "b") == "connected"; }, 3s));
}

TEST(SimLifecycle, StatusWarnsBeforeTheCertificateExpiresAndSaysWhenItHas) {
  SimNet net{3};
  TestCa ca{net.unix_now()};
  const UnixTime now = net.unix_now();
  auto soon = ca.issue("soon", "10.77.0.5/24", crypto::Role::node, now - 60, now + 10 * 86400);
  const crypto::Certificate cert = soon.certificate;
  auto notices = crypto::lifetime_notices(cert, ca.cert, now);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_FALSE(notices[0].expired);
  EXPECT_NE(notices[0].text.find("expires in 10 days"), std::string::npos) << notices[0].text;
  EXPECT_NE(notices[0].text.find("--renew"), std::string::npos);
  notices = crypto::lifetime_notices(cert, ca.cert, now + 11 * 86400);
  ASSERT_GE(notices.size(), 1u);
  EXPECT_TRUE(notices[0].expired);
  EXPECT_NE(notices[0].text.find("expired"), std::string::npos);
  EXPECT_TRUE(crypto::lifetime_notices(cert, ca.cert, now - 30 * 86400).empty());

  core::NodeSettings settings;
  auto& n = net.add_node("soon", -1, ep("198.51.100.5:5000"), std::move(soon), ca.cert, settings);
  auto st = n.node().status(net.now());
  EXPECT_FALSE(st.certificates.expired);
  ASSERT_EQ(st.certificates.warnings.size(), 1u);
  EXPECT_FALSE(st.certificates.not_after.empty());
}

}  // namespace
}  // namespace p2p::sim
