// The node's bounded peer state, whole nodes and a coordinator on the virtual clock: the
// negative cache of unknown addresses, the lookup rate limit, idle eviction, max_peers, the
// node-wide queue budget, and a sweep of 10,000 mesh addresses leaving little behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>

#include "daemon/status/status_json.hpp"
#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

struct World {
  SimNet net{5};
  TestCa ca{net.unix_now()};
  core::NodeSettings settings;

  World() {
    net.add_coordinator(*Endpoint::parse("203.0.113.10:7400"), ip("203.0.113.11"),
                        ca.issue("coord", "10.77.0.1/16", crypto::Role::coordinator), ca.cert);
    settings.coordinators = {*Endpoint::parse("203.0.113.10:7400")};
  }
  SimNode& node(const std::string& name, const char* vip, const char* socket) {
    auto& n =
        net.add_node(name, -1, *Endpoint::parse(socket), ca.issue(name, vip), ca.cert, settings);
    EXPECT_TRUE(net.run_until([&] { return n.node().registered(); }, 10s));
    return n;
  }
  core::NodeStatus status(SimNode& n) { return n.node().status(net.now()); }
};

// The coordinator does not know the address: no peer is kept, the address is cached, and
// packets to it are counted drops without a new lookup until the TTL has passed.
TEST(SimBounded, UnknownAddressIsCachedUntilItsTtl) {
  World w;
  w.settings.limits.unknown_address_ttl = 30s;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  a.send_udp_to(ip("10.77.0.50"), "nobody");
  w.net.run_for(2s);
  auto st = w.status(a);
  EXPECT_TRUE(st.peers.empty());
  EXPECT_EQ(st.peer_table.unknown_addresses, 1u);
  EXPECT_EQ(st.drops.unknown_address, 1u);  // the packet that waited for the answer

  for (int i = 0; i < 5; ++i) a.send_udp_to(ip("10.77.0.50"), "nobody");
  EXPECT_EQ(w.status(a).drops.unknown_address, 6u);
  EXPECT_EQ(a.node().peers().size(), 0u);  // no lookup in flight: no peer made for it

  w.net.run_for(29s);  // the TTL has passed: a packet asks again
  a.send_udp_to(ip("10.77.0.50"), "nobody");
  EXPECT_EQ(a.node().peers().size(), 1u);
  w.net.run_for(2s);
  st = w.status(a);
  EXPECT_EQ(st.drops.unknown_address, 7u);
  EXPECT_TRUE(st.peers.empty());
}

// An address that registers after it was cached is reached once the TTL has passed.
TEST(SimBounded, AddressThatRegistersLaterIsReachedAfterTheTtl) {
  World w;
  w.settings.limits.unknown_address_ttl = 5s;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  a.send_udp_to(ip("10.77.0.3"), "early");
  w.net.run_for(1s);
  auto& b = w.node("b", "10.77.0.3/16", "198.51.100.3:5000");
  a.send_udp_to(ip("10.77.0.3"), "too early");
  w.net.run_for(5s);
  a.send_udp_to(ip("10.77.0.3"), "in time");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "in time"); }, 5s)) << w.net.trace_tail();
  EXPECT_FALSE(received(b, "too early"));
}

// New addresses are looked up at most lookups_per_second (after a burst); beyond that their
// packets are counted drops and no peer is made for them.
TEST(SimBounded, LookupsAreRateLimited) {
  World w;
  w.settings.limits.lookups_per_second = 10;
  w.settings.limits.lookup_burst = 20;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  for (std::uint32_t i = 0; i < 100; ++i) a.send_udp_to(Ipv4{0x0a4d0100u + i}, "x");
  EXPECT_EQ(a.node().peers().size(), 20u);
  EXPECT_EQ(w.status(a).drops.lookup_rate, 80u);
  w.net.run_for(1s);  // ten more tokens
  for (std::uint32_t i = 100; i < 200; ++i) a.send_udp_to(Ipv4{0x0a4d0100u + i}, "x");
  EXPECT_EQ(w.status(a).drops.lookup_rate, 170u);
}

// An idle peer (no session, nothing waiting) is removed after peer_idle_timeout; its session
// indices go with it, and the next packet connects again.
TEST(SimBounded, IdlePeerIsEvictedAndComesBack) {
  World w;
  w.settings.limits.peer_idle_timeout = 5min;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/16", "198.51.100.3:5000");
  a.send_udp_to(b.vip(), "hello");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "hello"); }, 5s));
  ASSERT_EQ(a.node().peers().size(), 1u);
  // The session lapses (3 minutes without traffic, expires 3 minutes after it was made);
  // the peer is still kept until it was idle for 5 minutes.
  w.net.run_for(6min);
  EXPECT_EQ(a.node().peers().size(), 1u);
  ASSERT_TRUE(w.net.run_until([&] { return a.node().peers().size() == 0; }, 5min));
  EXPECT_EQ(w.status(a).peer_table.evicted_idle, 1u);
  EXPECT_TRUE(w.net.run_until([&] { return b.node().peers().size() == 0; }, 1min));

  a.send_udp_to(b.vip(), "again");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "again"); }, 5s)) << w.net.trace_tail();
  b.send_udp_to(a.vip(), "back");
  EXPECT_TRUE(w.net.run_until([&] { return received(a, "back"); }, 5s));
}

// A peer whose session carries traffic is never evicted.
TEST(SimBounded, BusyPeerIsKept) {
  World w;
  w.settings.limits.peer_idle_timeout = 10s;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/16", "198.51.100.3:5000");
  for (int i = 0; i < 60; ++i) {
    a.send_udp_to(b.vip(), "tick " + std::to_string(i));
    w.net.run_for(5s);
    ASSERT_EQ(a.node().peers().size(), 1u) << i;
    ASSERT_EQ(b.node().peers().size(), 1u) << i;
  }
  EXPECT_TRUE(received(b, "tick 59"));
  EXPECT_EQ(w.status(a).peer_table.evicted_idle, 0u);
}

// At max_peers a new peer takes the place of the least recently used idle one; with none idle
// the new one is refused and counted.
TEST(SimBounded, MaxPeersEvictsAnIdlePeerElseRefuses) {
  World w;
  w.settings.limits.max_peers = 1;
  w.settings.limits.peer_idle_timeout = 1h;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  w.settings.limits = {};
  auto& b = w.node("b", "10.77.0.3/16", "198.51.100.3:5000");
  auto& c = w.node("c", "10.77.0.4/16", "198.51.100.4:5000");
  a.send_udp_to(b.vip(), "to b");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "to b"); }, 5s));
  a.send_udp_to(c.vip(), "to c while b is busy");
  w.net.run_for(2s);
  auto st = w.status(a);
  EXPECT_EQ(st.drops.peer_table_full, 1u);
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].name, "b");
  EXPECT_FALSE(received(c, "to c while b is busy"));

  w.net.run_for(7min);  // b's session is gone: b is idle
  a.send_udp_to(c.vip(), "to c");
  ASSERT_TRUE(w.net.run_until([&] { return received(c, "to c"); }, 5s)) << w.net.trace_tail();
  st = w.status(a);
  EXPECT_EQ(st.peer_table.evicted_full, 1u);
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].name, "c");
}

// Packets waiting for a session count against one node-wide budget: over it, the oldest of
// the whole node is dropped and counted.
TEST(SimBounded, QueuedPacketsShareOneBudget) {
  World w;
  w.settings.coordinators = {
      *Endpoint::parse("203.0.113.99:7400")};  // nobody there: nothing gets through
  w.settings.limits.queued_packets = 10;
  auto& a = w.net.add_node("a", -1, *Endpoint::parse("198.51.100.2:5000"),
                           w.ca.issue("a", "10.77.0.2/16"), w.ca.cert, w.settings);
  for (int round = 0; round < 3; ++round) {
    for (std::uint32_t i = 0; i < 5; ++i) a.send_udp_to(Ipv4{0x0a4d0100u + i}, "x");
  }
  auto st = w.status(a);
  EXPECT_EQ(st.peer_table.queued_packets, 10u);
  EXPECT_EQ(st.drops.queue_budget, 5u);
  EXPECT_EQ(st.drops.queue_full, 0u);  // each peer's own cap (64) was not reached
  EXPECT_GT(st.peer_table.queued_bytes, 10u * 20);
}

// The sweep of issue 9: one packet to each of 10,000 mesh addresses nobody has, 1,000 a
// second. Few peers are kept, the status stays small, and every packet is accounted for.
TEST(SimBounded, SweepOfTenThousandAddressesLeavesLittle) {
  World w;
  auto& a = w.node("a", "10.77.0.2/16", "198.51.100.2:5000");
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    a.send_udp_to(Ipv4{0x0a4d0100u + i}, "sweep");
    w.net.run_for(1ms);
  }
  w.net.run_for(15s);
  auto st = w.status(a);
  EXPECT_EQ(a.node().peers().size(), 0u);
  EXPECT_LE(st.peer_table.unknown_addresses, 4096u);
  EXPECT_EQ(st.drops.unknown_address + st.drops.lookup_rate, 10'000u);
  const auto json = daemon::status_to_json(st).dump();
  EXPECT_LT(json.size(), 4096u) << json;
}

}  // namespace
}  // namespace p2p::sim
