// core::DataPath and core::PacketQueue: which mesh address a TUN packet is routed to, what a
// peer's decrypted plaintext is and whether it may enter the TUN (cryptokey routing), and the
// bounded queue of packets waiting for a session.
#include "daemon/core/data_path.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace p2p::core {
namespace {

using Bytes = std::vector<std::uint8_t>;

Ipv4 ip(const char* s) {
  return *Ipv4::parse(s);
}
Ipv4Prefix prefix(const char* s) {
  return *Ipv4Prefix::parse(s);
}

// A minimal IPv4 header (IHL 5) from src to dst followed by `payload_len` bytes of payload;
// the total length field says 20 + payload_len.
Bytes ipv4(Ipv4 src, Ipv4 dst, std::size_t payload_len = 8) {
  Bytes p(20 + payload_len, 0xab);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = static_cast<std::uint8_t>(p.size() >> 8);
  p[3] = static_cast<std::uint8_t>(p.size());
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<std::uint8_t>(src.value >> (24 - 8 * i));
    p[16 + i] = static_cast<std::uint8_t>(dst.value >> (24 - 8 * i));
  }
  return p;
}

Bytes ipv6(std::size_t len = 60) {
  Bytes p(len, 0);
  p[0] = 0x60;
  return p;
}

const Ipv4 kUs = ip("10.77.0.2");
const Ipv4 kPeer = ip("10.77.0.3");

// --- route() -------------------------------------------------------------------------------

// In a /24 mesh: every other host address inside the prefix is routed to that address.
TEST(DataPathRoute, AddressesInsideTheMeshAreRoutedToThemselves) {
  DataPath dp(prefix("10.77.0.2/24"));
  for (const char* dst : {"10.77.0.1", "10.77.0.3", "10.77.0.128", "10.77.0.254"}) {
    auto r = dp.route(ipv4(kUs, ip(dst)));
    ASSERT_TRUE(r) << dst;
    EXPECT_EQ(*r, ip(dst));
  }
}

// Our own address, the network and broadcast addresses, and anything outside the prefix are
// not tunnelled.
TEST(DataPathRoute, OwnNetworkBroadcastAndOutsideAreNotRouted) {
  DataPath dp(prefix("10.77.0.2/24"));
  for (const char* dst :
       {"10.77.0.2", "10.77.0.0", "10.77.0.255", "10.77.1.3", "10.76.255.255", "8.8.8.8"}) {
    EXPECT_FALSE(dp.route(ipv4(kUs, ip(dst)))) << dst;
  }
}

// Only whole IPv4 headers: IPv6, short packets and empty ones are not routed.
TEST(DataPathRoute, Ipv6AndShortPacketsAreNotRouted) {
  DataPath dp(prefix("10.77.0.2/24"));
  EXPECT_FALSE(dp.route(ipv6()));
  EXPECT_FALSE(dp.route({}));
  Bytes p = ipv4(kUs, kPeer);
  EXPECT_FALSE(dp.route(std::span(p).first(19)));
  EXPECT_TRUE(dp.route(std::span(p).first(20)));
  // An IPv6 packet whose bytes 16..19 happen to read as a mesh address.
  Bytes v6 = ipv4(kUs, kPeer);
  v6[0] = 0x60;
  EXPECT_FALSE(dp.route(v6));
}

// A /32 mesh has nobody else in it; a /16 spans the third octet.
TEST(DataPathRoute, SlashThirtyTwoRoutesNothingAndSlashSixteenSpansOctets) {
  DataPath host(prefix("10.77.0.2/32"));
  EXPECT_FALSE(host.route(ipv4(kUs, kPeer)));
  EXPECT_FALSE(host.route(ipv4(kUs, kUs)));

  DataPath wide(prefix("10.77.5.2/16"));
  EXPECT_EQ(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.200.9"))), ip("10.77.200.9"));
  EXPECT_EQ(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.0.255"))), ip("10.77.0.255"));
  EXPECT_EQ(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.255.0"))), ip("10.77.255.0"));
  EXPECT_FALSE(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.255.255"))));  // broadcast
  EXPECT_FALSE(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.0.0"))));      // network
  EXPECT_FALSE(wide.route(ipv4(ip("10.77.5.2"), ip("10.77.5.2"))));      // ourselves
  EXPECT_FALSE(wide.route(ipv4(ip("10.77.5.2"), ip("10.78.0.1"))));      // outside
}

// --- inspect() -----------------------------------------------------------------------------

TEST(DataPathInspect, EmptyIsAKeepalive) {
  DataPath dp(prefix("10.77.0.2/24"));
  EXPECT_EQ(dp.inspect({}, kPeer).kind, DataPath::Inbound::kKeepalive);
}

// From the peer's virtual IP to ours: a packet of its IP total length; padding after it (as a
// link may add) is not part of it.
TEST(DataPathInspect, PacketFromThePeerToUsHasItsTotalLength) {
  DataPath dp(prefix("10.77.0.2/24"));
  Bytes p = ipv4(kPeer, kUs, 30);
  auto v = dp.inspect(p, kPeer);
  EXPECT_EQ(v.kind, DataPath::Inbound::kPacket);
  EXPECT_EQ(v.length, 50u);
  p.resize(p.size() + 13, 0);  // trailing padding
  v = dp.inspect(p, kPeer);
  EXPECT_EQ(v.kind, DataPath::Inbound::kPacket);
  EXPECT_EQ(v.length, 50u);
  // A bare 20-byte header is a packet too.
  v = dp.inspect(ipv4(kPeer, kUs, 0), kPeer);
  EXPECT_EQ(v.kind, DataPath::Inbound::kPacket);
  EXPECT_EQ(v.length, 20u);
}

// Cryptokey routing: a peer may only send from its own virtual IP, and only to ours.
TEST(DataPathInspect, WrongSourceOrDestinationIsBadSource) {
  DataPath dp(prefix("10.77.0.2/24"));
  EXPECT_EQ(dp.inspect(ipv4(ip("10.77.0.9"), kUs), kPeer).kind, DataPath::Inbound::kBadSource);
  EXPECT_EQ(dp.inspect(ipv4(kPeer, ip("10.77.0.9")), kPeer).kind, DataPath::Inbound::kBadSource);
  EXPECT_EQ(dp.inspect(ipv4(kPeer, ip("10.77.0.255")), kPeer).kind, DataPath::Inbound::kBadSource);
  EXPECT_EQ(dp.inspect(ipv4(kUs, kUs), kPeer).kind, DataPath::Inbound::kBadSource);
  // The same packet is fine from the peer it names.
  EXPECT_EQ(dp.inspect(ipv4(ip("10.77.0.9"), kUs), ip("10.77.0.9")).kind,
            DataPath::Inbound::kPacket);
}

// An IPv4 header that does not hold together: IHL below 5, total length below 20 or beyond
// what arrived, or fewer than 20 bytes.
TEST(DataPathInspect, InconsistentIpv4HeadersAreMalformed) {
  DataPath dp(prefix("10.77.0.2/24"));
  Bytes p = ipv4(kPeer, kUs, 10);
  Bytes ihl4 = p;
  ihl4[0] = 0x44;
  EXPECT_EQ(dp.inspect(ihl4, kPeer).kind, DataPath::Inbound::kMalformed);
  Bytes ihl0 = p;
  ihl0[0] = 0x40;
  EXPECT_EQ(dp.inspect(ihl0, kPeer).kind, DataPath::Inbound::kMalformed);
  Bytes short_total = p;
  short_total[2] = 0;
  short_total[3] = 19;
  EXPECT_EQ(dp.inspect(short_total, kPeer).kind, DataPath::Inbound::kMalformed);
  Bytes long_total = p;
  long_total[3] = static_cast<std::uint8_t>(p.size() + 1);
  EXPECT_EQ(dp.inspect(long_total, kPeer).kind, DataPath::Inbound::kMalformed);
  Bytes huge_total = p;
  huge_total[2] = 0xff;
  EXPECT_EQ(dp.inspect(huge_total, kPeer).kind, DataPath::Inbound::kMalformed);
  EXPECT_EQ(dp.inspect(std::span(p).first(19), kPeer).kind, DataPath::Inbound::kMalformed);
  EXPECT_EQ(dp.inspect(std::span(p).first(1), kPeer).kind, DataPath::Inbound::kMalformed);
  // Total length exactly the size: fine.
  EXPECT_EQ(dp.inspect(p, kPeer).kind, DataPath::Inbound::kPacket);
}

TEST(DataPathInspect, Ipv6IsNotRouted) {
  DataPath dp(prefix("10.77.0.2/24"));
  EXPECT_EQ(dp.inspect(ipv6(), kPeer).kind, DataPath::Inbound::kNotRouted);
  EXPECT_EQ(dp.inspect(ipv6(1), kPeer).kind, DataPath::Inbound::kNotRouted);
}

// First byte 0x01..0x3f is a control message (wire/control.hpp), whatever follows.
TEST(DataPathInspect, LowFirstBytesAreControlMessages) {
  DataPath dp(prefix("10.77.0.2/24"));
  for (int b = 0x01; b <= 0x3f; ++b) {
    Bytes m{static_cast<std::uint8_t>(b), 0, 0, 0};
    EXPECT_EQ(dp.inspect(m, kPeer).kind, DataPath::Inbound::kControl) << b;
    Bytes one{static_cast<std::uint8_t>(b)};
    EXPECT_EQ(dp.inspect(one, kPeer).kind, DataPath::Inbound::kControl) << b;
  }
}

// --- PacketQueue, QueueBudget ---------------------------------------------------------------

const Ipv4 kOwner{0x0a4d0003};

// Packets come out oldest first, as they went in.
TEST(PacketQueue, PopsInPushOrder) {
  QueueBudget budget(100, 1 << 20);
  PacketQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop(budget));
  for (std::uint8_t i = 1; i <= 3; ++i) EXPECT_EQ(q.push(Bytes{i, i}, 10, kOwner, budget), 0u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(budget.packets(), 3u);
  EXPECT_EQ(budget.bytes(), 6u);
  for (std::uint8_t i = 1; i <= 3; ++i) {
    auto p = q.pop(budget);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, (Bytes{i, i}));
  }
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop(budget));
  EXPECT_EQ(budget.packets(), 0u);
  EXPECT_EQ(budget.bytes(), 0u);
}

// At the limit, each push drops the oldest packet and says so; the newest are kept.
TEST(PacketQueue, FullQueuePushesTheOldestOut) {
  QueueBudget budget(100, 1 << 20);
  PacketQueue q;
  std::size_t dropped = 0;
  for (std::uint8_t i = 0; i < 10; ++i) dropped += q.push(Bytes{i}, 4, kOwner, budget);
  EXPECT_EQ(dropped, 6u);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(budget.packets(), 4u);
  for (std::uint8_t want = 6; want < 10; ++want) EXPECT_EQ(*q.pop(budget), Bytes{want});
  // The queue holds copies: the caller's buffer may be reused at once.
  Bytes buf{42};
  q.push(buf, 4, kOwner, budget);
  buf[0] = 0;
  EXPECT_EQ(*q.pop(budget), Bytes{42});
}

TEST(PacketQueue, ClearReturnsHowManyWereDroppedAndFreesTheBudget) {
  QueueBudget budget(100, 1 << 20);
  PacketQueue q;
  EXPECT_EQ(q.clear(budget), 0u);
  for (std::uint8_t i = 0; i < 5; ++i) q.push(Bytes{i, i, i}, 8, kOwner, budget);
  EXPECT_EQ(budget.bytes(), 15u);
  EXPECT_EQ(q.clear(budget), 5u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.clear(budget), 0u);
  EXPECT_EQ(budget.packets(), 0u);
  EXPECT_EQ(budget.bytes(), 0u);
}

// The budget counts packets and bytes across queues, and remembers the order they came in:
// the oldest entry names the first queue's front packet by its sequence number.
TEST(QueueBudget, OverByPacketsOrBytesAndOldestFirstAcrossQueues) {
  QueueBudget budget(3, 10);
  PacketQueue a, b;
  const Ipv4 va{1}, vb{2};
  a.push(Bytes{1}, 8, va, budget);
  b.push(Bytes{2}, 8, vb, budget);
  a.push(Bytes{3}, 8, va, budget);
  EXPECT_FALSE(budget.over());
  b.push(Bytes{4}, 8, vb, budget);
  EXPECT_TRUE(budget.over());  // 4 packets > 3
  auto oldest = budget.oldest();
  ASSERT_TRUE(oldest);
  EXPECT_EQ(oldest->owner, va);
  EXPECT_EQ(oldest->seq, a.front_seq());
  budget.pop_oldest();
  a.pop(budget);
  EXPECT_FALSE(budget.over());
  EXPECT_EQ(budget.oldest()->owner, vb);
  EXPECT_EQ(budget.oldest()->seq, b.front_seq());

  QueueBudget bytes(100, 10);
  PacketQueue c;
  c.push(Bytes(10, 0), 8, va, bytes);
  EXPECT_FALSE(bytes.over());
  c.push(Bytes{1}, 8, va, bytes);  // 11 bytes > 10
  EXPECT_EQ(bytes.packets(), 2u);
  EXPECT_TRUE(bytes.over());
}

// Entries of packets that left their queue another way (sent, cleared) do not pile up.
TEST(QueueBudget, CompactForgetsWhatIsNoLongerQueued) {
  QueueBudget budget(1000, 1 << 20);
  PacketQueue q;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 10; ++i) q.push(Bytes{1}, 64, kOwner, budget);
    q.clear(budget);
    budget.compact([&](const QueueBudget::Queued& e) {
      auto front = q.front_seq();
      return front && *front <= e.seq;
    });
  }
  q.push(Bytes{7}, 64, kOwner, budget);
  // 1,000 entries were made; the order holds at most 2 * queued + 64 after compaction.
  std::size_t entries = 0;
  while (auto e = budget.oldest()) {
    ++entries;
    budget.pop_oldest();
  }
  EXPECT_LE(entries, 2u * 1 + 64 + 10);
}

}  // namespace
}  // namespace p2p::core
