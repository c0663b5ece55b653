// core::PeerTable, core::UnknownAddresses and core::TokenBucket: the node's bounded peer state.
// Lookups by virtual IP, lookup id and name are O(1): with 10,000 peers none of them walks the
// table (PeerTable counts its walks), and each finds exactly the one peer it names.
#include "daemon/core/peer_table.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  PathPolicy policy;
  spdlog::logger log{"peer_table_test", std::make_shared<spdlog::sinks::null_sink_st>()};
  PeerTable table;

  Peer& add(std::uint32_t vip) {
    return table.insert(std::make_unique<Peer>(Ipv4{vip}, policy, log, vip));
  }
};

crypto::Certificate cert_named(std::string name, Ipv4 vip) {
  crypto::Certificate c;
  c.name = std::move(name);
  c.vip = Ipv4Prefix{vip, 16};
  return c;
}

TEST(PeerTable, TenThousandPeersAreFoundWithoutAWalk) {
  Fixture f;
  constexpr std::uint32_t kBase = 0x0a4d0000;
  for (std::uint32_t i = 1; i <= 10'000; ++i) {
    Peer& p = f.add(kBase + i);
    f.table.set_request(p, 100'000 + i);
    p.set_certificate(cert_named("n" + std::to_string(i), Ipv4{kBase + i}), Force::kAuto);
    f.table.named(p);
  }
  ASSERT_EQ(f.table.size(), 10'000u);
  const auto walks = f.table.walks();
  for (std::uint32_t i = 1; i <= 10'000; i += 7) {
    ASSERT_EQ(f.table.find(Ipv4{kBase + i})->vip, Ipv4{kBase + i});
    ASSERT_EQ(f.table.by_request(100'000 + i)->vip, Ipv4{kBase + i});
    ASSERT_EQ(f.table.by_name("n" + std::to_string(i))->vip, Ipv4{kBase + i});
    f.table.touch(*f.table.find(Ipv4{kBase + i}));
  }
  EXPECT_EQ(f.table.find(Ipv4{kBase + 20'000}), nullptr);
  EXPECT_EQ(f.table.by_request(7), nullptr);
  EXPECT_EQ(f.table.by_name("nobody"), nullptr);
  EXPECT_EQ(f.table.walks(), walks);  // no lookup walked the table

  std::size_t seen = 0;
  f.table.for_each([&](Peer&) { ++seen; });
  EXPECT_EQ(seen, 10'000u);
  EXPECT_EQ(f.table.walks(), walks + 1);
}

// A run of one peer's packets (find, then touch, per packet) hashes once; erasing a peer
// forgets it at once, and a new peer at its address is found, not the old one.
TEST(PeerTable, ARunForOnePeerHashesOnce) {
  Fixture f;
  f.add(0x0a4d0002);
  f.add(0x0a4d0003);
  const auto before = f.table.hashed();
  for (int i = 0; i < 64; ++i) {
    Peer* p = f.table.find(Ipv4{0x0a4d0002});
    ASSERT_NE(p, nullptr);
    f.table.touch(*p);
  }
  EXPECT_EQ(f.table.hashed(), before + 1);
  EXPECT_EQ(f.table.least_recent([](const Peer&) { return true; }, 8)->vip, Ipv4{0x0a4d0003});
  f.table.erase(Ipv4{0x0a4d0002});
  EXPECT_EQ(f.table.find(Ipv4{0x0a4d0002}), nullptr);
  Peer& again = f.add(0x0a4d0002);
  EXPECT_EQ(f.table.find(Ipv4{0x0a4d0002}), &again);
  // Many inserts (rehashing the table) keep the remembered peer valid.
  for (std::uint32_t i = 0; i < 5000; ++i) f.add(0x0b000000 + i);
  EXPECT_EQ(f.table.find(Ipv4{0x0a4d0002}), &again);
  EXPECT_EQ(f.table.find(Ipv4{0x0b000000 + 4999})->vip, Ipv4{0x0b000000 + 4999});
}

// A lookup's id finds its peer only while it is the peer's latest; erasing a peer unindexes it.
TEST(PeerTable, RequestIdsAndNamesFollowThePeer) {
  Fixture f;
  Peer& p = f.add(5);
  f.table.set_request(p, 1);
  f.table.set_request(p, 2);
  EXPECT_EQ(f.table.by_request(1), nullptr);
  EXPECT_EQ(f.table.by_request(2), &p);
  p.set_certificate(cert_named("old", Ipv4{5}), Force::kAuto);
  f.table.named(p);
  p.set_certificate(cert_named("new", Ipv4{5}), Force::kAuto);
  f.table.named(p);
  EXPECT_EQ(f.table.by_name("old"), nullptr);
  EXPECT_EQ(f.table.by_name("new"), &p);
  f.table.erase(Ipv4{5});
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.table.by_request(2), nullptr);
  EXPECT_EQ(f.table.by_name("new"), nullptr);
  f.table.erase(Ipv4{5});  // twice: nothing
}

// Eviction picks the least recently used peer the predicate allows, within the window.
TEST(PeerTable, LeastRecentlyUsedFirst) {
  Fixture f;
  for (std::uint32_t v = 1; v <= 5; ++v) f.add(v);  // 5 is the most recent
  f.table.touch(*f.table.find(Ipv4{1}));            // now 2 is the least recent
  auto any = [](const Peer&) { return true; };
  EXPECT_EQ(f.table.least_recent(any, 64)->vip, Ipv4{2});
  auto odd = [](const Peer& p) { return p.vip.value % 2 == 1; };
  EXPECT_EQ(f.table.least_recent(odd, 64)->vip, Ipv4{3});
  EXPECT_EQ(f.table.least_recent(odd, 1), nullptr);  // 2 is the only one looked at
  auto none = [](const Peer&) { return false; };
  EXPECT_EQ(f.table.least_recent(none, 64), nullptr);
  // Inserting an address already there keeps the first peer.
  Peer& again = f.add(3);
  EXPECT_EQ(&again, f.table.find(Ipv4{3}));
  EXPECT_EQ(f.table.size(), 5u);
}

TEST(UnknownAddresses, ForgottenAfterTheTtl) {
  UnknownAddresses cache(30s, 100);
  const Time t0{};
  cache.add(t0, Ipv4{7});
  EXPECT_TRUE(cache.contains(t0 + 29s, Ipv4{7}));
  EXPECT_FALSE(cache.contains(t0 + 29s, Ipv4{8}));
  EXPECT_FALSE(cache.contains(t0 + 30s, Ipv4{7}));
  EXPECT_EQ(cache.size(), 0u);
  cache.add(t0, Ipv4{7});
  cache.forget(Ipv4{7});
  EXPECT_FALSE(cache.contains(t0, Ipv4{7}));
}

// Bounded: at capacity the entry added (or refreshed) longest ago goes.
TEST(UnknownAddresses, AtCapacityTheOldestGoes) {
  UnknownAddresses cache(30s, 3);
  const Time t0{};
  for (std::uint32_t v = 1; v <= 3; ++v) cache.add(t0, Ipv4{v});
  cache.add(t0 + 1s, Ipv4{1});  // refreshed: 2 is now the oldest
  cache.add(t0 + 1s, Ipv4{4});
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evicted(), 1u);
  EXPECT_FALSE(cache.contains(t0 + 1s, Ipv4{2}));
  EXPECT_TRUE(cache.contains(t0 + 1s, Ipv4{1}));
  EXPECT_TRUE(cache.contains(t0 + 1s, Ipv4{3}));
  EXPECT_TRUE(cache.contains(t0 + 1s, Ipv4{4}));
  for (std::uint32_t v = 10; v < 10'010; ++v) cache.add(t0 + 2s, Ipv4{v});
  EXPECT_EQ(cache.size(), 3u);

  UnknownAddresses off(30s, 0);
  off.add(t0, Ipv4{1});
  EXPECT_FALSE(off.contains(t0, Ipv4{1}));
}

TEST(TokenBucket, BurstThenRate) {
  TokenBucket bucket(20, 40);
  const Time t0{};
  int taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(t0);
  EXPECT_EQ(taken, 40);
  EXPECT_FALSE(bucket.ready(t0 + 49ms));
  EXPECT_TRUE(bucket.ready(t0 + 50ms));  // one token every 50 ms
  taken = 0;
  for (int ms = 50; ms <= 10'000; ms += 10)
    taken += bucket.take(t0 + std::chrono::milliseconds(ms));
  EXPECT_NEAR(taken, 200, 1);  // 20 a second for 10 s
  // Saved up to the burst, not beyond.
  taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(t0 + 1h);
  EXPECT_EQ(taken, 40);
}

}  // namespace
}  // namespace p2p::core
