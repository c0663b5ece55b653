// TransportSession and ReplayWindow: round trips, tampering, replay and reordering against a
// reference model, counter exhaustion, the rekey/expiry timers at exact virtual times, and the
// relay frame's tag (Session::seal_relay / open_relay).
#include "crypto/transport.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "crypto/session.hpp"

namespace p2p::crypto {
namespace {

using Bytes = std::vector<std::uint8_t>;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Time kT0{};

// Two sessions sharing fresh random keys: a = initiator, b = responder.
struct Link {
  TransportSession a;
  TransportSession b;
};

Link make_link(Time created = kT0) {
  std::array<std::uint8_t, 32> k1, k2;
  randombytes_buf(k1.data(), k1.size());
  randombytes_buf(k2.data(), k2.size());
  auto keys = [&](auto& send, auto& recv) {
    return noise::TransportKeys{Wiped<32>(std::span<const std::uint8_t, 32>(send)),
                                Wiped<32>(std::span<const std::uint8_t, 32>(recv))};
  };
  return Link{TransportSession(keys(k1, k2), created, true),
              TransportSession(keys(k2, k1), created, false)};
}

struct Packet {
  std::uint64_t counter;
  Bytes wire;  // ciphertext || tag
};

Packet seal(TransportSession& s, const Bytes& plaintext, Time now = kT0,
            std::span<const std::uint8_t> ad = {}) {
  Bytes buf = plaintext;
  buf.resize(plaintext.size() + kTransportTagLen);
  auto counter = s.encrypt(now, buf, plaintext.size(), ad);
  EXPECT_TRUE(counter) << to_string(counter.error());
  return Packet{counter ? *counter : 0, std::move(buf)};
}

// Decrypts a copy of `p` (decrypt works in place); returns the plaintext or the error.
Expected<Bytes, TransportError> open(TransportSession& s, const Packet& p, Time now = kT0,
                                     std::span<const std::uint8_t> ad = {}) {
  Bytes buf = p.wire;
  auto len = s.decrypt(now, p.counter, buf, ad);
  if (!len) return fail(len.error());
  buf.resize(*len);
  return buf;
}

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

TEST(Transport, RoundTripBothDirectionsWithCountersInOrder) {
  Link link = make_link();
  for (std::uint64_t i = 0; i < 5; ++i) {
    const Bytes msg = text("ping " + std::to_string(i));
    Packet p = seal(link.a, msg);
    EXPECT_EQ(p.counter, i);
    EXPECT_NE(Bytes(p.wire.begin(), p.wire.begin() + msg.size()), msg);
    auto got = open(link.b, p);
    ASSERT_TRUE(got) << to_string(got.error());
    EXPECT_EQ(*got, msg);
    auto back = open(link.a, seal(link.b, text("pong")));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, text("pong"));
  }
  EXPECT_EQ(link.a.send_counter(), 5u);
  // Empty packets (keepalives) and a full-size one.
  ASSERT_TRUE(open(link.b, seal(link.a, {})));
  const Bytes big(65519, 0x5a);
  EXPECT_EQ(*open(link.b, seal(link.a, big)), big);
}

TEST(Transport, EncryptNeedsTailroomForTheTag) {
  Link link = make_link();
  Bytes buf(20);
  auto r = link.a.encrypt(kT0, buf, 5);  // 5 + 16 > 20
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), TransportError::too_short);
  Bytes tiny(3);
  EXPECT_EQ(link.a.encrypt(kT0, tiny, 0).error(), TransportError::too_short);
  EXPECT_EQ(link.a.send_counter(), 0u);  // no counter consumed
  ASSERT_TRUE(link.a.encrypt(kT0, buf, 4));
  Bytes runt(15);
  EXPECT_EQ(link.b.decrypt(kT0, 0, runt).error(), TransportError::too_short);
}

TEST(Transport, TamperingIsDetectedAndDoesNotMoveTheWindow) {
  Link link = make_link();
  const Bytes ad = text("header");
  const Packet p = seal(link.a, text("secret payload"), kT0, ad);
  for (std::size_t i = 0; i < p.wire.size(); ++i) {
    for (std::uint8_t bit = 1; bit; bit <<= 1) {
      Packet bad = p;
      bad.wire[i] ^= bit;
      auto r = open(link.b, bad, kT0, ad);
      ASSERT_FALSE(r) << "byte " << i;
      EXPECT_EQ(r.error(), TransportError::auth_failed);
    }
  }
  for (std::uint64_t wrong : {p.counter + 1, p.counter + 5000, std::uint64_t{1} << 40}) {
    auto r = open(link.b, Packet{wrong, p.wire}, kT0, ad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), TransportError::auth_failed);
  }
  EXPECT_EQ(open(link.b, p, kT0, text("Header")).error(), TransportError::auth_failed);
  EXPECT_EQ(open(link.b, p).error(), TransportError::auth_failed);  // AD missing
  // Wrong direction: b's own send key does not open a's packet.
  EXPECT_EQ(open(link.a, p, kT0, ad).error(), TransportError::auth_failed);
  // None of the forgeries (counter 1<<40 included) advanced the window.
  auto ok = open(link.b, p, kT0, ad);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, text("secret payload"));
}

TEST(Transport, ReplaysAreRejected) {
  Link link = make_link();
  const Packet p0 = seal(link.a, text("zero"));
  const Packet p1 = seal(link.a, text("one"));
  ASSERT_TRUE(open(link.b, p0));
  EXPECT_EQ(open(link.b, p0).error(), TransportError::replayed);
  ASSERT_TRUE(open(link.b, p1));
  EXPECT_EQ(open(link.b, p1).error(), TransportError::replayed);
  EXPECT_EQ(open(link.b, p0).error(), TransportError::replayed);
}

TEST(Transport, OutOfOrderWithinWindowAcceptedExactlyOnce) {
  Link link = make_link();
  std::vector<Packet> packets;
  for (int i = 0; i < 300; ++i) packets.push_back(seal(link.a, text("n" + std::to_string(i))));
  std::reverse(packets.begin(), packets.end());
  for (const Packet& p : packets) {
    auto got = open(link.b, p);
    ASSERT_TRUE(got) << p.counter;
    EXPECT_EQ(*got, text("n" + std::to_string(p.counter)));
  }
  for (const Packet& p : packets) EXPECT_EQ(open(link.b, p).error(), TransportError::replayed);
}

TEST(Transport, BeyondTheWindowIsTooOld) {
  Link link = make_link();
  std::vector<Packet> packets;
  const std::uint64_t n = ReplayWindow::kWindowSize + 200;
  for (std::uint64_t i = 0; i <= n; ++i) packets.push_back(seal(link.a, {}));
  ASSERT_TRUE(open(link.b, packets[n]));
  // Exactly kWindowSize behind the newest is still in; one more is out.
  EXPECT_TRUE(open(link.b, packets[n - ReplayWindow::kWindowSize]));
  EXPECT_EQ(open(link.b, packets[n - ReplayWindow::kWindowSize - 1]).error(),
            TransportError::too_old);
  EXPECT_EQ(open(link.b, packets[0]).error(), TransportError::too_old);
  EXPECT_TRUE(open(link.b, packets[n - 1]));
}

TEST(ReplayWindow, WindowEdgeAndRingWrap) {
  static_assert(ReplayWindow::kWindowSize >= 2048);
  ReplayWindow w;
  ASSERT_TRUE(w.check(0));
  w.update(0);
  EXPECT_EQ(w.check(0).error(), TransportError::replayed);
  // The oldest acceptable counter sits kBlocks - 1 ring slots behind the newest: no overlap.
  const std::uint64_t top = ReplayWindow::kWindowSize + 63;
  w.update(top);
  EXPECT_EQ(w.check(top).error(), TransportError::replayed);
  EXPECT_TRUE(w.check(top - ReplayWindow::kWindowSize));
  EXPECT_EQ(w.check(top - ReplayWindow::kWindowSize - 1).error(), TransportError::too_old);
  w.update(top - ReplayWindow::kWindowSize);
  EXPECT_EQ(w.check(top - ReplayWindow::kWindowSize).error(), TransportError::replayed);
  EXPECT_EQ(w.check(top).error(), TransportError::replayed);
  // A jump far ahead clears every stale bit.
  const std::uint64_t far = 1'000'000;
  w.update(far);
  for (std::uint64_t c = far - ReplayWindow::kWindowSize; c < far; ++c) {
    ASSERT_TRUE(w.check(c)) << c;
  }
  EXPECT_EQ(w.check(far - ReplayWindow::kWindowSize - 1).error(), TransportError::too_old);
  EXPECT_EQ(w.check(kRejectAfterMessages).error(), TransportError::exhausted);
  EXPECT_TRUE(w.check(kRejectAfterMessages - 1));
}

// The window against a plain reference model under heavy seeded reordering and duplication:
// accept iff never accepted before and no more than kWindowSize behind the highest accepted.
TEST(ReplayWindow, MatchesReferenceModelUnderRandomReordering) {
  for (std::uint32_t seed : {1u, 2u, 3u, 42u}) {
    std::mt19937_64 rng(seed);
    // Arrival order: sort by counter + delay. Most delays are short, one in eight is long
    // enough to fall out of the window, and one packet in ten is duplicated with its own delay.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> keyed;  // (arrival key, counter)
    for (std::uint64_t c = 0; c < 50'000; ++c) {
      keyed.emplace_back(c + (rng() % 8 == 0 ? rng() % 3000 : rng() % 200), c);
      if (rng() % 10 == 0) keyed.emplace_back(c + rng() % 4000, c);
    }
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::uint64_t> arrivals;
    for (const auto& [key, c] : keyed) arrivals.push_back(c);
    ReplayWindow w;
    std::set<std::uint64_t> seen;
    std::uint64_t highest = 0;
    std::size_t accepted = 0, rejected_old = 0, rejected_replay = 0;
    for (std::uint64_t c : arrivals) {
      const bool expect_ok = !seen.contains(c) && c + ReplayWindow::kWindowSize >= highest;
      auto r = w.check(c);
      ASSERT_EQ(bool(r), expect_ok) << "seed " << seed << " counter " << c;
      if (r) {
        w.update(c);
        seen.insert(c);
        highest = std::max(highest, c);
        ++accepted;
      } else if (r.error() == TransportError::too_old) {
        ++rejected_old;
        ASSERT_LT(c + ReplayWindow::kWindowSize, highest);
      } else {
        ++rejected_replay;
        ASSERT_TRUE(seen.contains(c));
      }
    }
    // The workload really exercised all three outcomes.
    EXPECT_GT(accepted, 40'000u);
    EXPECT_GT(rejected_old, 100u);
    EXPECT_GT(rejected_replay, 1'000u);
  }
}

TEST(Transport, ReorderedStreamThroughTheSession) {
  Link link = make_link();
  std::vector<Packet> packets;
  for (int i = 0; i < 5000; ++i) packets.push_back(seal(link.a, text(std::to_string(i))));
  // Each packet is delayed by up to 1500 slots: always less than the window.
  std::mt19937 rng(7);
  std::vector<std::uint64_t> delay(packets.size());
  for (auto& d : delay) d = rng() % 1500;
  std::sort(packets.begin(), packets.end(), [&](const Packet& x, const Packet& y) {
    return x.counter + delay[x.counter] < y.counter + delay[y.counter];
  });
  std::set<std::uint64_t> delivered;
  for (const Packet& p : packets) {
    auto got = open(link.b, p);
    ASSERT_TRUE(got) << p.counter;
    EXPECT_EQ(*got, text(std::to_string(p.counter)));
    delivered.insert(p.counter);
    EXPECT_EQ(open(link.b, p).error(), TransportError::replayed);
  }
  EXPECT_EQ(delivered.size(), packets.size());
}

TEST(Transport, CounterExhaustionRefusesToEncrypt) {
  Link link = make_link();
  link.a.set_send_counter_for_testing(kRejectAfterMessages - 2);
  const Packet p1 = seal(link.a, text("penultimate"));
  const Packet p2 = seal(link.a, text("last"));
  EXPECT_EQ(p1.counter, kRejectAfterMessages - 2);
  EXPECT_EQ(p2.counter, kRejectAfterMessages - 1);
  Bytes buf(32);
  auto r = link.a.encrypt(kT0, buf, 4);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), TransportError::exhausted);
  EXPECT_EQ(link.a.send_counter(), kRejectAfterMessages);
  EXPECT_TRUE(link.a.should_rekey(kT0));
  EXPECT_EQ(*open(link.b, p2), text("last"));
  EXPECT_EQ(*open(link.b, p1), text("penultimate"));
  // A receiver refuses counters at the limit before doing any cryptography.
  EXPECT_EQ(open(link.b, Packet{kRejectAfterMessages, p2.wire}).error(), TransportError::exhausted);
  EXPECT_EQ(kRejectAfterMessages, ~std::uint64_t{0} - 8192);  // 2^64 - 2^13 - 1
}

TEST(Transport, RekeyAfterMessages) {
  Link link = make_link();
  link.b.set_send_counter_for_testing(kRekeyAfterMessages - 1);
  EXPECT_FALSE(link.b.should_rekey(kT0));
  seal(link.b, text("x"));
  EXPECT_TRUE(link.b.should_rekey(kT0));
}

TEST(Transport, TimersAtExactVirtualTimes) {
  const Time created = kT0 + seconds(1000);
  Link link = make_link(created);
  // Initiator: 120 s.
  EXPECT_FALSE(link.a.should_rekey(created + milliseconds(119'999)));
  EXPECT_TRUE(link.a.should_rekey(created + seconds(120)));
  // Responder: 180 - 10 - 5 = 165 s.
  EXPECT_FALSE(link.b.should_rekey(created + seconds(120)));
  EXPECT_FALSE(link.b.should_rekey(created + milliseconds(164'999)));
  EXPECT_TRUE(link.b.should_rekey(created + seconds(165)));
  // Expiry: 180 s, both directions refuse.
  const Time before = created + milliseconds(179'999);
  const Time at = created + seconds(180);
  EXPECT_FALSE(link.a.is_expired(before));
  EXPECT_TRUE(link.a.is_expired(at));
  EXPECT_TRUE(link.b.is_expired(at));
  const Packet p = seal(link.a, text("late"), before);
  Bytes buf(40);
  EXPECT_EQ(link.a.encrypt(at, buf, 8).error(), TransportError::expired);
  EXPECT_EQ(open(link.b, p, at).error(), TransportError::expired);
  EXPECT_EQ(*open(link.b, p, before), text("late"));
}

TEST(Transport, ErrorNamesAreDistinct) {
  std::set<std::string_view> names;
  for (auto e : {TransportError::replayed, TransportError::too_old, TransportError::auth_failed,
                 TransportError::expired, TransportError::too_short, TransportError::exhausted}) {
    names.insert(to_string(e));
  }
  EXPECT_EQ(names.size(), 6u);
}

// Session::seal_relay / open_relay (net/packet.hpp's relay frames): the tag covers the header
// and the inner datagram's size, never its bytes, and shares the session's counter and window.
TEST(RelayFrame, TagCoversHeaderAndSizeButNotTheInnerBytes) {
  auto link = make_link();
  Session a{std::move(link.a), 1, 2}, b{std::move(link.b), 2, 1};
  const Bytes inner = text("an end-to-end sealed datagram");
  auto frame = [&](std::uint32_t vip) {
    Bytes buf(kHeadroom + inner.size() + kTailroom);
    std::copy(inner.begin(), inner.end(), buf.begin() + kHeadroom);
    PacketView v(buf.data(), buf.size(), kHeadroom, inner.size());
    EXPECT_TRUE(a.seal_relay(kT0, v, wire::PacketType::kRelay, vip));
    return Bytes(v.span().begin(), v.span().end());
  };
  auto open = [&](Bytes f) -> Expected<void, TransportError> {
    auto parsed = wire::parse_relay(f);
    if (!parsed) return fail(TransportError::too_short);
    return b.open_relay(kT0, parsed->counter, f);
  };
  Bytes f0 = frame(0x0a000002);
  ASSERT_EQ(f0.size(), wire::kRelayHeaderSize + inner.size());
  auto parsed = wire::parse_relay(f0);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->type, wire::PacketType::kRelay);
  EXPECT_EQ(parsed->receiver_index, 2u);  // a's remote index, b's local one
  EXPECT_EQ(parsed->counter, 0u);
  EXPECT_EQ(parsed->vip, 0x0a000002u);
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), parsed->inner.begin(), parsed->inner.end()));

  // Every header byte and the size are covered; a refused frame leaves the window alone.
  for (std::size_t i = 0; i < wire::kRelayHeaderSize; ++i) {
    if (i >= 8 && i < 16) continue;  // the counter: another nonce, checked below
    Bytes bad = f0;
    bad[i] ^= 0x01;
    EXPECT_FALSE(open(bad)) << "byte " << i;
  }
  Bytes longer = f0;
  longer.push_back(0);
  EXPECT_EQ(open(longer).error(), TransportError::auth_failed);
  Bytes renumbered = f0;
  renumbered[8] = 5;
  EXPECT_EQ(open(renumbered).error(), TransportError::auth_failed);
  // The inner bytes are the peers' to authenticate: changing them keeps the tag valid.
  Bytes inner_changed = f0;
  inner_changed.back() ^= 0xff;
  EXPECT_TRUE(open(inner_changed));
  EXPECT_EQ(open(f0).error(), TransportError::replayed);  // counter 0 is taken now

  // Counters continue the session's: a Data message and a relay frame never share one.
  Packet data = seal(a.transport, text("control"));
  EXPECT_EQ(data.counter, 1u);
  Bytes f2 = frame(0x0a000003);
  EXPECT_EQ(wire::parse_relay(f2)->counter, 2u);
  EXPECT_TRUE(open(f2));
  // A Relayed frame made by the other side verifies the same way.
  Bytes buf(kHeadroom + inner.size() + kTailroom);
  std::copy(inner.begin(), inner.end(), buf.begin() + kHeadroom);
  PacketView v(buf.data(), buf.size(), kHeadroom, inner.size());
  ASSERT_TRUE(b.seal_relay(kT0, v, wire::PacketType::kRelayed, 0x0a000009));
  Bytes back(v.span().begin(), v.span().end());
  EXPECT_EQ(wire::parse_relay(back)->type, wire::PacketType::kRelayed);
  EXPECT_TRUE(a.open_relay(kT0, wire::parse_relay(back)->counter, back));
  // No headroom for the header: refused, nothing consumed.
  Bytes tight(inner.size() + kTailroom);
  PacketView t(tight.data(), tight.size(), 0, inner.size());
  const auto next = a.transport.send_counter();
  EXPECT_EQ(a.seal_relay(kT0, t, wire::PacketType::kRelay, 1).error(), TransportError::too_short);
  EXPECT_EQ(a.transport.send_counter(), next);
}

}  // namespace
}  // namespace p2p::crypto
