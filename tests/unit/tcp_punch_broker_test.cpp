// The coordinator's side of a TCP punch: TcpPunchBroker alone, then the Coordinator with two
// registered nodes (CoordFleet): a request, the offer to the target, the two assist hellos and
// the TcpPunchGo both get at the same moment; unknown tokens, timeouts and a full table.
#include "coordinator/core/tcp_punch_broker.hpp"

#include <gtest/gtest.h>

#include "net/tcp_assist.hpp"
#include "tests/support/coord_fleet.hpp"

namespace p2p {
namespace {

using namespace std::chrono_literals;
using coord::TcpPunchBroker;
using sim::CoordFleet;
using sim::FleetNode;

const Time kT0 = Time{} + 1000s;
const Ipv4 kA{0x0A010001}, kB{0x0A010002};

wire::PunchToken token(std::uint8_t v) {
  wire::PunchToken t{};
  t.fill(v);
  return t;
}
Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

TEST(TcpPunchBroker, TellsBothSidesOnceBothShowedThemselves) {
  TcpPunchBroker broker(8, 10s);
  ASSERT_TRUE(broker.start(kT0, {kA, 7, token(1), {}}, {kB, 100, token(2), {}}));
  EXPECT_TRUE(broker.knows(token(1)));
  EXPECT_TRUE(broker.knows(token(2)));
  EXPECT_FALSE(broker.knows(token(3)));
  EXPECT_FALSE(broker.observe(token(3), ep("198.51.100.3:1")).has_value());
  EXPECT_FALSE(broker.observe(token(2), ep("198.51.100.2:40002")).has_value());
  // A second hello with the same token does not move what was observed.
  EXPECT_FALSE(broker.observe(token(2), ep("198.51.100.9:9")).has_value());
  auto go = broker.observe(token(1), ep("198.51.100.1:40001"));
  ASSERT_TRUE(go.has_value());
  EXPECT_EQ(go->a, kA);
  EXPECT_EQ(go->b, kB);
  EXPECT_EQ(go->to_a, (wire::TcpPunchGo{7, kB, ep("198.51.100.2:40002")}));
  EXPECT_EQ(go->to_b, (wire::TcpPunchGo{100, kA, ep("198.51.100.1:40001")}));
  EXPECT_EQ(broker.size(), 0u);
  EXPECT_FALSE(broker.knows(token(1)));  // a token is matched once
  int expired = 0;
  broker.expire(kT0 + 11s, [&](const TcpPunchBroker::Expired&) { ++expired; });
  EXPECT_EQ(expired, 0);
  EXPECT_EQ(broker.next_deadline(), Time::max());
}

TEST(TcpPunchBroker, ForgetsAfterTheTimeoutAndRefusesBeyondItsBound) {
  TcpPunchBroker broker(2, 10s);
  ASSERT_TRUE(broker.start(kT0, {kA, 1, token(1), {}}, {kB, 2, token(2), {}}));
  EXPECT_FALSE(broker.start(kT0, {kA, 3, token(1), {}}, {kB, 4, token(5), {}}));  // token in use
  EXPECT_FALSE(broker.start(kT0, {kA, 3, token(6), {}}, {kB, 4, token(6), {}}));  // same twice
  ASSERT_TRUE(broker.start(kT0 + 1s, {kA, 3, token(3), {}}, {kB, 4, token(4), {}}));
  EXPECT_FALSE(broker.start(kT0 + 1s, {kA, 5, token(7), {}}, {kB, 6, token(8), {}}));  // full
  EXPECT_FALSE(broker.observe(token(1), ep("198.51.100.1:1")).has_value());
  EXPECT_EQ(broker.next_deadline(), kT0 + 10s);
  std::vector<TcpPunchBroker::Expired> gone;
  broker.expire(kT0 + 10s, [&](const TcpPunchBroker::Expired& e) { gone.push_back(e); });
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].a.punch_id, 1u);
  EXPECT_TRUE(gone[0].a.observed.has_value());
  EXPECT_FALSE(gone[0].b.observed.has_value());
  EXPECT_FALSE(broker.knows(token(2)));
  EXPECT_EQ(broker.size(), 1u);
  EXPECT_TRUE(broker.start(kT0 + 10s, {kA, 5, token(7), {}}, {kB, 6, token(8), {}}));
}

class CoordinatorTcpPunch : public ::testing::Test {
 protected:
  CoordinatorTcpPunch() : fleet(coord::CoordinatorSettings{}) {}
  FleetNode& node(int i) {
    FleetNode& n = fleet.add("node" + std::to_string(i), Ipv4{0x0A010000u + std::uint32_t(i)},
                             Endpoint{Ipv4{0xC6336400u + std::uint32_t(i)}, 40000});
    fleet.connect(n);
    return n;
  }
  CoordFleet fleet;
};

TEST_F(CoordinatorTcpPunch, OffersThenTellsBothAtOnce) {
  FleetNode& a = node(1);
  FleetNode& b = node(2);
  a.link.send(fleet.now(), wire::TcpPunchRequest{41, b.vip(), token(0xa1)});
  fleet.deliver();
  ASSERT_EQ(b.punch_messages.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<wire::TcpPunchOffer>(b.punch_messages[0]));
  const auto offer = std::get<wire::TcpPunchOffer>(b.punch_messages[0]);  // a copy: it grows
  EXPECT_EQ(offer.from, a.vip());
  EXPECT_NE(offer.token, token(0xa1));
  EXPECT_TRUE(a.punch_messages.empty());

  // A stranger's hello, then a malformed one: counted, nothing sent.
  fleet.core().on_assist(fleet.now(), ep("192.0.2.66:1234"), wire::encode_assist_hello(token(9)));
  fleet.core().on_assist(fleet.now(), ep("192.0.2.66:1235"), std::vector<std::uint8_t>(21, 0));
  EXPECT_EQ(fleet.core().status(fleet.now()).assist_unknown, 2u);

  fleet.core().on_assist(fleet.now(), ep("198.51.100.2:50002"),
                         wire::encode_assist_hello(offer.token));
  fleet.deliver();
  EXPECT_TRUE(a.punch_messages.empty());
  fleet.core().on_assist(fleet.now(), ep("198.51.100.1:50001"),
                         wire::encode_assist_hello(token(0xa1)));
  fleet.deliver();
  ASSERT_EQ(a.punch_messages.size(), 1u);
  ASSERT_EQ(b.punch_messages.size(), 2u);
  auto* go_a = std::get_if<wire::TcpPunchGo>(&a.punch_messages[0]);
  auto* go_b = std::get_if<wire::TcpPunchGo>(&b.punch_messages[1]);
  ASSERT_TRUE(go_a && go_b);
  EXPECT_EQ(*go_a, (wire::TcpPunchGo{41, b.vip(), ep("198.51.100.2:50002")}));
  EXPECT_EQ(*go_b, (wire::TcpPunchGo{offer.punch_id, a.vip(), ep("198.51.100.1:50001")}));
  EXPECT_EQ(fleet.core().status(fleet.now()).tcp_punches, 1u);
}

TEST_F(CoordinatorTcpPunch, FailsForAnUnknownPeerAndWhenThePeerNeverShowsUp) {
  FleetNode& a = node(1);
  FleetNode& b = node(2);
  a.link.send(fleet.now(), wire::TcpPunchRequest{1, Ipv4{0x0A0100FF}, token(1)});
  fleet.deliver();
  ASSERT_EQ(a.punch_messages.size(), 1u);
  auto* f = std::get_if<wire::TcpPunchFailed>(&a.punch_messages[0]);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->punch_id, 1u);
  EXPECT_EQ(f->reason, "no such node is registered");

  a.link.send(fleet.now(), wire::TcpPunchRequest{2, b.vip(), token(2)});
  fleet.deliver();
  fleet.core().on_assist(fleet.now(), ep("198.51.100.1:50001"),
                         wire::encode_assist_hello(token(2)));
  fleet.advance(11s);
  ASSERT_EQ(a.punch_messages.size(), 2u);
  f = std::get_if<wire::TcpPunchFailed>(&a.punch_messages[1]);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->punch_id, 2u);
  EXPECT_EQ(f->reason, "the peer never reached the assist port");
  EXPECT_EQ(fleet.core().status(fleet.now()).tcp_punches_failed, 2u);
}

}  // namespace
}  // namespace p2p
