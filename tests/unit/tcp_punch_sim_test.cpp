// TCP hole punching by simultaneous open, end to end on the SYN-level simulated network
// (tests/support/sim_tcp.hpp): two nodes' TcpPunch machines, the coordinator's TcpPunchBroker
// behind its assist port, NATs that drop or RST an unsolicited SYN. Control messages travel
// as one WAN leg each (they ride the nodes' existing coordinator sessions).
#include <gtest/gtest.h>

#include "coordinator/core/tcp_punch_broker.hpp"
#include "daemon/core/tcp_punch.hpp"
#include "tests/support/sim_tcp.hpp"

namespace p2p {
namespace {

using namespace std::chrono_literals;
using core::TcpPunch;
using sim::SimTcp;
using sim::TcpNatModel;
using sim::Unsolicited;

constexpr std::uint16_t kAssistPort = 7401;
const Ipv4 kCoordinator{0xCB007114};  // 203.0.113.20

struct Side : core::TcpPunchEffects {
  SimTcp* net = nullptr;
  SimTcp::HostId host = 0;
  Ipv4 vip;
  Ipv4 nat_address;
  std::uint16_t port = 0;
  std::optional<TcpPunch> punch;

  void punch_open(std::uint32_t, const Endpoint& assist, const wire::AssistHello&) override {
    net->listen(host, port);
    net->connect(host, port, assist);
  }
  void punch_connect(std::uint32_t, const Endpoint& to) override {
    net->close(host, port, to);
    net->connect(host, port, to);
  }
  void punch_close(std::uint32_t) override { net->close_port(host, port); }
};

class TcpPunchSim : public ::testing::Test {
 protected:
  SimTcp net;
  coord::TcpPunchBroker broker{16, 10s};
  SimTcp::HostId coordinator = net.add_public_host(kCoordinator);
  Side a, b;
  Time t0;
  Duration b_go_delay{};  // B hears the Go this much later than the WAN leg

  void place(Side& s, Ipv4 vip, Ipv4 nat_address, TcpNatModel model, std::uint16_t port) {
    int nat = net.add_nat(nat_address, model);
    s.net = &net;
    s.host = net.add_host_behind(nat, Ipv4{0xC0A80102});  // 192.168.1.2 on each LAN
    s.vip = vip;
    s.nat_address = nat_address;
    s.port = port;
  }
  Side* by_host(SimTcp::HostId h) { return h == a.host ? &a : h == b.host ? &b : nullptr; }
  Side* by_nat(const Endpoint& e) {
    return e.address == IpAddress{a.nat_address}   ? &a
           : e.address == IpAddress{b.nat_address} ? &b
                                                   : nullptr;
  }
  void arm(Side& s) {
    if (!s.punch || s.punch->deadline() == Time::max()) return;
    net.at(s.punch->deadline(), [this, &s] {
      s.punch->on_tick(net.now(), s);
      arm(s);
    });
  }
  // A's request and the rest of the flow; runs until both punches end or 20 s pass.
  void punch() {
    net.listen(coordinator, kAssistPort);
    net.events.established = [this](SimTcp::HostId h, std::uint16_t, const Endpoint& remote,
                                    bool inbound) {
      if (h == coordinator) {
        // The hello follows the handshake's ACK: the broker sees it one leg later.
        Side* s = by_nat(remote);
        ASSERT_NE(s, nullptr);
        net.at(net.now() + net.wan, [this, s, remote] {
          if (!s->punch) return;
          if (auto go = broker.observe(s->punch->token(), remote)) {
            net.at(net.now() + net.wan, [this, g = go->to_a] {
              a.punch->on_go(net.now(), a, g.peer_endpoint);
              arm(a);
            });
            net.at(net.now() + net.wan + b_go_delay, [this, g = go->to_b] {
              b.punch->on_go(net.now(), b, g.peer_endpoint);
              arm(b);
            });
          }
        });
        return;
      }
      Side* s = by_host(h);
      if (s && s->punch && remote != Endpoint{kCoordinator, kAssistPort})
        s->punch->on_established(net.now(), *s, inbound);
    };
    net.events.failed = [this](SimTcp::HostId h, std::uint16_t, const Endpoint& remote) {
      Side* s = by_host(h);
      if (s && s->punch && remote != Endpoint{kCoordinator, kAssistPort})
        s->punch->on_connect_failed();
    };
    t0 = net.now();
    wire::PunchToken ta{}, tb{};
    ta.fill(0xa1);
    tb.fill(0xb2);
    const Endpoint assist{kCoordinator, kAssistPort};
    a.punch.emplace(1, b.vip, ta, core::TcpPunchTiming{});
    a.punch->start(net.now(), a, assist);
    arm(a);
    // The request reaches the coordinator; the offer reaches B.
    net.at(net.now() + net.wan, [this, ta, tb, assist] {
      ASSERT_TRUE(broker.start(net.now(), {a.vip, 1, ta, {}}, {b.vip, 77, tb, {}}));
      net.at(net.now() + net.wan, [this, tb, assist] {
        b.punch.emplace(77, a.vip, tb, core::TcpPunchTiming{});
        b.punch->start(net.now(), b, assist);
        arm(b);
      });
    });
    auto over = [](const Side& s) {
      return s.punch && (s.punch->state() == TcpPunch::State::kEstablished ||
                         s.punch->state() == TcpPunch::State::kFailed);
    };
    net.run_until(t0 + 20s, [&] { return over(a) && over(b); });
  }
  void expect_established() {
    ASSERT_TRUE(a.punch && b.punch);
    EXPECT_EQ(a.punch->state(), TcpPunch::State::kEstablished) << trace();
    EXPECT_EQ(b.punch->state(), TcpPunch::State::kEstablished) << trace();
  }
  std::string trace() const {
    std::string s;
    for (auto& l : net.trace) s += l + "\n";
    return s;
  }
};

const Ipv4 kVipA{0x0A4D0001}, kVipB{0x0A4D0002};
const Ipv4 kNatA{0xC6336401}, kNatB{0xC6336402};  // 198.51.100.1, .2

TEST_F(TcpPunchSim, PortRestrictedConesThatDropUnsolicitedSyns) {
  place(a, kVipA, kNatA, TcpNatModel::port_restricted(), 40001);
  place(b, kVipB, kNatB, TcpNatModel::port_restricted(), 40002);
  punch();
  expect_established();
  // Told at once, both SYNs cross: one attempt each, well under a second from A's start.
  EXPECT_EQ(a.punch->attempts(), 1);
  EXPECT_LT(a.punch->time_to_path(), 1s);
  EXPECT_FALSE(a.punch->inbound());  // a simultaneous open: both sockets are connected ones
}

TEST_F(TcpPunchSim, PortRestrictedConesThatAnswerWithRstWhenOneSideIsFarther) {
  place(a, kVipA, kNatA, TcpNatModel::port_restricted(Unsolicited::kRst), 40001);
  place(b, kVipB, kNatB, TcpNatModel::port_restricted(Unsolicited::kRst), 40002);
  // B's Go arrives 100 ms after A's: A's first SYN meets B's NAT before B's SYN left it.
  b_go_delay = 100ms;
  punch();
  expect_established();
  EXPECT_GE(a.punch->resets(), 1);  // B's NAT reset A's early SYN
  // B's SYN then found A's listener (A's NAT had the hole from that SYN): accepted, with no
  // second attempt and no second's wait for a kernel retransmission.
  EXPECT_TRUE(a.punch->inbound());
  EXPECT_EQ(a.punch->attempts(), 1);
  EXPECT_LT(a.punch->time_to_path(), 1s);
  EXPECT_GE(net.rsts_from_nats, 1u);
}

TEST_F(TcpPunchSim, FullConeAndPortRestricted) {
  place(a, kVipA, kNatA, TcpNatModel::full_cone(), 40001);
  place(b, kVipB, kNatB, TcpNatModel::port_restricted(), 40002);
  punch();
  expect_established();
}

TEST_F(TcpPunchSim, SymmetricNatsFailWithinTheBoundAndSaySo) {
  place(a, kVipA, kNatA, TcpNatModel::symmetric(), 40001);
  place(b, kVipB, kNatB, TcpNatModel::symmetric(Unsolicited::kRst), 40002);
  punch();
  ASSERT_TRUE(a.punch && b.punch);
  EXPECT_EQ(a.punch->state(), TcpPunch::State::kFailed);
  EXPECT_EQ(b.punch->state(), TcpPunch::State::kFailed);
  EXPECT_EQ(a.punch->failure(), "no TCP connection through the NATs");
  EXPECT_LE(net.now() - t0, 6s);  // the go, then punch_timeout (5 s): the caller falls back
  // Each side retried every 250 ms on average, jittered within [125 ms, 375 ms): over the
  // 5 s, no fewer than 5 s / 375 ms and no more than 5 s / 125 ms attempts.
  EXPECT_GE(a.punch->attempts(), 13);
  EXPECT_LE(a.punch->attempts(), 41);
  EXPECT_GE(b.punch->attempts(), 13);
  EXPECT_LE(b.punch->attempts(), 41);
}

}  // namespace
}  // namespace p2p
