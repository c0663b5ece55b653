// Key pairs and key files: derivation, signing, armour round trips, the 0600 discipline on
// save and load, wrong labels and lengths, and the public-key exchange forms.
#include "crypto/keys.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "crypto/armor.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::crypto {
namespace {

namespace fs = std::filesystem;

class KeyFiles : public ::testing::Test {
 protected:
  static void write(const fs::path& p, const std::string& text, mode_t mode) {
    std::ofstream(p) << text;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
  }
  test::TempDir tmp_{"p2p-keys"};
  const fs::path dir_ = tmp_.path();
};

TEST(Keys, X25519PublicKeyIsDerivedFromThePrivateKey) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  EXPECT_NE(a.public_key(), b.public_key());
  PublicKey expect{};
  ASSERT_EQ(crypto_scalarmult_base(expect.data(), a.private_key().data()), 0);
  EXPECT_EQ(a.public_key(), expect);
  auto again = X25519KeyPair::from_private(a.private_key().clone());
  EXPECT_EQ(again.public_key(), a.public_key());
}

TEST(Keys, Ed25519SignsAndVerifies) {
  auto key = Ed25519KeyPair::generate();
  std::vector<std::uint8_t> msg{'h', 'i'};
  Signature sig = key.sign(msg);
  EXPECT_TRUE(ed25519_verify(key.public_key(), msg, sig));
  msg[0] ^= 1;
  EXPECT_FALSE(ed25519_verify(key.public_key(), msg, sig));
  msg[0] ^= 1;
  sig[10] ^= 1;
  EXPECT_FALSE(ed25519_verify(key.public_key(), msg, sig));
  EXPECT_FALSE(ed25519_verify(Ed25519KeyPair::generate().public_key(), msg, key.sign(msg)));
}

TEST(Keys, PrivateKeysRoundTripThroughArmour) {
  auto x = X25519KeyPair::generate();
  std::string text = private_key_to_armor(x);
  EXPECT_EQ(armor_label(text), "X25519 PRIVATE KEY");
  auto x2 = x25519_from_armor(text);
  ASSERT_TRUE(x2) << x2.error().message;
  EXPECT_EQ(x2->public_key(), x.public_key());
  EXPECT_EQ(0, sodium_memcmp(x2->private_key().data(), x.private_key().data(), 32));

  auto e = Ed25519KeyPair::generate();
  text = private_key_to_armor(e);
  EXPECT_EQ(armor_label(text), "ED25519 PRIVATE KEY");
  auto e2 = ed25519_from_armor(text);
  ASSERT_TRUE(e2) << e2.error().message;
  EXPECT_EQ(e2->public_key(), e.public_key());
  EXPECT_EQ(0, sodium_memcmp(e2->secret_key().data(), e.secret_key().data(), 64));
}

TEST(Keys, HexAndBase64Helpers) {
  PublicKey pk{};
  for (std::size_t i = 0; i < pk.size(); ++i) pk[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const std::string hex = to_hex(pk);
  EXPECT_EQ(hex.substr(0, 8), "01080f16");
  EXPECT_EQ(public_key_from_hex(hex), pk);
  EXPECT_EQ(public_key_from_base64(to_base64(pk)), pk);
  EXPECT_EQ(to_base64(std::vector<std::uint8_t>{'f', 'o', 'o', 'b'}), "Zm9vYg==");
  EXPECT_EQ(public_key_from_hex(hex.substr(2)), std::nullopt);
  EXPECT_EQ(public_key_from_hex(hex + "00"), std::nullopt);
  EXPECT_EQ(public_key_from_hex("zz" + hex.substr(2)), std::nullopt);
  EXPECT_EQ(public_key_from_base64(to_base64(pk).substr(1)), std::nullopt);
  EXPECT_EQ(public_key_from_base64(to_base64(std::vector<std::uint8_t>(33))), std::nullopt);
}

TEST(Keys, ParsePublicKeyAcceptsArmourBase64AndHex) {
  auto k = X25519KeyPair::generate();
  const PublicKey& pk = k.public_key();
  for (const std::string& text :
       {public_key_to_armor(pk), to_base64(pk) + "\n", "  " + to_hex(pk) + "\r\n"}) {
    auto r = parse_public_key(text);
    ASSERT_TRUE(r) << text << ": " << r.error().message;
    EXPECT_EQ(*r, pk);
  }
  auto priv = parse_public_key(private_key_to_armor(k));
  ASSERT_FALSE(priv);
  EXPECT_NE(priv.error().message.find("this is a private key"), std::string::npos);
  EXPECT_FALSE(parse_public_key("hello"));
  EXPECT_FALSE(parse_public_key(armor("X25519 PUBLIC KEY", std::vector<std::uint8_t>(31))));
  EXPECT_FALSE(parse_public_key(armor("CERTIFICATE", pk)));
}

TEST_F(KeyFiles, SavedPrivateKeysAre0600AndLoadBack) {
  auto x = X25519KeyPair::generate();
  auto e = Ed25519KeyPair::generate();
  ASSERT_TRUE(save_private_key(dir_ / "node.key", x));
  ASSERT_TRUE(save_private_key(dir_ / "ca.key", e));
  EXPECT_EQ(test::file_mode(dir_ / "node.key"), 0600u);
  EXPECT_EQ(test::file_mode(dir_ / "ca.key"), 0600u);
  auto x2 = load_x25519_private_key(dir_ / "node.key");
  ASSERT_TRUE(x2) << x2.error().message;
  EXPECT_EQ(x2->public_key(), x.public_key());
  auto e2 = load_ed25519_private_key(dir_ / "ca.key");
  ASSERT_TRUE(e2) << e2.error().message;
  EXPECT_EQ(e2->public_key(), e.public_key());
}

TEST_F(KeyFiles, SaveRefusesAnExistingFileUnlessOverwrite) {
  auto a = X25519KeyPair::generate();
  auto b = X25519KeyPair::generate();
  ASSERT_TRUE(save_private_key(dir_ / "k", a));
  auto refused = save_private_key(dir_ / "k", b);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("already exists"), std::string::npos);
  EXPECT_EQ(load_x25519_private_key(dir_ / "k")->public_key(), a.public_key());
  ASSERT_TRUE(save_private_key(dir_ / "k", b, true));
  EXPECT_EQ(load_x25519_private_key(dir_ / "k")->public_key(), b.public_key());
}

TEST_F(KeyFiles, LoadRefuses0644AndAccepts0600) {
  ASSERT_TRUE(save_private_key(dir_ / "k", X25519KeyPair::generate()));
  ASSERT_EQ(::chmod((dir_ / "k").c_str(), 0644), 0);
  auto r = load_x25519_private_key(dir_ / "k");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("permissions 0644"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos) << r.error().message;
  ASSERT_EQ(::chmod((dir_ / "k").c_str(), 0600), 0);
  EXPECT_TRUE(load_x25519_private_key(dir_ / "k"));

  ASSERT_TRUE(save_private_key(dir_ / "ca", Ed25519KeyPair::generate()));
  ASSERT_EQ(::chmod((dir_ / "ca").c_str(), 0640), 0);
  EXPECT_FALSE(load_ed25519_private_key(dir_ / "ca"));
}

TEST_F(KeyFiles, LoadRejectsWrongLabelAndBadLength) {
  ASSERT_TRUE(save_private_key(dir_ / "ca.key", Ed25519KeyPair::generate()));
  auto wrong = load_x25519_private_key(dir_ / "ca.key");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("ED25519 PRIVATE KEY"), std::string::npos)
      << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("ca.key"), std::string::npos);

  write(dir_ / "short", armor("X25519 PRIVATE KEY", std::vector<std::uint8_t>(31, 7)), 0600);
  auto shorter = load_x25519_private_key(dir_ / "short");
  ASSERT_FALSE(shorter);
  EXPECT_NE(shorter.error().message.find("31 bytes, expected 32"), std::string::npos);

  write(dir_ / "long", armor("ED25519 PRIVATE KEY", std::vector<std::uint8_t>(64, 7)), 0600);
  EXPECT_FALSE(load_ed25519_private_key(dir_ / "long"));
  EXPECT_FALSE(load_x25519_private_key(dir_ / "missing"));
}

TEST_F(KeyFiles, ErrorsNeverContainKeyMaterial) {
  auto k = X25519KeyPair::generate();
  const std::string text = private_key_to_armor(k);
  const std::string b64 = to_base64(k.private_key().span());
  write(dir_ / "k", text, 0644);
  auto perm = load_x25519_private_key(dir_ / "k");
  ASSERT_FALSE(perm);
  EXPECT_EQ(perm.error().message.find(b64.substr(0, 16)), std::string::npos);
  // A private key handed over as a public key: the message names the label only.
  write(dir_ / "k.pub", text, 0644);
  auto pub = load_public_key(dir_ / "k.pub");
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().message.find(b64.substr(0, 16)), std::string::npos);
  EXPECT_NE(pub.error().message.find("private key"), std::string::npos);
}

TEST_F(KeyFiles, PublicKeyFilesRoundTrip) {
  auto k = X25519KeyPair::generate();
  ASSERT_TRUE(save_public_key(dir_ / "n.pub", k.public_key()));
  EXPECT_EQ(test::file_mode(dir_ / "n.pub") & 0600u, 0600u);
  auto pk = load_public_key(dir_ / "n.pub");
  ASSERT_TRUE(pk) << pk.error().message;
  EXPECT_EQ(*pk, k.public_key());
  write(dir_ / "b64.pub", to_base64(k.public_key()) + "\n", 0644);
  EXPECT_EQ(*load_public_key(dir_ / "b64.pub"), k.public_key());
}

}  // namespace
}  // namespace p2p::crypto
