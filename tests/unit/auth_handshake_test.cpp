// The certificate-bound Noise handshakes: IK between peers, XX between a node and its
// coordinator. Certificates travel encrypted in the payloads; the static key each side proved
// must be the key its certificate names; the verifier decides the rest.
#include <gtest/gtest.h>

#include "crypto/auth_handshake.hpp"
#include "crypto/transport.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::crypto {
namespace {

using Kind = AuthHandshake::Kind;
constexpr UnixTime kNow = 1'800'000'000;

CertificateVerifier verifier(const CaCertificate& ca, std::optional<Role> role = Role::node,
                             std::vector<std::string> revoked = {}) {
  auto list = std::make_shared<std::vector<std::string>>(std::move(revoked));
  return [&ca, role, list](const Certificate& c) {
    return verify(c, ca, kNow, VerifyPolicy{role, *list});
  };
}

// Runs a whole handshake; returns the first failure (from either side) or nothing.
std::optional<HandshakeFailure> run(Kind kind, AuthHandshake& i, AuthHandshake& r) {
  std::uint64_t ts = 1;
  while (!i.is_complete() || !r.is_complete()) {
    auto& w = i.my_turn() ? i : r;
    auto& rd = i.my_turn() ? r : i;
    auto msg = w.write(ts++);
    if (!msg) return msg.error();
    if (auto ok = rd.read(*msg); !ok) return ok.error();
    if (kind == Kind::kIK && i.is_complete() && r.is_complete()) break;
  }
  return std::nullopt;
}

struct AuthHandshakeTest : ::testing::Test {
  sim::TestCa ca{kNow};
  Identity alice = ca.issue("alice", "10.77.0.2/24");
  Identity bob = ca.issue("bob", "10.77.0.3/24");
  Identity coord = ca.issue("coord", "10.77.0.1/24", Role::coordinator);
};

TEST_F(AuthHandshakeTest, IkCompletesBothWaysAndTheKeysAgree) {
  auto i = AuthHandshake::initiator(Kind::kIK, alice, verifier(ca.cert), bob.key.public_key);
  auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
  ASSERT_FALSE(run(Kind::kIK, i, r));
  EXPECT_EQ(i.peer_certificate()->name, "bob");
  EXPECT_EQ(r.peer_certificate()->name, "alice");
  EXPECT_EQ(r.initiator_timestamp(), 1u);
  EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
  TransportSession a(*i.split(), Time{}, true), b(*r.split(), Time{}, false);
  std::vector<std::uint8_t> buf = {'h', 'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  auto ctr = a.encrypt(Time{}, buf, 2);
  ASSERT_TRUE(ctr);
  auto n = b.decrypt(Time{}, *ctr, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(buf[0], 'h');
}

TEST_F(AuthHandshakeTest, XxCarriesBothCertificatesAndChecksRoles) {
  auto i = AuthHandshake::initiator(Kind::kXX, alice, verifier(ca.cert, Role::coordinator));
  auto r = AuthHandshake::responder(Kind::kXX, coord, verifier(ca.cert, Role::node));
  ASSERT_FALSE(run(Kind::kXX, i, r));
  EXPECT_EQ(i.peer_certificate()->name, "coord");
  EXPECT_EQ(r.peer_certificate()->name, "alice");
  // A node posing as the coordinator is refused by the role check.
  auto i2 = AuthHandshake::initiator(Kind::kXX, alice, verifier(ca.cert, Role::coordinator));
  auto r2 = AuthHandshake::responder(Kind::kXX, bob, verifier(ca.cert, Role::node));
  auto f = run(Kind::kXX, i2, r2);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, HandshakeFailureKind::certificate);
  EXPECT_EQ(f->cert_error->kind, CertErrorKind::wrong_role);
  EXPECT_NE(f->reason.find("bob"), std::string::npos) << f->reason;
}

TEST_F(AuthHandshakeTest, ForgedExpiredAndForeignCertificatesFailWithAReason) {
  // Expired.
  auto old = ca.issue("old", "10.77.0.4/24", Role::node, kNow - 1000, kNow - 1);
  {
    auto i = AuthHandshake::initiator(Kind::kIK, old, verifier(ca.cert), bob.key.public_key);
    auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
    auto f = run(Kind::kIK, i, r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->cert_error->kind, CertErrorKind::expired);
    EXPECT_NE(f->reason.find("expired"), std::string::npos) << f->reason;
    EXPECT_TRUE(r.failed());
  }
  // From another network's CA.
  sim::TestCa other(kNow, "other");
  auto stranger = other.issue("stranger", "10.77.0.5/24");
  {
    auto i = AuthHandshake::initiator(Kind::kIK, stranger, verifier(other.cert), bob.key.public_key);
    auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
    auto f = run(Kind::kIK, i, r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->cert_error->kind, CertErrorKind::wrong_ca);
  }
  // Forged: alice's certificate with the name changed (signature no longer matches).
  {
    Identity forged = Identity::make(noise::KeyPair::from_private(alice.key.private_key.span()),
                                     alice.certificate);
    forged.certificate.name = "admin";
    forged.encoded_certificate = encode(forged.certificate);
    auto i = AuthHandshake::initiator(Kind::kIK, forged, verifier(ca.cert), bob.key.public_key);
    auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
    auto f = run(Kind::kIK, i, r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->cert_error->kind, CertErrorKind::bad_signature);
  }
  // Revoked.
  {
    auto i = AuthHandshake::initiator(Kind::kIK, alice, verifier(ca.cert), bob.key.public_key);
    auto r = AuthHandshake::responder(
        Kind::kIK, bob, verifier(ca.cert, Role::node, {fingerprint(alice.certificate)}));
    auto f = run(Kind::kIK, i, r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->cert_error->kind, CertErrorKind::revoked);
  }
}

TEST_F(AuthHandshakeTest, SomeoneElsesValidCertificateDoesNotMatchTheHandshakeKey) {
  // Mallory holds her own key but presents bob's genuine certificate.
  auto mallory_key = noise::KeyPair::generate();
  Identity mallory = Identity::make(std::move(mallory_key), bob.certificate);
  auto i = AuthHandshake::initiator(Kind::kIK, mallory, verifier(ca.cert), alice.key.public_key);
  auto r = AuthHandshake::responder(Kind::kIK, alice, verifier(ca.cert));
  auto f = run(Kind::kIK, i, r);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, HandshakeFailureKind::key_mismatch);
}

TEST_F(AuthHandshakeTest, CoordinatorCanStillTellARefusedNodeWhy) {
  auto old = ca.issue("old", "10.77.0.4/24", Role::node, kNow - 1000, kNow - 1);
  auto i = AuthHandshake::initiator(Kind::kXX, old, verifier(ca.cert, Role::coordinator));
  auto r = AuthHandshake::responder(Kind::kXX, coord, verifier(ca.cert, Role::node));
  auto f = run(Kind::kXX, i, r);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->cert_error->kind, CertErrorKind::expired);
  ASSERT_TRUE(i.is_complete());
  auto keys = r.split_after_rejection();
  ASSERT_TRUE(keys);
  EXPECT_FALSE(r.split_after_rejection());  // once
  TransportSession to_node(std::move(*keys), Time{}, false), node(*i.split(), Time{}, true);
  std::vector<std::uint8_t> buf(4 + 16, 'x');
  auto ctr = to_node.encrypt(Time{}, buf, 4);
  ASSERT_TRUE(ctr);
  EXPECT_TRUE(node.decrypt(Time{}, *ctr, buf));
}

TEST_F(AuthHandshakeTest, TamperedOrTruncatedMessagesFailCleanly) {
  for (std::size_t flip = 0; flip < 200; flip += 7) {
    auto i = AuthHandshake::initiator(Kind::kIK, alice, verifier(ca.cert), bob.key.public_key);
    auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
    auto m = i.write(1);
    ASSERT_TRUE(m);
    if (flip >= m->size()) break;
    (*m)[flip] ^= 0x01;
    auto ok = r.read(*m);
    EXPECT_FALSE(ok) << "flip at " << flip;
    EXPECT_TRUE(r.failed());
    EXPECT_FALSE(r.write(2));  // dead after an error
  }
  auto i = AuthHandshake::initiator(Kind::kIK, alice, verifier(ca.cert), bob.key.public_key);
  auto m = i.write(1);
  for (std::size_t n : {std::size_t{0}, std::size_t{31}, std::size_t{32}, m->size() - 1}) {
    auto r = AuthHandshake::responder(Kind::kIK, bob, verifier(ca.cert));
    EXPECT_FALSE(r.read(std::span(*m).first(n))) << n;
  }
}

TEST_F(AuthHandshakeTest, IkWithoutTheResponderKeyIsAProgrammingErrorThatFailsCleanly) {
  auto i = AuthHandshake::initiator(Kind::kIK, alice, verifier(ca.cert));
  EXPECT_TRUE(i.failed());
  EXPECT_FALSE(i.write(1));
}

}  // namespace
}  // namespace p2p::crypto
