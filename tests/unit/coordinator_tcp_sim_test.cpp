// The coordinator link's TCP carrier in the simulated network (coordinator_link.hpp): a node
// whose network drops all UDP registers over the coordinator's TCP main port within a bounded
// time, its relayed traffic flows over that connection both ways (to a node on UDP), it moves
// back to UDP when UDP answers again, and a connection that dies is opened again.
#include <gtest/gtest.h>

#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

struct Lab {
  SimNet net;
  TestCa ca{net.unix_now()};
  Endpoint coordinator = ep("203.0.113.10:7400");
  core::NodeSettings settings;
  int nat_a = -1, nat_b = -1;
  SimNode* a = nullptr;
  SimNode* b = nullptr;
  SimCoordinator* coord = nullptr;

  explicit Lab(bool tcp_port = true) : net(7) {
    auto& c =
        net.add_coordinator(coordinator, ip("203.0.113.11"),
                            ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert);
    c.listen_tcp(443);
    coord = &c;
    settings.coordinators = {coordinator};
    if (tcp_port) settings.coordinator_tcp = {443};
    nat_a = net.add_nat(ip("198.51.100.1"), NatModel::port_restricted());
    nat_b = net.add_nat(ip("198.51.100.2"), NatModel::port_restricted());
    net.set_blocked(nat_a, true);  // a's network drops all UDP
    a = &net.add_node("a", nat_a, ep("192.168.1.2:41000"), ca.issue("a", "10.77.0.2/24"), ca.cert,
                      settings);
    b = &net.add_node("b", nat_b, ep("192.168.2.2:41000"), ca.issue("b", "10.77.0.3/24"), ca.cert,
                      settings);
    a->discover(coordinator);
    b->discover(coordinator);
  }
  std::string transport(SimNode& n) { return n.node().status(net.now()).coordinator_transport; }
  bool on_tcp(SimNode& n) { return n.node().registered() && transport(n) == "tcp"; }
  // a -> b and b -> a, each text arriving within `limit`.
  bool exchange(const std::string& text, Duration limit) {
    a->send_udp_to(b->vip(), text + " from a");
    if (!net.run_until([&] { return received(*b, text + " from a"); }, limit)) return false;
    b->send_udp_to(a->vip(), text + " from b");
    return net.run_until([&] { return received(*a, text + " from b"); }, limit);
  }
  std::optional<core::PeerStatus> peer(SimNode& n, Ipv4 vip) {
    return peer_status(n.node().status(net.now()), vip);
  }
};

TEST(CoordinatorTcpSim, UdpBlockedRegistersOverTcpWithinBound) {
  Lab lab;
  const Time start = lab.net.now();
  // Two UDP handshakes of 5 s unanswered, then a connect and a handshake over TCP.
  ASSERT_TRUE(lab.net.run_until([&] { return lab.on_tcp(*lab.a); }, 15s)) << lab.net.trace_tail();
  const Duration took = lab.net.now() - start;
  EXPECT_GE(took, 10s);  // UDP had its two chances first
  EXPECT_LT(took, 11s);
  EXPECT_EQ(lab.transport(*lab.b), "udp");  // b's network is fine
  auto st = lab.a->node().status(lab.net.now());
  EXPECT_EQ(st.coordinator_state, "registered");
  ASSERT_EQ(st.coordinators.size(), 1u);
  EXPECT_EQ(st.coordinators[0].transport, "tcp");
  EXPECT_EQ(lab.net.open_streams(), 1u);
  // The coordinator knows it as a TCP-carried node, and b as a UDP one.
  auto nodes = lab.coord->core().status(lab.net.now()).nodes;
  ASSERT_EQ(nodes.size(), 2u);
  for (const auto& n : nodes) EXPECT_EQ(n.tcp, n.name == "a") << n.name;
}

TEST(CoordinatorTcpSim, RelayedTrafficFlowsOverTcp) {
  Lab lab;
  ASSERT_TRUE(
      lab.net.run_until([&] { return lab.on_tcp(*lab.a) && lab.b->node().registered(); }, 20s));
  ASSERT_TRUE(lab.exchange("hello", 30s)) << lab.net.trace_tail();
  // Punching cannot work without UDP; the status says why it is relayed.
  lab.net.run_for(15s);
  ASSERT_TRUE(lab.exchange("still", 5s));
  auto pa = lab.peer(*lab.a, lab.b->vip());
  ASSERT_TRUE(pa);
  EXPECT_EQ(pa->path, "relay");
  EXPECT_EQ(pa->relay_reason, "UDP blocked");
  auto st = lab.a->node().status(lab.net.now());
  EXPECT_EQ(st.nat.type, wire::NatType::kUdpBlocked);  // discovery got nothing over UDP
  auto pb = lab.peer(*lab.b, lab.a->vip());
  ASSERT_TRUE(pb);
  EXPECT_EQ(pb->path, "relay");
  EXPECT_EQ(pb->relay_reason, "UDP blocked");  // the peer's NAT report says so
}

TEST(CoordinatorTcpSim, MovesBackToUdpWhenItAnswers) {
  Lab lab;
  ASSERT_TRUE(lab.net.run_until([&] { return lab.on_tcp(*lab.a); }, 15s));
  lab.net.set_blocked(lab.nat_a, false);
  const Time unblocked = lab.net.now();
  // One UDP handshake every kUdpProbeInterval (30 s), answered within a round trip.
  ASSERT_TRUE(lab.net.run_until(
      [&] { return lab.a->node().registered() && lab.transport(*lab.a) == "udp"; }, 40s))
      << lab.net.trace_tail();
  EXPECT_LE(lab.net.now() - unblocked, 31s);
  lab.net.run_for(1s);
  EXPECT_EQ(lab.net.open_streams(), 0u);  // the stream is closed once on UDP
  ASSERT_TRUE(lab.net.run_until([&] { return lab.b->node().registered(); }, 10s));
  EXPECT_TRUE(lab.exchange("over udp", 30s));
}

TEST(CoordinatorTcpSim, UdpStillBlockedStaysOnTcp) {
  Lab lab;
  ASSERT_TRUE(lab.net.run_until([&] { return lab.on_tcp(*lab.a); }, 15s));
  // UDP probes go unanswered: no flapping, no reconnects, the session stays.
  const auto connects = lab.net.stream_connects;
  for (int i = 0; i < 12; ++i) {
    lab.net.run_for(10s);
    EXPECT_TRUE(lab.on_tcp(*lab.a)) << "at " << i;
  }
  EXPECT_EQ(lab.net.stream_connects, connects);
}

TEST(CoordinatorTcpSim, ConnectionDiesAndReconnects) {
  Lab lab;
  ASSERT_TRUE(
      lab.net.run_until([&] { return lab.on_tcp(*lab.a) && lab.b->node().registered(); }, 20s));
  ASSERT_TRUE(lab.exchange("before", 30s));
  const auto connects = lab.net.stream_connects;
  lab.net.reset_streams("a");
  ASSERT_TRUE(lab.net.run_until([&] { return lab.net.stream_connects > connects; }, 3s));
  ASSERT_TRUE(lab.net.run_until([&] { return lab.net.open_streams() == 1; }, 3s));
  EXPECT_TRUE(lab.exchange("after", 10s)) << lab.net.trace_tail();
  EXPECT_TRUE(lab.on_tcp(*lab.a));
}

TEST(CoordinatorTcpSim, TcpBlockedTooBacksOffBounded) {
  Lab lab;
  lab.net.set_tcp_blocked(lab.nat_a, true);
  lab.net.run_for(120s);
  EXPECT_FALSE(lab.a->node().registered());
  // Each connect fails after 5 s; the back-off doubles from 1 s to 30 s.
  EXPECT_GE(lab.net.stream_connects, 3u);
  EXPECT_LE(lab.net.stream_connects, 10u);
  // TCP opens: it registers at the next attempt.
  lab.net.set_tcp_blocked(lab.nat_a, false);
  EXPECT_TRUE(lab.net.run_until([&] { return lab.on_tcp(*lab.a); }, 45s));
}

TEST(CoordinatorTcpSim, WithoutTcpPortStaysOnUdp) {
  Lab lab(false);
  lab.net.run_for(60s);
  EXPECT_FALSE(lab.a->node().registered());
  EXPECT_EQ(lab.net.stream_connects, 0u);
  EXPECT_EQ(lab.transport(*lab.a), "udp");
}

TEST(CoordinatorTcpSim, StreamTakesOnlyCoordinatorAnswers) {
  Lab lab;
  ASSERT_TRUE(lab.net.run_until([&] { return lab.on_tcp(*lab.a); }, 15s));
  const auto before = lab.a->node().status(lab.net.now()).drops;
  // A handshake initiation, garbage and Data for an index nobody owns, as if read from the
  // stream: counted drops, nothing else.
  std::vector<std::uint8_t> buf(kBufferSize);
  const std::uint8_t init[] = {0x81, 0, 0, 0, 1, 2, 3, 4};
  const std::uint8_t junk[] = {0x7f, 1, 2};
  std::uint8_t data[64] = {0x84};
  for (std::span<const std::uint8_t> f :
       {std::span<const std::uint8_t>(init), std::span<const std::uint8_t>(junk),
        std::span<const std::uint8_t>(data)}) {
    std::copy(f.begin(), f.end(), buf.begin() + kHeadroom);
    lab.a->node().on_coordinator_frame(lab.net.now(), 0,
                                       PacketView(buf.data(), buf.size(), kHeadroom, f.size()));
  }
  lab.a->node().on_coordinator_frame(lab.net.now(), 7,
                                     PacketView(buf.data(), buf.size(), kHeadroom, 8));
  const auto after = lab.a->node().status(lab.net.now()).drops;
  EXPECT_EQ(after.malformed + after.unknown_index, before.malformed + before.unknown_index + 3);
  EXPECT_EQ(after.internal_error, 0u);
  EXPECT_TRUE(lab.on_tcp(*lab.a));
}

}  // namespace
}  // namespace p2p::sim
