// The coordinator at scale and under abuse: the Registry's O(1) indexes and timer heap, and
// every limit the coordinator enforces (nodes, lookups per node, introductions per target,
// relayed bytes per node, STUN reply bytes per source address), on the virtual clock.
#include <gtest/gtest.h>

#include "coordinator/core/registry.hpp"
#include "net/rate_limit.hpp"
#include "net/stun.hpp"
#include "tests/support/coord_fleet.hpp"

namespace p2p {
namespace {

using namespace std::chrono_literals;
using coord::NodeEntry;
using coord::Registry;
using sim::CoordFleet;
using sim::FleetNode;

const Time kT0 = Time{} + 1000s;

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

// ---- Registry: indexes and the timer heap ---------------------------------------------------

crypto::Certificate cert(std::uint8_t id, const char* name, const char* vip) {
  crypto::Certificate c;
  c.name = name;
  c.vip = *Ipv4Prefix::parse(vip);
  c.public_key[0] = id;
  return c;
}

crypto::Session session(Time created, std::uint32_t index) {
  return crypto::Session{crypto::TransportSession(crypto::noise::TransportKeys{}, created, false),
                         index, 1};
}

NodeEntry* add(Registry& r, std::uint8_t id, const char* name, const char* vip, Time now) {
  TokenBucket b(1, 1, now);
  return r.add(cert(id, name, vip), ep("198.51.100.1:1"), now, b, b, b);
}

TEST(Registry, FindsByKeyIndexVipAndNameOnceRegistered) {
  Registry r(90s, 10);
  NodeEntry* a = add(r, 1, "alpha", "10.1.0.1/16", kT0);
  ASSERT_NE(a, nullptr);
  r.add_session(*a, session(kT0, 77));
  EXPECT_EQ(r.by_key(a->cert.public_key), a);
  EXPECT_EQ(r.by_index(77), a);
  EXPECT_EQ(r.by_vip(*Ipv4::parse("10.1.0.1")), nullptr);  // not registered yet
  EXPECT_EQ(r.by_name("alpha"), nullptr);
  EXPECT_EQ(r.register_node(*a), nullptr);
  EXPECT_EQ(r.by_vip(*Ipv4::parse("10.1.0.1")), a);
  EXPECT_EQ(r.by_name("alpha"), a);

  // A second key for the same virtual IP is refused and named.
  NodeEntry* b = add(r, 2, "beta", "10.1.0.1/16", kT0);
  EXPECT_EQ(r.register_node(*b), a);
  EXPECT_FALSE(b->registered);
  EXPECT_EQ(r.by_name("beta"), nullptr);

  // A new session moves the old one to previous; the one before that is forgotten.
  r.add_session(*a, session(kT0, 78));
  r.add_session(*a, session(kT0, 79));
  EXPECT_EQ(r.by_index(77), nullptr);
  EXPECT_EQ(r.by_index(78), a);
  EXPECT_EQ(r.by_index(79), a);

  r.remove(*a);
  EXPECT_EQ(r.by_index(79), nullptr);
  EXPECT_EQ(r.by_vip(*Ipv4::parse("10.1.0.1")), nullptr);
  EXPECT_EQ(r.by_name("alpha"), nullptr);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.register_node(*b), nullptr);  // now free
}

TEST(Registry, RefusesPastMaxNodes) {
  Registry r(90s, 2);
  EXPECT_NE(add(r, 1, "a", "10.1.0.1/16", kT0), nullptr);
  EXPECT_NE(add(r, 2, "b", "10.1.0.2/16", kT0), nullptr);
  EXPECT_TRUE(r.full());
  EXPECT_EQ(add(r, 3, "c", "10.1.0.3/16", kT0), nullptr);
  EXPECT_EQ(r.size(), 2u);
}

TEST(Registry, ExpiresInDeadlineOrderLookingOnlyAtWhatIsDue) {
  Registry r(90s, 1000);
  // 500 nodes that arrive one second apart, in an order unrelated to their ids.
  for (int i = 0; i < 500; ++i) {
    auto id = static_cast<std::uint8_t>((i * 7) % 256);
    TokenBucket b(1, 1, kT0);
    crypto::Certificate c = cert(id, "n", "10.1.0.1/16");
    c.public_key[1] = static_cast<std::uint8_t>(i / 256);
    c.public_key[2] = static_cast<std::uint8_t>(i);
    ASSERT_NE(r.add(c, ep("198.51.100.1:1"), kT0 + i * 1s, b, b, b), nullptr);
  }
  EXPECT_EQ(r.next_deadline(), kT0 + 90s);
  std::vector<Time> removed;
  auto silent = [&](NodeEntry& n) {
    removed.push_back(n.last_seen);
    r.remove(n);
  };
  // Half a second before the first is due, nothing is looked at.
  EXPECT_EQ(r.expire(kT0 + 89s, silent), 0u);
  // Exactly three are due: three are looked at, out of 500.
  EXPECT_EQ(r.expire(kT0 + 92s, silent), 3u);
  ASSERT_EQ(removed.size(), 3u);
  EXPECT_EQ(removed, (std::vector<Time>{kT0, kT0 + 1s, kT0 + 2s}));
  EXPECT_EQ(r.next_deadline(), kT0 + 93s);
  EXPECT_EQ(r.size(), 497u);
}

TEST(Registry, TrafficMovesTheExpiryLater) {
  Registry r(90s, 10);
  NodeEntry* a = add(r, 1, "a", "10.1.0.1/16", kT0);
  NodeEntry* b = add(r, 2, "b", "10.1.0.2/16", kT0 + 10s);
  std::vector<std::string> removed;
  auto silent = [&](NodeEntry& n) {
    removed.push_back(n.cert.name);
    r.remove(n);
  };
  a->last_seen = kT0 + 60s;  // what a re-registration does
  // a's heap time comes first, finds it alive, and moves it to its real deadline.
  EXPECT_EQ(r.expire(kT0 + 90s, silent), 1u);
  EXPECT_TRUE(removed.empty());
  EXPECT_EQ(r.next_deadline(), kT0 + 100s);
  r.expire(kT0 + 100s, silent);
  EXPECT_EQ(removed, std::vector<std::string>{"b"});
  EXPECT_EQ(r.next_deadline(), kT0 + 150s);
  r.expire(kT0 + 150s, silent);
  EXPECT_EQ(removed, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(r.next_deadline(), Time::max());
  (void)b;
}

TEST(Registry, DropsAnExpiredSessionButKeepsTheNode) {
  Registry r(24h, 10);
  NodeEntry* a = add(r, 1, "a", "10.1.0.1/16", kT0);
  EXPECT_EQ(r.next_deadline(), kT0 + 24h);
  r.add_session(*a, session(kT0, 5));  // its end comes first now
  EXPECT_EQ(r.next_deadline(), kT0 + crypto::kRejectAfterTime);
  a->last_seen = kT0 + 170s;
  r.expire(kT0 + crypto::kRejectAfterTime, [](NodeEntry&) { FAIL(); });
  EXPECT_FALSE(a->current);
  EXPECT_EQ(r.by_index(5), nullptr);
  EXPECT_EQ(r.next_deadline(), kT0 + 170s + 24h);
}

// ---- The coordinator's limits, with real nodes ----------------------------------------------

class CoordinatorLimits : public ::testing::Test {
 protected:
  coord::CoordinatorSettings settings;
  std::unique_ptr<CoordFleet> fleet;

  CoordFleet& start() {
    fleet = std::make_unique<CoordFleet>(settings);
    return *fleet;
  }
  // start(), then two registered nodes.
  std::pair<FleetNode&, FleetNode&> start_two() {
    start();
    FleetNode& a = node(1);
    return {a, node(2)};
  }
  FleetNode& node(int i) {
    auto vip = Ipv4{0x0A010000u + static_cast<std::uint32_t>(i)};
    auto at = Endpoint{Ipv4{0xC6336400u + static_cast<std::uint32_t>(i)}, 40000};
    FleetNode& n = fleet->add("node" + std::to_string(i), vip, at);
    fleet->connect(n);
    return n;
  }
  void ask(FleetNode& from, const FleetNode& about) {
    from.link.send(fleet->now(), wire::PeerRequest{from.link.next_request_id(), about.vip()});
    fleet->deliver();
  }
};

TEST_F(CoordinatorLimits, NodesRegisterAndAreIntroducedByVipAndName) {
  auto [a, b] = start_two();
  EXPECT_EQ(a.registered, 1);
  EXPECT_EQ(b.registered, 1);
  ask(a, b);
  a.link.send(fleet->now(), wire::PeerRequest{a.link.next_request_id(), std::string("node2")});
  a.link.send(fleet->now(), wire::PeerRequest{a.link.next_request_id(), std::string("nobody")});
  fleet->deliver();
  EXPECT_EQ(a.introductions.size(), 2u);
  EXPECT_EQ(b.introductions.size(), 2u);
  ASSERT_EQ(a.unknown.size(), 1u);
  EXPECT_EQ(a.unknown[0].reason, "no such node is registered");
}

TEST_F(CoordinatorLimits, MaxNodes) {
  settings.max_nodes = 2;
  start();
  node(1);
  node(2);
  FleetNode& c = node(3);
  EXPECT_EQ(c.registered, 0);
  auto s = fleet->core().status(fleet->now());
  EXPECT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.registry_full, 1u);
}

TEST_F(CoordinatorLimits, LookupsPerNode) {
  settings.lookup_rate = 2;
  settings.lookup_burst = 3;
  auto [a, b] = start_two();
  for (int i = 0; i < 5; ++i) ask(a, b);
  EXPECT_EQ(a.introductions.size(), 3u);
  ASSERT_EQ(a.unknown.size(), 2u);
  EXPECT_EQ(a.unknown[0].reason, "rate limited: too many lookups");
  EXPECT_EQ(fleet->core().status(fleet->now()).lookups_refused, 2u);
  fleet->advance(500ms);  // one more lookup's worth
  ask(a, b);
  ask(a, b);
  EXPECT_EQ(a.introductions.size(), 4u);
  EXPECT_EQ(a.unknown.size(), 3u);
  // b's own lookups are its own.
  ask(b, a);
  EXPECT_TRUE(b.unknown.empty());
}

TEST_F(CoordinatorLimits, IntroductionsPerTarget) {
  settings.introduction_rate = 1;
  settings.introduction_burst = 2;
  start();
  FleetNode& target = node(1);
  std::vector<FleetNode*> askers;
  for (int i = 2; i < 6; ++i) askers.push_back(&node(i));
  for (FleetNode* a : askers) ask(*a, target);
  // Four nodes asked; the target heard of two of them, the other two askers were told no.
  EXPECT_EQ(target.introductions.size(), 2u);
  int refused = 0;
  for (FleetNode* a : askers) {
    for (const auto& u : a->unknown) {
      EXPECT_EQ(u.reason, "rate limited: that node is introduced too often");
      ++refused;
    }
  }
  EXPECT_EQ(refused, 2);
  auto s = fleet->core().status(fleet->now());
  EXPECT_EQ(s.introductions_refused, 2u);
  fleet->advance(1s);
  ask(*askers[3], target);
  EXPECT_EQ(target.introductions.size(), 3u);
}

TEST_F(CoordinatorLimits, RelayedBytesPerNode) {
  settings.relay_rate = 1000;
  settings.relay_burst = 3000;
  auto [a, b] = start_two();
  std::vector<std::uint8_t> buf(kBufferSize);
  for (int i = 0; i < 10; ++i) {
    PacketView v(buf.data(), buf.size(), kHeadroom + 16, 1000);
    ASSERT_TRUE(a.link.send_relayed(fleet->now(), b.vip(), v));
  }
  fleet->deliver();
  EXPECT_GE(b.relayed, 2);
  EXPECT_LE(b.relayed, 3);
  auto s = fleet->core().status(fleet->now());
  for (const auto& n : s.nodes) {
    if (n.name == "node1") {
      EXPECT_EQ(n.relay_dropped, static_cast<std::uint64_t>(10 - b.relayed));
    }
  }
}

TEST_F(CoordinatorLimits, SilentNodesGoAndNextDeadlineFollows) {
  settings.node_timeout = 30s;
  auto [a, b] = start_two();
  EXPECT_EQ(fleet->core().next_deadline(), fleet->now() + 10s);  // the pending handshakes'
  fleet->forget(a);                                              // a falls silent
  fleet->advance(20s);
  EXPECT_EQ(fleet->core().status(fleet->now()).nodes.size(), 2u);
  fleet->advance(20s);  // b re-registers every 25 s (its interval), a does not
  auto s = fleet->core().status(fleet->now());
  ASSERT_EQ(s.nodes.size(), 1u);
  EXPECT_EQ(s.nodes[0].name, "node2");
  EXPECT_GT(fleet->core().next_deadline(), fleet->now());
  EXPECT_EQ(b.registered, 2);
}

// ---- STUN: a byte budget per source address -------------------------------------------------

class StunLimits : public ::testing::Test, public coord::CoordinatorEffects {
 protected:
  void send_udp(wire::stun::ServerSocket from, const Endpoint& to,
                std::span<const std::uint8_t> d) override {
    sent.push_back({from, to, d.size()});
  }
  void send_tcp(coord::ConnectionId, std::span<const std::uint8_t>) override {
    ADD_FAILURE() << "STUN is never answered over TCP";
  }
  void fill_random(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = 1;
  }
  std::uint64_t unix_nanos() override { return 1'800'000'000ull * 1'000'000'000ull; }

  struct Sent {
    wire::stun::ServerSocket from;
    Endpoint to;
    std::size_t bytes;
  };
  std::vector<Sent> sent;
  sim::TestCa ca{1'800'000'000};
  std::unique_ptr<coord::Coordinator> core;

  void start(std::uint64_t rate, std::uint64_t burst) {
    coord::CoordinatorSettings s;
    s.stun_rate = rate;
    s.stun_burst = burst;
    wire::stun::ServerConfig c;
    c.primary = ep("203.0.113.10:7400");
    c.alternate_address = *parse_ip("203.0.113.11");
    c.alternate_port = 7401;
    core = std::make_unique<coord::Coordinator>(
        ca.issue("coordinator", "10.0.0.1/16", crypto::Role::coordinator), ca.cert, s,
        *wire::stun::Server::create(c), *this, sim::silent_logger("coordinator"));
  }
  void request(Time now, const char* from, wire::stun::Message m = {},
               wire::stun::ServerSocket on = wire::stun::ServerSocket::kPrimary) {
    m.transaction_id[0] = 9;
    auto bytes = wire::stun::encode(m);
    std::vector<std::uint8_t> buf(kHeadroom + bytes.size() + kTailroom);
    std::copy(bytes.begin(), bytes.end(), buf.begin() + kHeadroom);
    core->on_udp(now, on, ep(from), PacketView(buf.data(), buf.size(), kHeadroom, bytes.size()));
  }
  std::size_t bytes_to(const char* address) const {
    std::size_t n = 0;
    for (const auto& s : sent) {
      if (s.to.address == *parse_ip(address)) n += s.bytes;
    }
    return n;
  }
};

TEST_F(StunLimits, RepliesPerSourceAddressStayWithinTheBudget) {
  start(1000, 2000);
  for (int i = 0; i < 100; ++i) {
    request(kT0, "198.51.100.7:5000");
    request(kT0, "198.51.100.7:5001");  // another port of the same address: the same budget
  }
  const std::size_t reply = sent.at(0).bytes;
  EXPECT_LE(bytes_to("198.51.100.7"), 2000u);
  EXPECT_GT(bytes_to("198.51.100.7"), 2000u - reply);
  auto s = core->status(kT0);
  EXPECT_EQ(s.stun_answered + s.stun_rate_limited, 200u);
  EXPECT_EQ(s.stun_answered, sent.size());

  request(kT0, "198.51.100.8:5000");  // another address has its own budget
  EXPECT_EQ(bytes_to("198.51.100.8"), reply);

  // Over ten seconds, at most burst + 10 s of rate.
  for (int ms = 0; ms < 10'000; ms += 10) request(kT0 + ms * 1ms, "198.51.100.7:5000");
  EXPECT_LE(bytes_to("198.51.100.7"), 2000u + 10 * 1000u);
}

TEST_F(StunLimits, ResponsePortGoesOnlyToTheSameAddressAndSharesItsBudget) {
  start(1000, 2000);
  wire::stun::Message m;
  for (std::uint16_t port = 1; port <= 100; ++port) {
    m.response_port = port;
    request(kT0, "198.51.100.7:5000", m);
  }
  ASSERT_FALSE(sent.empty());
  for (const auto& s : sent) EXPECT_EQ(s.to.address, *parse_ip("198.51.100.7"));
  EXPECT_EQ(sent[0].to.port, 1);
  EXPECT_LE(bytes_to("198.51.100.7"), 2000u);
  EXPECT_LT(sent.size(), 100u);
}

TEST_F(StunLimits, ChangeRequestSharesTheBudget) {
  start(1000, 2000);
  wire::stun::Message m;
  m.change_request = wire::stun::ChangeRequest{true, true};
  for (int i = 0; i < 50; ++i) request(kT0, "198.51.100.7:5000", m);
  request(kT0, "198.51.100.7:5000");  // a plain one after: the budget is spent
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].from, wire::stun::ServerSocket::kAltBoth);
  EXPECT_LE(bytes_to("198.51.100.7"), 2000u);
  EXPECT_EQ(sent.back().from, wire::stun::ServerSocket::kAltBoth);
}

TEST(SourceLimiter, ByteBudgetPerAddressAndIpv6SharesA64) {
  SourceLimiter l({100, 100}, {}, 64, 7);
  for (std::uint32_t i = 0; i < 10'000; ++i) EXPECT_TRUE(l.allow(kT0, Ipv4{i}, 100));
  EXPECT_TRUE(l.allow(kT0, *parse_ip("2001:db8:1:2::1"), 100));
  EXPECT_FALSE(l.allow(kT0, *parse_ip("2001:db8:1:2::1"), 1));  // its budget is spent
  EXPECT_TRUE(l.allow(kT0 + 1s, *parse_ip("2001:db8:1:2::1"), 100));
  SourceLimiter per64({100, 100}, {100, 100}, 64, 7);
  EXPECT_TRUE(per64.allow(kT0, *parse_ip("2001:db8:1:2::1"), 100));
  EXPECT_FALSE(per64.allow(kT0, *parse_ip("2001:db8:1:2::ffff"), 1));  // the same /64
  EXPECT_TRUE(per64.allow(kT0, *parse_ip("2001:db8:1:3::1"), 100));    // another /64
}

}  // namespace
}  // namespace p2p
