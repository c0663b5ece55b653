// Birthday punching between whole nodes in the simulated network: a port-restricted cone and a
// symmetric NAT with random ports (seeded) go direct over a socket the symmetric side opened
// and adopted; the caps hold on the wire (sockets open at once, probes per second, probes per
// attempt); the punch stops at the first hit; a miss leaves the pair on the relay with traffic
// flowing, and the next attempt waits for the back-off.
#include <gtest/gtest.h>

#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

std::optional<core::PeerStatus> peer(SimNode& n, SimNet& net, Ipv4 vip) {
  return peer_status(n.node().status(net.now()), vip);
}

// a behind a port-restricted cone (198.51.100.1), b behind a symmetric NAT with random ports
// (198.51.100.2); both have run NAT discovery and registered.
struct Lab {
  SimNet net;
  TestCa ca{net.unix_now()};
  Endpoint coordinator = ep("203.0.113.10:7400");
  core::NodeSettings settings;
  SimNode* a = nullptr;
  SimNode* b = nullptr;
  // Probes leaving each NAT towards the other (birthday probes and path probes alike).
  std::size_t datagrams_a_to_b = 0, datagrams_b_to_a = 0;
  std::vector<Time> b_to_a_times;

  explicit Lab(std::uint64_t seed, core::BirthdaySettings birthday = {}) : net(seed) {
    net.add_coordinator(coordinator, ip("203.0.113.11"),
                        ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert);
    settings.coordinators = {coordinator};
    settings.birthday = birthday;
    int na = net.add_nat(ip("198.51.100.1"), NatModel::port_restricted());
    int nb = net.add_nat(ip("198.51.100.2"), NatModel::symmetric(Allocation::kRandom));
    a = &net.add_node("a", na, ep("192.168.1.2:41000"), ca.issue("a", "10.77.0.2/24"), ca.cert,
                      settings);
    b = &net.add_node("b", nb, ep("192.168.2.2:41000"), ca.issue("b", "10.77.0.3/24"), ca.cert,
                      settings);
    a->discover(coordinator);
    b->discover(coordinator);
    net.tap = [this](const SimNet::Tapped& t) {
      if (t.from.address == IpAddress{ip("198.51.100.1")} &&
          t.to.address == IpAddress{ip("198.51.100.2")})
        ++datagrams_a_to_b;
      if (t.from.address == IpAddress{ip("198.51.100.2")} &&
          t.to.address == IpAddress{ip("198.51.100.1")}) {
        ++datagrams_b_to_a;
        b_to_a_times.push_back(t.at);
      }
    };
  }
  bool ready() {
    return net.run_until(
        [&] {
          return a->node().registered() && b->node().registered() && a->nat_report() &&
                 b->nat_report();
        },
        20s);
  }
  bool reach(SimNode& from, SimNode& to, const std::string& text) {
    for (int i = 0; i < 50; ++i) {
      from.send_udp_to(to.vip(), text);
      if (net.run_until([&] { return received(to, text); }, 200ms)) return true;
    }
    return false;
  }
  bool direct() {
    auto pa = peer(*a, net, b->vip());
    auto pb = peer(*b, net, a->vip());
    return pa && pb && pa->path == "direct" && pb->path == "direct";
  }
};

TEST(SimBirthday, ConeAndRandomSymmetricGoDirectOverAnAdoptedSocket) {
  Lab lab(7);
  ASSERT_TRUE(lab.ready()) << lab.net.trace_tail();
  ASSERT_EQ(lab.b->node().status(lab.net.now()).nat.allocation, wire::PortAllocation::kRandom);
  ASSERT_TRUE(lab.reach(*lab.a, *lab.b, "a->b"));
  EXPECT_TRUE(lab.net.run_until([&] { return lab.direct(); }, 12s)) << lab.net.trace_tail(60);
  auto pa = peer(*lab.a, lab.net, lab.b->vip());
  auto pb = peer(*lab.b, lab.net, lab.a->vip());
  EXPECT_EQ(pa->punch_method, "birthday");
  EXPECT_EQ(pb->punch_method, "birthday");
  // The symmetric side kept one extra socket and closed the others at once.
  ASSERT_EQ(lab.b->adopted.size(), 1u);
  EXPECT_EQ(lab.b->open_extra_sockets(), 1u);
  EXPECT_EQ(lab.a->extra_sockets_opened, 0u);  // the cone side needs none
  EXPECT_LE(lab.b->peak_extra_sockets, 256u);
  // Both counted an attempt and a hit, and the probes stopped there: within the caps.
  const auto ca = lab.a->node().status(lab.net.now()).counters;
  const auto cb = lab.b->node().status(lab.net.now()).counters;
  EXPECT_EQ(ca.birthday_attempts, 1u);
  EXPECT_EQ(cb.birthday_attempts, 1u);
  EXPECT_EQ(ca.birthday_successes + cb.birthday_successes, 2u);
  EXPECT_LE(ca.birthday_probes, 1024u);
  EXPECT_LE(cb.birthday_probes, 1024u);
  const auto probes_then = ca.birthday_probes + cb.birthday_probes;
  lab.net.run_for(30s);
  EXPECT_EQ(lab.a->node().status(lab.net.now()).counters.birthday_probes +
                lab.b->node().status(lab.net.now()).counters.birthday_probes,
            probes_then);
  // Traffic flows on the adopted path both ways, and it stays direct.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(lab.reach(*lab.a, *lab.b, "ping " + std::to_string(i)));
    ASSERT_TRUE(lab.reach(*lab.b, *lab.a, "pong " + std::to_string(i)));
  }
  EXPECT_TRUE(lab.direct());
  EXPECT_EQ(peer(*lab.b, lab.net, lab.a->vip())->endpoint,
            lab.a->node().status(lab.net.now()).public_endpoint);
}

TEST(SimBirthday, TheCapsHoldOnTheWire) {
  // Few sockets, so that the attempt misses and runs to its end: every cap is reached.
  Lab lab(3, core::BirthdaySettings{true, 4, 50, 120});
  ASSERT_TRUE(lab.ready());
  ASSERT_TRUE(lab.reach(*lab.a, *lab.b, "a->b"));
  lab.net.run_for(15s);
  const auto ca = lab.a->node().status(lab.net.now()).counters;
  const auto cb = lab.b->node().status(lab.net.now()).counters;
  ASSERT_EQ(cb.birthday_attempts, 1u);
  EXPECT_LE(lab.b->peak_extra_sockets, 4u);
  EXPECT_LE(ca.birthday_probes, 120u);
  EXPECT_LE(cb.birthday_probes, 120u);
  // From b's NAT to a's: its probes, at most 50 in any second (plus a few path probes).
  for (std::size_t i = 0; i < lab.b_to_a_times.size(); ++i) {
    std::size_t n = 0;
    for (std::size_t j = i;
         j < lab.b_to_a_times.size() && lab.b_to_a_times[j] - lab.b_to_a_times[i] < 1s; ++j)
      ++n;
    EXPECT_LE(n, 50u + core::BirthdayPunch::kBurst + 8) << "from datagram " << i;
  }
  EXPECT_LE(lab.datagrams_b_to_a, 120u + 40u);
  EXPECT_LE(lab.datagrams_a_to_b, 120u + 40u);
}

TEST(SimBirthday, AMissStaysOnTheRelayAndBacksOff) {
  // One socket, a handful of ports: a miss (for this seed), then the back-off.
  Lab lab(5, core::BirthdaySettings{true, 1, 100, 8});
  ASSERT_TRUE(lab.ready());
  ASSERT_TRUE(lab.reach(*lab.a, *lab.b, "a->b"));
  lab.net.run_for(20s);
  EXPECT_FALSE(lab.direct());
  auto pa = peer(*lab.a, lab.net, lab.b->vip());
  EXPECT_EQ(pa->path, "relay");
  EXPECT_EQ(pa->punch_method, "birthday");
  EXPECT_EQ(lab.b->open_extra_sockets(), 0u);  // closed when the attempt ended
  EXPECT_EQ(lab.b->node().status(lab.net.now()).counters.birthday_attempts, 1u);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(lab.reach(*lab.b, *lab.a, "relayed " + std::to_string(i)));
  // Plain punching retries after 15 s, 30 s, ...; no birthday attempt before a minute passed.
  lab.net.run_for(35s);
  EXPECT_EQ(lab.b->node().status(lab.net.now()).counters.birthday_attempts, 1u);
  lab.net.run_for(120s);
  EXPECT_GE(lab.b->node().status(lab.net.now()).counters.birthday_attempts, 2u);
  EXPECT_LE(lab.b->node().status(lab.net.now()).counters.birthday_attempts, 3u);
}

TEST(SimBirthday, DisabledLeavesThePairOnTheRelay) {
  Lab lab(7, core::BirthdaySettings{false, 256, 200, 1024});
  ASSERT_TRUE(lab.ready());
  ASSERT_TRUE(lab.reach(*lab.a, *lab.b, "a->b"));
  lab.net.run_for(15s);
  EXPECT_FALSE(lab.direct());
  EXPECT_EQ(peer(*lab.a, lab.net, lab.b->vip())->punch_method, "plain");
  EXPECT_EQ(lab.b->extra_sockets_opened, 0u);
}

}  // namespace
}  // namespace p2p::sim
