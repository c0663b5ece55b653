// TCP direct paths as the Node drives them, on the simulated network (virtual clock): two
// port-restricted cones whose UDP to each other is dropped (UDP to the coordinator still gets
// through) end on a direct TCP path; a NAT that answers an early SYN with a RST as well; a
// TCP path that dies falls back to the relay and is punched again; UDP that starts working
// takes over; `transport: udp` never punches TCP and `transport: tcp` skips UDP.
// The punch port and the streams are tests/support/sim_streams.hpp.
#include <gtest/gtest.h>

#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"
#include "tests/support/sim_streams.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

struct TcpLab {
  SimNet net{21};
  TestCa ca{net.unix_now()};
  Endpoint coordinator = ep("203.0.113.10:7400");
  core::NodeSettings settings;
  SimCoordinator* coord = nullptr;
  std::unique_ptr<SimStreams> streams;
  SimNode* a = nullptr;
  SimNode* b = nullptr;
  bool udp_between_nats_blocked = true;
  int nat_a = -1;

  // `a_udp_blocked`: a's network drops all UDP, so a registers over the coordinator's TCP
  // main port (443).
  explicit TcpLab(core::TransportPolicy a_policy = core::TransportPolicy::kAuto,
                  bool a_udp_blocked = false) {
    coord =
        &net.add_coordinator(coordinator, ip("203.0.113.11"),
                             ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert);
    streams = std::make_unique<SimStreams>(net, *coord);
    settings.coordinators = {coordinator};
    settings.tcp_assist = 7402;
    if (a_udp_blocked) {
      coord->listen_tcp(443);
      settings.coordinator_tcp = {443};
    }
    // UDP between the nodes is dropped, both ways; the coordinator (203.0.113.10 and .11) is
    // still reachable over UDP.
    net.drop_udp = [this](const Endpoint& from, const Endpoint& to) {
      auto is_coord = [](const Endpoint& e) {
        return e.address == IpAddress{ip("203.0.113.10")} ||
               e.address == IpAddress{ip("203.0.113.11")};
      };
      return udp_between_nats_blocked && !is_coord(from) && !is_coord(to);
    };
    int na = net.add_nat(ip("198.51.100.1"), NatModel::port_restricted());
    int nb = net.add_nat(ip("198.51.100.2"), NatModel::port_restricted());
    if (a_udp_blocked) net.set_blocked(na, true);
    nat_a = na;
    auto sa = settings;
    sa.policies = {core::PeerPolicy{std::string("b"), core::Force::kAuto, a_policy}};
    a = &net.add_node("a", na, ep("192.168.1.2:41000"), ca.issue("a", "10.77.0.2/24"), ca.cert, sa);
    b = &net.add_node("b", nb, ep("192.168.2.2:41000"), ca.issue("b", "10.77.0.3/24"), ca.cert,
                      settings);
    streams->attach(*a, ip("198.51.100.1"));
    streams->attach(*b, ip("198.51.100.2"));
    EXPECT_TRUE(net.run_until([&] { return a->node().registered() && b->node().registered(); },
                              a_udp_blocked ? 20s : 10s));
  }
  std::optional<core::PeerStatus> peer(SimNode& n, Ipv4 vip) {
    return peer_status(n.node().status(net.now()), vip);
  }
  // Both sides' path to each other is `path` ("direct"/"relay") over `transport` ("" for relay).
  bool on(const char* path, const char* transport) {
    auto pa = peer(*a, b->vip());
    auto pb = peer(*b, a->vip());
    return pa && pb && pa->path == path && pb->path == path && pa->transport == transport &&
           pb->transport == transport;
  }
  // Keeps traffic flowing (every 200 ms a->b) until `done` or `limit`; the time it took.
  std::optional<Duration> run_with_traffic(const std::function<bool()>& done, Duration limit) {
    Time t0 = net.now();
    for (int i = 0; net.now() - t0 < limit; ++i) {
      a->send_udp_to(b->vip(), "ping" + std::to_string(i));
      if (net.run_until(done, 200ms)) return net.now() - t0;
    }
    return std::nullopt;
  }
  bool delivers(const std::string& text) {
    a->send_udp_to(b->vip(), text);
    return net.run_until([&] { return received(*b, text); }, 2s);
  }
};

TEST(TcpPathSim, UdpDroppedBetweenConesGivesADirectTcpPath) {
  TcpLab lab;
  auto t = lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 60s);
  ASSERT_TRUE(t) << lab.net.trace_tail();
  EXPECT_LT(*t, 20s);  // one UDP punch round (10 s) and the TCP punch
  EXPECT_TRUE(lab.delivers("over tcp"));
  EXPECT_GT(lab.streams->frames, 0u);
  EXPECT_EQ(lab.streams->open_streams(), 1u);
  auto pa = lab.peer(*lab.a, lab.b->vip());
  ASSERT_TRUE(pa);
  ASSERT_FALSE(pa->candidates.empty());
  EXPECT_EQ(pa->candidates.back().transport, "tcp");
  // Stable: still on it a minute later, with probes over the stream answered.
  lab.run_with_traffic([] { return false; }, 60s);
  EXPECT_TRUE(lab.on("direct", "tcp"));
  EXPECT_EQ(lab.streams->open_streams(), 1u);
}

TEST(TcpPathSim, AUdpBlockedNodePunchesTcpWithoutAUdpRound) {
  TcpLab lab(core::TransportPolicy::kAuto, true);
  ASSERT_EQ(lab.a->node().status(lab.net.now()).coordinator_transport, "tcp");
  auto t = lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 60s);
  ASSERT_TRUE(t) << lab.net.trace_tail();
  // UDP cannot work from a's network, so the TCP punch starts at once rather than after the
  // UDP punch round (10 s): the introduction, the assist exchange and the handshake.
  EXPECT_LT(*t, 3s);
  EXPECT_TRUE(lab.delivers("from a udp-blocked network"));
  // A while on the TCP path: the background UDP rounds fail and back off (15, 30, 60 s...).
  lab.run_with_traffic([] { return false; }, 100s);
  ASSERT_TRUE(lab.on("direct", "tcp"));
  // UDP comes back: once a's coordinator answers over UDP again, the pair moves to UDP at
  // once rather than after what is left of the backoff.
  lab.net.set_blocked(lab.nat_a, false);
  lab.udp_between_nats_blocked = false;
  auto over_udp = [&] {
    return lab.a->node().status(lab.net.now()).coordinator_transport == "udp";
  };
  ASSERT_TRUE(lab.run_with_traffic(over_udp, 40s)) << lab.net.trace_tail();
  auto moved = lab.run_with_traffic([&] { return lab.on("direct", "udp"); }, 60s);
  ASSERT_TRUE(moved) << lab.net.trace_tail();
  EXPECT_LT(*moved, 3s);
  EXPECT_TRUE(lab.delivers("back on udp"));
}

TEST(TcpPathSim, NatsThatResetEarlySynsStillGiveATcpPath) {
  TcpLab lab;
  lab.streams->rst = true;
  // b's SYNs leave 100 ms late: a's first SYN meets b's NAT before b's own has opened it, is
  // answered with a RST and dies; only a's retry (or a later one) can complete the open.
  lab.streams->delay_syns(*lab.b, 100ms);
  ASSERT_TRUE(lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 60s))
      << lab.net.trace_tail();
  EXPECT_GT(lab.streams->resets, 0u);
  EXPECT_GT(lab.streams->syns, 2u);  // more than one SYN each way: the reset one was retried
  EXPECT_TRUE(lab.delivers("after resets"));
}

TEST(TcpPathSim, NoTcpThroughTheNatsStaysOnTheRelay) {
  TcpLab lab;
  lab.streams->blocked = true;
  lab.run_with_traffic([] { return false; }, 40s);
  EXPECT_TRUE(lab.on("relay", ""));
  EXPECT_GT(lab.streams->syns, 0u);
  EXPECT_EQ(lab.streams->open_streams(), 0u);
  EXPECT_TRUE(lab.delivers("relayed"));
}

TEST(TcpPathSim, ADeadTcpPathFallsBackToTheRelayAndIsPunchedAgain) {
  TcpLab lab;
  ASSERT_TRUE(lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 60s));
  lab.streams->kill();
  ASSERT_TRUE(lab.net.run_until([&] { return lab.on("relay", ""); }, 1s));
  EXPECT_TRUE(lab.delivers("relayed meanwhile"));
  auto t = lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 30s);
  ASSERT_TRUE(t) << lab.net.trace_tail();
  EXPECT_TRUE(lab.delivers("over the new stream"));
}

TEST(TcpPathSim, UdpThatStartsWorkingTakesOver) {
  TcpLab lab;
  ASSERT_TRUE(lab.run_with_traffic([&] { return lab.on("direct", "tcp"); }, 60s));
  lab.udp_between_nats_blocked = false;
  // UDP is retried in the background at the punch backoff (15 s, then doubling).
  auto t = lab.run_with_traffic([&] { return lab.on("direct", "udp"); }, 120s);
  ASSERT_TRUE(t) << lab.net.trace_tail();
  // Nothing lost on the way: the session is the same whatever carries it.
  EXPECT_TRUE(lab.delivers("over udp"));
}

TEST(TcpPathSim, PolicyUdpNeverPunchesTcp) {
  TcpLab lab(core::TransportPolicy::kUdp);
  lab.run_with_traffic([] { return false; }, 60s);
  EXPECT_TRUE(lab.on("relay", ""));
  EXPECT_EQ(lab.streams->syns, 0u);
}

TEST(TcpPathSim, PolicyTcpSkipsUdp) {
  TcpLab lab(core::TransportPolicy::kTcp);
  lab.udp_between_nats_blocked = false;  // UDP would work; the policy says TCP
  auto t = lab.run_with_traffic(
      [&] {
        auto pa = lab.peer(*lab.a, lab.b->vip());
        return pa && pa->path == "direct" && pa->transport == "tcp";
      },
      30s);
  ASSERT_TRUE(t) << lab.net.trace_tail();
  EXPECT_LT(*t, 5s);  // no UDP punch round first
  EXPECT_TRUE(lab.delivers("over tcp by policy"));
}

}  // namespace
}  // namespace p2p::sim
