// core::SessionTable (local session indices and their owners), core::SessionSlots (one owner's
// handshake in progress, current and previous sessions) and crypto::Session::seal, the one
// way anything is encrypted for sending. Sessions are real TransportSessions with random keys;
// the randomness behind indices is scripted through a fake NodeEffects; time is virtual.
#include "daemon/core/session_table.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include "tests/support/sim_net.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

// fill_random hands out a scripted sequence of 64-bit values (then fails the test).
class ScriptedEffects : public NodeEffects {
 public:
  std::deque<std::uint64_t> script;
  void send_udp(const Endpoint&, std::span<const std::uint8_t>) override {}
  void write_tun(std::span<const std::uint8_t>) override {}
  void fill_random(std::span<std::uint8_t> out) override {
    // Throwing (not ASSERT) so that allocate() cannot loop on a zero it was never given.
    if (out.size() != sizeof(std::uint64_t) || script.empty())
      throw std::runtime_error("randomness asked for beyond the script");
    std::uint64_t v = script.front();
    script.pop_front();
    std::memcpy(out.data(), &v, sizeof v);
  }
  std::uint64_t unix_nanos() override { return 0; }
};

const Time kT0 = Time{} + 1000s;

// Two Sessions sharing fresh random keys, as a completed handshake leaves them: `ours` (local
// index `ours_index`) and `theirs` (whose local index is the remote index we send to).
struct SessionPair {
  crypto::Session ours;
  crypto::Session theirs;
};

SessionPair make_sessions(std::uint32_t ours_index, std::uint32_t theirs_index,
                          Time created = kT0) {
  std::array<std::uint8_t, 32> k1, k2;
  randombytes_buf(k1.data(), k1.size());
  randombytes_buf(k2.data(), k2.size());
  auto keys = [](auto& send, auto& recv) {
    return crypto::noise::TransportKeys{crypto::Wiped<32>(std::span<const std::uint8_t, 32>(send)),
                                        crypto::Wiped<32>(std::span<const std::uint8_t, 32>(recv))};
  };
  return SessionPair{crypto::Session{crypto::TransportSession(keys(k1, k2), created, true),
                                     ours_index, theirs_index},
                     crypto::Session{crypto::TransportSession(keys(k2, k1), created, false),
                                     theirs_index, ours_index}};
}

// A buffer with the headroom and tailroom seal() needs, holding `payload`.
struct Buffer {
  Bytes bytes;
  PacketView view;
  explicit Buffer(const Bytes& payload, std::size_t headroom = kHeadroom,
                  std::size_t tailroom = kTailroom)
      : bytes(headroom + payload.size() + tailroom, 0xee),
        view(bytes.data(), bytes.size(), headroom, payload.size()) {
    std::copy(payload.begin(), payload.end(), bytes.begin() + headroom);
  }
};

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// Seals `payload` with `s`; returns the Data datagram.
Bytes sealed(crypto::Session& s, const Bytes& payload, Time now = kT0) {
  Buffer b(payload);
  auto r = s.seal(now, b.view);
  EXPECT_TRUE(r) << (r ? "" : crypto::to_string(r.error()));
  return Bytes(b.view.span().begin(), b.view.span().end());
}

// Opens a Data datagram with `slots`: the plaintext, or the error.
Expected<Bytes, SessionSlots::OpenError> open(SessionSlots& slots, Bytes datagram, Time now = kT0) {
  auto h = wire::parse_data(datagram);
  EXPECT_TRUE(h);
  if (!h) return fail(SessionSlots::OpenError::kNotOurs);
  auto body = std::span(datagram).subspan(wire::kDataHeaderSize);
  auto n = slots.open(now, *h, body);
  if (!n) return fail(n.error());
  return Bytes(body.begin(), body.begin() + *n);
}

// A handshake in progress (an XX initiation), to fill PendingHandshake.
crypto::AuthHandshake some_handshake() {
  static const sim::TestCa ca(1'800'000'000);
  static const crypto::Identity id = ca.issue("n", "10.77.0.2/24");
  return crypto::AuthHandshake::initiator(
      crypto::AuthHandshake::Kind::kXX, id,
      [](const crypto::Certificate&) -> Expected<void, crypto::CertError> { return {}; });
}

const SessionOwner kCoordinator{true, 0};
const SessionOwner kPeer{false, 0x0a4d0003};

// --- SessionTable --------------------------------------------------------------------------

// allocate() never hands out 0 or an index in use: it draws again. Only the low 32 bits of a
// draw count, so 2^32 is 0 and 2^32 + 7 collides with 7.
TEST(SessionTable, AllocateSkipsZeroAndIndicesInUse) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {0, 7, 0x1'0000'0000ull, 0x1'0000'0007ull, 7, 9};
  EXPECT_EQ(table.allocate(kCoordinator), 7u);  // 0 skipped
  EXPECT_EQ(table.allocate(kPeer), 9u);         // 0 (2^32), 7 twice skipped
  EXPECT_TRUE(fx.script.empty());
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find(7), kCoordinator);
  EXPECT_EQ(table.find(9), kPeer);
}

// release() frees an index: it is unknown afterwards and may be handed out again.
TEST(SessionTable, ReleaseAndFind) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {5, 6, 5};
  auto a = table.allocate(kPeer);
  auto b = table.allocate(kCoordinator);
  EXPECT_FALSE(table.find(1234));
  table.release(a);
  EXPECT_FALSE(table.find(a));
  EXPECT_EQ(table.find(b), kCoordinator);
  EXPECT_EQ(table.size(), 1u);
  table.release(a);  // twice: harmless
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.allocate(kPeer), 5u);  // reused
}

// A run of datagrams for one index hashes once; the remembered index is forgotten when it is
// released, so a released index is unknown at once, and a reused one names its new owner.
TEST(SessionTable, ARunForOneIndexHashesOnce) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {5, 6, 5};
  auto a = table.allocate(kPeer);
  auto b = table.allocate(kCoordinator);
  const auto before = table.hashed();
  for (int i = 0; i < 64; ++i) ASSERT_EQ(table.find(a), kPeer);
  EXPECT_EQ(table.hashed(), before + 1);
  EXPECT_EQ(table.find(b), kCoordinator);  // another index: hashed
  EXPECT_EQ(table.find(a), kPeer);
  EXPECT_EQ(table.hashed(), before + 3);
  table.release(a);             // a was the one remembered: now none is
  EXPECT_FALSE(table.find(0));  // 0 means "none remembered", never an index
  EXPECT_FALSE(table.find(a));
  EXPECT_EQ(table.allocate(kCoordinator), 5u);  // reused by another owner
  EXPECT_EQ(table.find(a), kCoordinator);
}

// --- rekey_time ----------------------------------------------------------------------------

// The initiator renews after kRekeyAfterTime; the responder only at 165 s, after it.
TEST(SessionTable, RekeyTimeDependsOnTheRole) {
  auto p = make_sessions(1, 2);
  EXPECT_EQ(rekey_time(p.ours.transport), kT0 + crypto::kRekeyAfterTime);
  EXPECT_EQ(rekey_time(p.theirs.transport), kT0 + 165s);
}

// --- SessionSlots --------------------------------------------------------------------------

// install(): the new session becomes current, current becomes previous, and the older
// previous is dropped with its index.
TEST(SessionSlots, InstallRotatesAndReleasesTheOldestIndex) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {11, 12, 13};
  SessionSlots slots;
  const auto i1 = table.allocate(kPeer), i2 = table.allocate(kPeer), i3 = table.allocate(kPeer);
  slots.install(table, make_sessions(i1, 100).ours);
  EXPECT_EQ(slots.current->local_index, i1);
  EXPECT_FALSE(slots.previous);
  slots.install(table, make_sessions(i2, 200).ours);
  EXPECT_EQ(slots.current->local_index, i2);
  EXPECT_EQ(slots.previous->local_index, i1);
  EXPECT_TRUE(table.find(i1));
  slots.install(table, make_sessions(i3, 300).ours);
  EXPECT_EQ(slots.current->local_index, i3);
  EXPECT_EQ(slots.previous->local_index, i2);
  EXPECT_FALSE(table.find(i1));
  EXPECT_TRUE(table.find(i2));
  EXPECT_TRUE(table.find(i3));
  EXPECT_EQ(table.size(), 2u);
}

// Sessions are dropped at exactly kRejectAfterTime (179.999 s: kept), with their indices.
TEST(SessionSlots, ExpireDropsAtExactlyRejectAfterTime) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {21, 22};
  SessionSlots slots;
  const auto old_index = table.allocate(kPeer), new_index = table.allocate(kPeer);
  slots.install(table, make_sessions(old_index, 1, kT0).ours);
  slots.install(table, make_sessions(new_index, 2, kT0 + 100s).ours);

  EXPECT_FALSE(slots.expire(table, kT0 + 179999ms));
  EXPECT_TRUE(slots.previous);
  EXPECT_TRUE(table.find(old_index));

  EXPECT_FALSE(slots.expire(table, kT0 + 180s));  // previous goes, current stays
  EXPECT_FALSE(slots.previous);
  EXPECT_FALSE(table.find(old_index));
  EXPECT_TRUE(slots.current);
  EXPECT_TRUE(slots.usable(kT0 + 180s));

  EXPECT_FALSE(slots.expire(table, kT0 + 100s + 179999ms));
  EXPECT_TRUE(slots.usable(kT0 + 100s + 179999ms));
  EXPECT_TRUE(slots.expire(table, kT0 + 100s + 180s));  // current dropped: says so
  EXPECT_FALSE(slots.current);
  EXPECT_FALSE(slots.usable(kT0 + 100s + 180s));
  EXPECT_FALSE(table.find(new_index));
  EXPECT_EQ(table.size(), 0u);
}

// open(): the receiver index picks current or previous; an index neither has is kNotOurs;
// a tampered datagram for our index is kFailed.
TEST(SessionSlots, OpenDecryptsWithCurrentOrPreviousByReceiverIndex) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {31, 32};
  SessionSlots slots;
  auto first = make_sessions(table.allocate(kPeer), 901);
  auto second = make_sessions(table.allocate(kPeer), 902);
  slots.install(table, std::move(first.ours));
  // The peer sealed this one before the rekey; it arrives after it.
  const Bytes late = sealed(first.theirs, text("before rekey"));
  slots.install(table, std::move(second.ours));

  auto got = open(slots, sealed(second.theirs, text("after rekey")));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, text("after rekey"));
  got = open(slots, late);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, text("before rekey"));
  EXPECT_EQ(*open(slots, sealed(second.theirs, {})), Bytes{});  // keepalive

  auto stranger = make_sessions(4242, 903);
  auto r = open(slots, sealed(stranger.theirs, text("not for us")));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kNotOurs);

  Bytes tampered = sealed(second.theirs, text("tamper me"));
  tampered[wire::kDataHeaderSize + 2] ^= 0x01;
  r = open(slots, tampered);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kFailed);

  // The same datagram twice: the second is a replay.
  const Bytes once = sealed(second.theirs, text("once"));
  ASSERT_TRUE(open(slots, once));
  r = open(slots, once);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kFailed);
}

// Opening ahead (workers): a batch holding a datagram, its replay, a forgery and one for a
// stranger. prepare_open() takes what a session would take now; finish_open() then answers,
// in order, what open() answers serially: the replay inside the batch fails, and a session
// dropped between the two steps makes its datagram not ours.
TEST(SessionSlots, OpenAheadAnswersAsOpenInOrder) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {61, 62};
  SessionSlots slots;
  auto p = make_sessions(table.allocate(kPeer), 7);
  slots.install(table, std::move(p.ours));
  const Bytes once = sealed(p.theirs, text("once"));
  Bytes forged = sealed(p.theirs, text("forged"));
  forged[wire::kDataHeaderSize] ^= 0x01;
  auto stranger = make_sessions(4242, 8);
  std::vector<Bytes> batch{once, once, forged, sealed(stranger.theirs, text("x")),
                           sealed(p.theirs, text("last"))};
  Bytes pool(batch.size() * 256);
  crypto::CryptoJobs jobs(batch.size());
  jobs.set_region(pool);
  std::vector<std::optional<std::size_t>> job;
  std::vector<wire::DataHeader> header;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::copy(batch[i].begin(), batch[i].end(), pool.begin() + i * 256);
    header.push_back(*wire::parse_data(batch[i]));
    auto body = std::span(pool).subspan(i * 256 + wire::kDataHeaderSize,
                                        batch[i].size() - wire::kDataHeaderSize);
    job.push_back(slots.prepare_open(kT0, header[i], body, jobs));
  }
  EXPECT_EQ(job, (std::vector<std::optional<std::size_t>>{0, 1, 2, std::nullopt, 3}));
  crypto::CryptoWorkers(1).run(jobs.pending());
  auto r = slots.finish_open(kT0, header[0], jobs[*job[0]]);
  ASSERT_TRUE(r);
  EXPECT_EQ(Bytes(pool.begin() + wire::kDataHeaderSize, pool.begin() + wire::kDataHeaderSize + *r),
            text("once"));
  r = slots.finish_open(kT0, header[1], jobs[*job[1]]);  // the replay
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kFailed);
  r = slots.finish_open(kT0, header[2], jobs[*job[2]]);  // the forgery
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kFailed);
  slots.clear(table);  // dropped in the middle of the batch
  r = slots.finish_open(kT0, header[4], jobs[*job[4]]);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kNotOurs);
  jobs.clear();
}

// A dropped session's index is not ours any more.
TEST(SessionSlots, OpenAfterExpiryIsNotOurs) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {41};
  SessionSlots slots;
  auto p = make_sessions(table.allocate(kPeer), 1);
  slots.install(table, std::move(p.ours));
  const Bytes d = sealed(p.theirs, text("x"), kT0 + 170s);
  ASSERT_TRUE(slots.expire(table, kT0 + 180s));
  auto r = open(slots, d, kT0 + 180s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), SessionSlots::OpenError::kNotOurs);
}

// begin(): a retry keeps the series' first_try and releases the replaced attempt's index;
// abandon_pending() releases the last one.
TEST(SessionSlots, BeginKeepsFirstTryAndReleasesTheReplacedIndex) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {51, 52, 53};
  SessionSlots slots;
  const auto i1 = table.allocate(kPeer);
  EXPECT_EQ(slots.begin(table, PendingHandshake{some_handshake(), i1, kT0, kT0}), kT0);
  const auto i2 = table.allocate(kPeer);
  EXPECT_EQ(slots.begin(table, PendingHandshake{some_handshake(), i2, kT0 + 5s, kT0 + 5s}), kT0);
  EXPECT_EQ(slots.pending->first_try, kT0);
  EXPECT_EQ(slots.pending->started, kT0 + 5s);
  EXPECT_EQ(slots.pending->local_index, i2);
  EXPECT_FALSE(table.find(i1));
  EXPECT_TRUE(table.find(i2));

  slots.abandon_pending(table);
  EXPECT_FALSE(slots.pending);
  EXPECT_FALSE(table.find(i2));
  // A new series starts its own clock.
  const auto i3 = table.allocate(kPeer);
  EXPECT_EQ(slots.begin(table, PendingHandshake{some_handshake(), i3, kT0 + 9s, kT0 + 9s}),
            kT0 + 9s);
}

// clear() releases everything; drop_sessions() keeps the handshake in progress.
TEST(SessionSlots, ClearAndDropSessionsReleaseWhatTheyDrop) {
  ScriptedEffects fx;
  SessionTable table(fx);
  fx.script = {61, 62, 63};
  SessionSlots slots;
  slots.install(table, make_sessions(table.allocate(kPeer), 1).ours);
  slots.install(table, make_sessions(table.allocate(kPeer), 2).ours);
  const auto hs = table.allocate(kPeer);
  slots.begin(table, PendingHandshake{some_handshake(), hs, kT0, kT0});
  slots.drop_sessions(table);
  EXPECT_FALSE(slots.current);
  EXPECT_FALSE(slots.previous);
  EXPECT_TRUE(slots.pending);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(table.find(hs));
  slots.clear(table);
  EXPECT_FALSE(slots.pending);
  EXPECT_EQ(table.size(), 0u);
}

// --- crypto::Session::seal -----------------------------------------------------------------

// seal() leaves a Data datagram in the same view: the header names the other side's index and
// the counter, and the other side's TransportSession decrypts the body.
TEST(SessionSeal, ProducesADataDatagramTheOtherSideDecrypts) {
  auto p = make_sessions(0x01020304, 0xa0b0c0d0);
  for (std::uint64_t i = 0; i < 3; ++i) {
    const Bytes msg = text("payload " + std::to_string(i));
    Buffer b(msg);
    const std::uint8_t* buffer_start = b.bytes.data();
    ASSERT_TRUE(p.ours.seal(kT0, b.view));
    EXPECT_EQ(b.view.size(), wire::kDataHeaderSize + msg.size() + wire::kTagSize);
    EXPECT_EQ(b.view.headroom(), kHeadroom - wire::kDataHeaderSize);  // in place
    EXPECT_EQ(b.view.data(), buffer_start + kHeadroom - wire::kDataHeaderSize);
    EXPECT_EQ(wire::classify(b.view.span()), wire::DatagramKind::kData);
    auto h = wire::parse_data(b.view.span());
    ASSERT_TRUE(h);
    EXPECT_EQ(h->receiver_index, 0xa0b0c0d0u);
    EXPECT_EQ(h->counter, i);
    Bytes body(h->ciphertext.begin(), h->ciphertext.end());
    EXPECT_NE(Bytes(body.begin(), body.begin() + msg.size()), msg);  // encrypted
    auto n = p.theirs.transport.decrypt(kT0, h->counter, body);
    ASSERT_TRUE(n);
    body.resize(*n);
    EXPECT_EQ(body, msg);
  }
}

// Without kDataHeaderSize of headroom or kTagSize of tailroom, seal() refuses and leaves the
// view, its bytes and the send counter as they were.
TEST(SessionSeal, RefusesWithoutHeadroomOrTailroomLeavingTheViewUnchanged) {
  auto p = make_sessions(1, 2);
  const Bytes msg = text("unchanged");
  for (auto [head, tail] : {std::pair<std::size_t, std::size_t>{wire::kDataHeaderSize - 1, 64},
                            {64, wire::kTagSize - 1},
                            {0, 0}}) {
    Buffer b(msg, head, tail);
    const Bytes before = b.bytes;
    auto r = p.ours.seal(kT0, b.view);
    ASSERT_FALSE(r) << head << "/" << tail;
    EXPECT_EQ(r.error(), crypto::TransportError::too_short);
    EXPECT_EQ(b.view.headroom(), head);
    EXPECT_EQ(b.view.size(), msg.size());
    EXPECT_EQ(b.view.tailroom(), tail);
    EXPECT_EQ(b.bytes, before);
    EXPECT_EQ(p.ours.transport.send_counter(), 0u);
  }
  // Exactly enough room works.
  Buffer exact(msg, wire::kDataHeaderSize, wire::kTagSize);
  ASSERT_TRUE(p.ours.seal(kT0, exact.view));
  EXPECT_EQ(exact.view.headroom(), 0u);
  EXPECT_EQ(exact.view.tailroom(), 0u);
}

// An expired session refuses to seal, leaving the view unchanged.
TEST(SessionSeal, ExpiredSessionRefuses) {
  auto p = make_sessions(1, 2);
  Buffer b(text("late"));
  auto r = p.ours.seal(kT0 + crypto::kRejectAfterTime, b.view);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), crypto::TransportError::expired);
  EXPECT_EQ(b.view.headroom(), kHeadroom);
  EXPECT_EQ(b.view.size(), 4u);
}

}  // namespace
}  // namespace p2p::core
