// core::PeerHandshakes on its own: two peers' handshake objects exchange the IK messages in
// memory, the sessions they install talk to each other, and the refusals (replay, a foreign
// CA, a response that answers nothing) leave the peers as they were.
#include "daemon/core/handshakes.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "tests/support/sim_net.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

constexpr UnixTime kUnixNow = 1'750'000'000;

struct FakeEffects final : NodeEffects {
  std::uint64_t counter = 1;
  std::uint64_t unix = std::uint64_t{kUnixNow} * 1'000'000'000;
  void send_udp(const Endpoint&, std::span<const std::uint8_t>) override {}
  void write_tun(std::span<const std::uint8_t>) override {}
  void fill_random(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>((counter = counter * 6364136223846793005u + 1) >> 56);
  }
  std::uint64_t unix_nanos() override { return unix; }
};

// One side: its identity, session table and handshakes, and the peer record of the other side.
struct Side {
  Side(const sim::TestCa& ca, crypto::Identity id, std::size_t replay_memory = 8192)
      : identity(std::move(id)),
        ca_cert(ca.cert),
        table(fx),
        handshakes(
            identity,
            [this](const crypto::Certificate& c) {
              return crypto::verify(c, ca_cert, kUnixNow,
                                    crypto::VerifyPolicy{crypto::Role::node, {}});
            },
            table, fx, replay_memory) {}

  Peer& peer_of(const Side& other) {
    if (!peer) {
      peer = std::make_unique<Peer>(other.identity.certificate.vip.address, policy, *log, 1);
      peer->set_certificate(other.identity.certificate, Force::kAuto);
    }
    return *peer;
  }

  FakeEffects fx;
  crypto::Identity identity;
  crypto::CaCertificate ca_cert;
  SessionTable table;
  PeerHandshakes handshakes;
  PathPolicy policy;
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>("test");
  std::unique_ptr<Peer> peer;
};

class PeerHandshakesTest : public ::testing::Test {
 protected:
  sim::TestCa ca{kUnixNow};
  Side alice{ca, ca.issue("alice", "10.9.0.2/24")};
  Side bob{ca, ca.issue("bob", "10.9.0.3/24")};
  Time t0 = Time{} + 1000s;

  // Alice initiates; returns the HandshakeInit as Bob would parse it (bytes kept in `wire`).
  wire::HandshakeInit initiate(std::vector<std::uint8_t>& wire) {
    auto d = alice.handshakes.create_initiation(t0, alice.peer_of(bob), wire);
    EXPECT_TRUE(d);
    EXPECT_GE(d->headroom(), kHeadroom);  // room for the relay's wrapping in place
    auto init = wire::parse_handshake_init(d->span());
    EXPECT_TRUE(init);
    return *init;
  }
};

TEST_F(PeerHandshakesTest, FullExchangeInstallsSessionsThatTalk) {
  std::vector<std::uint8_t> init_bytes, resp_bytes;
  auto init = initiate(init_bytes);
  ASSERT_TRUE(alice.peer->sessions.pending);
  EXPECT_EQ(alice.table.find(init.sender_index),
            (SessionOwner{false, bob.identity.certificate.vip.address.value}));

  auto in = bob.handshakes.consume_initiation(init);
  ASSERT_TRUE(in) << in.error();
  EXPECT_EQ(in->certificate().name, "alice");
  auto resp = bob.handshakes.create_response(t0, bob.peer_of(alice), *in, resp_bytes);
  ASSERT_TRUE(resp);
  ASSERT_TRUE(bob.peer->sessions.current);
  EXPECT_FALSE(bob.peer->sessions.current->transport.is_initiator());

  auto r = wire::parse_handshake_resp(resp->span());
  ASSERT_TRUE(r);
  ASSERT_TRUE(alice.handshakes.consume_response(t0, *alice.peer, *r));
  EXPECT_FALSE(alice.peer->sessions.pending);
  ASSERT_TRUE(alice.peer->sessions.current);
  EXPECT_EQ(alice.peer->sessions.current->local_index, init.sender_index);
  EXPECT_EQ(alice.peer->sessions.current->remote_index, bob.peer->sessions.current->local_index);

  // Alice seals, Bob opens with the session the receiver index names.
  std::vector<std::uint8_t> buf(kHeadroom + 5 + kTailroom);
  std::memcpy(buf.data() + kHeadroom, "hello", 5);
  PacketView v(buf.data(), buf.size(), kHeadroom, 5);
  ASSERT_TRUE(alice.peer->sessions.current->seal(t0, v));
  auto h = wire::parse_data(v.span());
  ASSERT_TRUE(h);
  std::vector<std::uint8_t> body(v.data() + wire::kDataHeaderSize, v.data() + v.size());
  auto n = bob.peer->sessions.open(t0, *h, body);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(body.begin(), body.begin() + *n), "hello");
}

TEST_F(PeerHandshakesTest, ReplayedInitiationIsRefusedAndKeepsTheSession) {
  std::vector<std::uint8_t> init_bytes, resp_bytes;
  auto init = initiate(init_bytes);
  auto first = bob.handshakes.consume_initiation(init);
  ASSERT_TRUE(first);
  ASSERT_TRUE(bob.handshakes.create_response(t0, bob.peer_of(alice), *first, resp_bytes));
  const auto index = bob.peer->sessions.current->local_index;

  auto again = bob.handshakes.consume_initiation(init);  // the same bytes, captured
  ASSERT_TRUE(again);
  auto resp = bob.handshakes.create_response(t0 + 1s, *bob.peer, *again, resp_bytes);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error(), PeerHandshakes::Refusal::kReplay);
  EXPECT_EQ(bob.peer->sessions.current->local_index, index);
  EXPECT_FALSE(bob.peer->sessions.previous);

  // A later initiation from Alice (her clock moved on) is accepted.
  alice.fx.unix += 1'000'000;
  auto init2 = initiate(init_bytes);
  auto fresh = bob.handshakes.consume_initiation(init2);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(bob.handshakes.create_response(t0 + 2s, *bob.peer, *fresh, resp_bytes));
  EXPECT_NE(bob.peer->sessions.current->local_index, index);
  EXPECT_EQ(bob.peer->sessions.previous->local_index, index);
}

TEST_F(PeerHandshakesTest, CertificateFromAnotherCaIsRefused) {
  sim::TestCa other{kUnixNow, "other-ca"};
  Side mallory{other, other.issue("mallory", "10.9.0.4/24")};
  // Mallory knows Bob's key (certificates are not secret) and initiates to him.
  std::vector<std::uint8_t> wire_bytes;
  auto d = mallory.handshakes.create_initiation(t0, mallory.peer_of(bob), wire_bytes);
  ASSERT_TRUE(d);
  auto init = wire::parse_handshake_init(d->span());
  ASSERT_TRUE(init);
  auto in = bob.handshakes.consume_initiation(*init);
  ASSERT_FALSE(in);
  EXPECT_NE(in.error().find("CA"), std::string::npos) << in.error();
  EXPECT_EQ(bob.table.size(), 0u);  // nothing allocated for a refused sender
}

TEST_F(PeerHandshakesTest, ResponseToNoHandshakeInProgressIsRefused) {
  std::vector<std::uint8_t> init_bytes, resp_bytes;
  auto init = initiate(init_bytes);
  auto in = bob.handshakes.consume_initiation(init);
  ASSERT_TRUE(in);
  auto resp = bob.handshakes.create_response(t0, bob.peer_of(alice), *in, resp_bytes);
  ASSERT_TRUE(resp);
  auto r = *wire::parse_handshake_resp(resp->span());
  r.receiver_index ^= 1;  // answers an index Alice's handshake does not have
  EXPECT_FALSE(alice.handshakes.consume_response(t0, *alice.peer, r));
  EXPECT_TRUE(alice.peer->sessions.pending);  // still waiting for the real answer
  EXPECT_FALSE(alice.peer->sessions.current);
}

TEST_F(PeerHandshakesTest, RestartKeepsTheSeriesStartAndReleasesTheOldIndex) {
  std::vector<std::uint8_t> bytes;
  auto first = initiate(bytes);
  auto second_view = alice.handshakes.create_initiation(t0 + 5s, *alice.peer, bytes);
  ASSERT_TRUE(second_view);
  auto second = *wire::parse_handshake_init(second_view->span());
  EXPECT_FALSE(alice.table.find(first.sender_index));
  EXPECT_TRUE(alice.table.find(second.sender_index));
  EXPECT_EQ(alice.peer->sessions.pending->first_try, t0);
  EXPECT_EQ(alice.peer->sessions.pending->started, t0 + 5s);
}

TEST_F(PeerHandshakesTest, InitiationIsPaddedSoTheAnswerIsNeverLarger) {
  std::vector<std::uint8_t> init_bytes, resp_bytes, reply;
  auto init = initiate(init_bytes);
  const auto sent = alice.peer->sessions.sent_init;
  ASSERT_GE(sent.size(), wire::kMinInitSize);
  const Endpoint from = *Endpoint::parse("192.0.2.1:4000");
  EXPECT_EQ(bob.handshakes.screen(t0, from, false, sent, init, reply),
            crypto::HandshakeGuard::Verdict::kAccept);
  auto in = bob.handshakes.consume_initiation(init);
  ASSERT_TRUE(in);
  auto resp = bob.handshakes.create_response(t0, bob.peer_of(alice), *in, resp_bytes);
  ASSERT_TRUE(resp);
  EXPECT_LE(resp->size(), sent.size());
  std::printf("[ amplification ] IK: initiation %zu bytes, answer %zu bytes (ratio %.2f)\n",
              sent.size(), resp->size(), double(resp->size()) / double(sent.size()));
}

TEST_F(PeerHandshakesTest, ScreenDropsGarbageAndUnpaddedBeforeAnyDh) {
  std::vector<std::uint8_t> init_bytes, reply;
  auto init = initiate(init_bytes);
  auto sent = alice.peer->sessions.sent_init;
  const Endpoint from = *Endpoint::parse("192.0.2.1:4000");
  using V = crypto::HandshakeGuard::Verdict;
  auto bad = sent;
  bad[20] ^= 1;  // anything covered by mac1
  EXPECT_EQ(bob.handshakes.screen(t0, from, false, bad, *wire::parse_handshake_init(bad), reply),
            V::kBadMac1);
  EXPECT_EQ(bob.handshakes.screen(t0, from, true, bad, *wire::parse_handshake_init(bad), reply),
            V::kBadMac1);  // through the relay as well
  // The same initiation cut to its natural length: refused unread.
  std::vector<std::uint8_t> short_init;
  wire::build_handshake_init(short_init, wire::Pattern::kIK, 1, init.noise, 0);
  short_init.resize(wire::kInitHeaderSize + init.noise.size() + wire::kInitTrailerSize);
  crypto::stamp_macs(short_init, crypto::GuardKeys::derive(bob.identity.key.public_key), {});
  EXPECT_EQ(bob.handshakes.screen(t0, from, false, short_init,
                                  *wire::parse_handshake_init(short_init), reply),
            V::kUnpadded);
  // mac1 keyed by another key (a node that does not know Bob's) is garbage too.
  crypto::stamp_macs(sent, crypto::GuardKeys::derive(alice.identity.key.public_key), {});
  EXPECT_EQ(bob.handshakes.screen(t0, from, false, sent, init, reply), V::kBadMac1);
  EXPECT_TRUE(reply.empty());
}

// Two valid certificates for one address (a re-issue with a new key): a captured initiation
// made with the other one must not replace the live session.
TEST_F(PeerHandshakesTest, ReissuedCertificateReplayDoesNotReplaceTheSession) {
  std::vector<std::uint8_t> bytes, resp_bytes;
  Side old_alice{ca, ca.issue("alice", "10.9.0.2/24", crypto::Role::node, kUnixNow - 100)};
  Side new_alice{ca, ca.issue("alice", "10.9.0.2/24", crypto::Role::node, kUnixNow - 50)};
  // Captured while the old certificate was in use, and accepted then.
  auto d = old_alice.handshakes.create_initiation(t0, old_alice.peer_of(bob), bytes);
  ASSERT_TRUE(d);
  const auto captured = old_alice.peer->sessions.sent_init;
  auto first = bob.handshakes.consume_initiation(*wire::parse_handshake_init(captured));
  ASSERT_TRUE(first);
  Peer& p = bob.peer_of(old_alice);
  ASSERT_TRUE(bob.handshakes.create_response(t0, p, *first, resp_bytes));
  // Alice's re-issued certificate takes over.
  new_alice.fx.unix = old_alice.fx.unix - 5'000'000'000;  // even with a clock behind
  ASSERT_TRUE(new_alice.handshakes.create_initiation(t0 + 1s, new_alice.peer_of(bob), bytes));
  auto fresh = bob.handshakes.consume_initiation(
      *wire::parse_handshake_init(new_alice.peer->sessions.sent_init));
  ASSERT_TRUE(fresh);
  ASSERT_TRUE(bob.handshakes.create_response(t0 + 1s, p, *fresh, resp_bytes));
  p.set_certificate(new_alice.identity.certificate, Force::kAuto);
  const auto live = p.sessions.current->local_index;

  // The replay of the old certificate's initiation: refused, the session stays.
  auto replay = bob.handshakes.consume_initiation(*wire::parse_handshake_init(captured));
  ASSERT_TRUE(replay);  // a valid certificate, a valid Noise message
  auto r = bob.handshakes.create_response(t0 + 2s, p, *replay, resp_bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(p.sessions.current->local_index, live);
  EXPECT_EQ(p.cert->public_key, new_alice.identity.key.public_key);

  // Per key, not per address: even were the old certificate the newer one, its captured
  // initiation is not newer than the last one accepted from its key.
  Side twin{ca, ca.issue("alice", "10.9.0.2/24", crypto::Role::node, kUnixNow - 50)};
  p.set_certificate(twin.identity.certificate, Force::kAuto);
  auto again = bob.handshakes.consume_initiation(*wire::parse_handshake_init(captured));
  ASSERT_TRUE(again);
  p.cert->not_before = kUnixNow - 200;  // make the stale-certificate rule not apply
  auto r2 = bob.handshakes.create_response(t0 + 3s, p, *again, resp_bytes);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error(), PeerHandshakes::Refusal::kReplay);
  EXPECT_EQ(p.sessions.current->local_index, live);
}

// The replay memory is bounded: past replay_memory keys the least recently accepted is
// forgotten, yet a live peer's own newest timestamp still refuses its captured initiation.
TEST_F(PeerHandshakesTest, ReplayMemoryIsBoundedAndLivePeersStayProtected) {
  Side small_bob{ca, ca.issue("bob", "10.9.0.3/24"), 2};
  std::vector<std::uint8_t> bytes, resp_bytes;
  ASSERT_TRUE(alice.handshakes.create_initiation(t0, alice.peer_of(small_bob), bytes));
  const auto captured = alice.peer->sessions.sent_init;
  auto first = small_bob.handshakes.consume_initiation(*wire::parse_handshake_init(captured));
  ASSERT_TRUE(first);
  Peer& p = small_bob.peer_of(alice);
  ASSERT_TRUE(small_bob.handshakes.create_response(t0, p, *first, resp_bytes));
  const auto live = p.sessions.current->local_index;

  // Five more nodes complete handshakes with Bob: he remembers only two keys.
  for (int i = 0; i < 5; ++i) {
    Side other{ca, ca.issue("n" + std::to_string(i), "10.9.0." + std::to_string(10 + i) + "/24")};
    ASSERT_TRUE(other.handshakes.create_initiation(t0, other.peer_of(small_bob), bytes));
    auto in = small_bob.handshakes.consume_initiation(
        *wire::parse_handshake_init(other.peer->sessions.sent_init));
    ASSERT_TRUE(in);
    Peer q(other.identity.certificate.vip.address, small_bob.policy, *small_bob.log, 2);
    q.set_certificate(other.identity.certificate, Force::kAuto);
    ASSERT_TRUE(small_bob.handshakes.create_response(t0, q, *in, resp_bytes));
    EXPECT_LE(small_bob.handshakes.remembered_keys(), 2u);
  }
  EXPECT_EQ(small_bob.handshakes.remembered_keys(), 2u);

  // Alice's key is forgotten; her live peer record still refuses the captured initiation.
  auto replay = small_bob.handshakes.consume_initiation(*wire::parse_handshake_init(captured));
  ASSERT_TRUE(replay);
  auto r = small_bob.handshakes.create_response(t0 + 1s, p, *replay, resp_bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), PeerHandshakes::Refusal::kReplay);
  EXPECT_EQ(p.sessions.current->local_index, live);
}

}  // namespace
}  // namespace p2p::core
