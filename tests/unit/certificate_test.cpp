// Certificates: the wire format pinned by an independent encoder, every decode rejection,
// signatures against tampering (each byte flipped), validity edges, wrong CA, role and
// revocation policy, fingerprints, armour and files.
#include "crypto/certificate.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>

#include "crypto/armor.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::crypto {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

constexpr UnixTime kNow = 1'750'000'000;  // 2025-06-15
constexpr UnixTime kDay = 86'400;

// The fields of a version-1 certificate written without any validation, so tests can build
// exactly the hostile encodings they need. Its output for valid fields must equal encode().
struct Raw {
  std::uint8_t version = 1;
  std::uint8_t type = 1;
  std::string name = "alice";
  std::uint32_t vip = 0x0a4d0002;
  std::uint8_t vip_len = 24;
  std::uint8_t flags = 0;
  std::array<std::uint8_t, 16> vip6{};
  std::uint8_t vip6_len = 64;
  PublicKey key{};
  std::vector<std::string> groups;
  std::int64_t not_before = kNow - kDay;
  std::int64_t not_after = kNow + kDay;
  KeyId issuer{};
  Signature sig{};

  Bytes bytes() const {
    Bytes b{version, type, static_cast<std::uint8_t>(name.size())};
    b.insert(b.end(), name.begin(), name.end());
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(vip >> s));
    b.push_back(vip_len);
    b.push_back(flags);
    if (flags & 1) {
      b.insert(b.end(), vip6.begin(), vip6.end());
      b.push_back(vip6_len);
    }
    b.insert(b.end(), key.begin(), key.end());
    b.push_back(static_cast<std::uint8_t>(groups.size()));
    for (const auto& g : groups) {
      b.push_back(static_cast<std::uint8_t>(g.size()));
      b.insert(b.end(), g.begin(), g.end());
    }
    for (auto t : {not_before, not_after})
      for (int s = 56; s >= 0; s -= 8)
        b.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(t) >> s));
    b.insert(b.end(), issuer.begin(), issuer.end());
    b.insert(b.end(), sig.begin(), sig.end());
    return b;
  }
};

struct Ca {
  Ed25519KeyPair key = Ed25519KeyPair::generate();
  CaCertificate cert;
  explicit Ca(std::string name = "test-ca", UnixTime nb = kNow - 10 * kDay,
              UnixTime na = kNow + 365 * kDay) {
    auto c = make_ca_certificate(std::move(name), key, nb, na);
    EXPECT_TRUE(c);
    cert = *c;
  }
  Certificate issue(Certificate c) const {
    auto s = sign(std::move(c), cert, key);
    EXPECT_TRUE(s) << s.error().message;
    return *s;
  }
};

Certificate sample() {
  Certificate c;
  c.name = "alice";
  c.vip = *Ipv4Prefix::parse("10.77.0.2/24");
  c.public_key = X25519KeyPair::generate().public_key();
  c.not_before = kNow - kDay;
  c.not_after = kNow + kDay;
  return c;
}

CertErrorKind decode_error(const Bytes& b) {
  auto r = decode_certificate(b);
  EXPECT_FALSE(r) << "accepted " << b.size() << " bytes";
  return r ? CertErrorKind::io : r.error().kind;
}

std::string decode_message(const Bytes& b) {
  auto r = decode_certificate(b);
  EXPECT_FALSE(r);
  return r ? std::string() : r.error().message;
}

TEST(Certificate, EncodingMatchesTheDocumentedLayout) {
  Ca ca;
  Certificate c = sample();
  c.vip6 = *Ipv6Prefix::parse("fd00::2/64");
  c.groups = {"ops", "db"};
  c.role = Role::coordinator;
  c = ca.issue(c);
  Raw raw;
  raw.type = 2;
  raw.flags = 1;
  raw.vip6 = Ipv6::parse("fd00::2")->bytes;
  raw.key = c.public_key;
  raw.groups = {"db", "ops"};  // sign() sorted them
  raw.issuer = key_id(ca.cert.public_key);
  raw.sig = c.signature;
  EXPECT_EQ(encode(c), raw.bytes());
  EXPECT_EQ(c.groups, (std::vector<std::string>{"db", "ops"}));
}

TEST(Certificate, RoundTripsAllShapes) {
  Ca ca;
  for (bool v6 : {false, true}) {
    for (Role role : {Role::node, Role::coordinator}) {
      Certificate c = sample();
      c.role = role;
      if (v6) c.vip6 = *Ipv6Prefix::parse("fd00:77::2/64");
      c.groups = v6 ? std::vector<std::string>{"a", "b.c", "x_y-z"} : std::vector<std::string>{};
      c = ca.issue(c);
      Bytes enc = encode(c);
      EXPECT_LT(enc.size(), 300u) << "must fit a Noise handshake payload";
      auto back = decode_certificate(enc);
      ASSERT_TRUE(back) << back.error().message;
      EXPECT_EQ(*back, c);
      EXPECT_EQ(encode(*back), enc);
      EXPECT_TRUE(verify(*back, ca.cert, kNow));
    }
  }
  auto ca_back = decode_ca_certificate(encode(ca.cert));
  ASSERT_TRUE(ca_back) << ca_back.error().message;
  EXPECT_EQ(*ca_back, ca.cert);
}

TEST(Certificate, LargestCertificateIsExactlyTheBound) {
  Ca ca;
  Certificate c = sample();
  c.name = std::string(kMaxNameLength, 'n');
  c.vip6 = *Ipv6Prefix::parse("fd00::1/128");
  for (std::size_t i = 0; i < kMaxGroups; ++i)
    c.groups.push_back(std::string(kMaxNameLength - 2, 'g') + std::to_string(10 + i));
  c = ca.issue(c);
  Bytes enc = encode(c);
  EXPECT_EQ(enc.size(), kMaxCertificateSize);
  EXPECT_TRUE(decode_certificate(enc));
  enc.push_back(0);
  EXPECT_NE(decode_message(enc).find("longer than any certificate"), std::string::npos);
}

TEST(CertificateDecode, RejectsEveryTruncationAndTrailingBytes) {
  Ca ca;
  Certificate c = sample();
  c.vip6 = *Ipv6Prefix::parse("fd00::2/64");
  c.groups = {"a", "b"};
  Bytes enc = encode(ca.issue(c));
  for (std::size_t n = 0; n < enc.size(); ++n) {
    Bytes cut(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(decode_error(cut), CertErrorKind::malformed) << n;
  }
  enc.push_back(0);
  EXPECT_NE(decode_message(enc).find("1 trailing bytes"), std::string::npos);
}

TEST(CertificateDecode, RejectsUnknownVersionAndType) {
  Raw r;
  ASSERT_TRUE(decode_certificate(r.bytes()));
  for (std::uint8_t v : {0, 2, 255}) {
    Raw bad = r;
    bad.version = v;
    EXPECT_NE(decode_message(bad.bytes()).find("unknown certificate version"), std::string::npos);
  }
  for (std::uint8_t t : {0, 4, 255}) {
    Raw bad = r;
    bad.type = t;
    EXPECT_NE(decode_message(bad.bytes()).find("unknown certificate type"), std::string::npos);
  }
  Raw ca = r;
  ca.type = 3;
  EXPECT_NE(decode_message(ca.bytes()).find("CA certificate"), std::string::npos);
  EXPECT_FALSE(decode_ca_certificate(r.bytes())) << "a node certificate is not a CA certificate";
}

TEST(CertificateDecode, RejectsBadNamesAndGroups) {
  const std::vector<std::string> bad_names = {
      "",  std::string(64, 'a'),    "-lead", ".lead", "sp ace", "sl/ash",
      "ü", std::string("nul\0x", 5)};
  for (const auto& n : bad_names) {
    Raw r;
    r.name = n;
    EXPECT_EQ(decode_error(r.bytes()), CertErrorKind::malformed) << n;
    Raw g;
    g.groups = {n};
    EXPECT_EQ(decode_error(g.bytes()), CertErrorKind::malformed) << "group " << n;
  }
  Raw unsorted;
  unsorted.groups = {"b", "a"};
  EXPECT_NE(decode_message(unsorted.bytes()).find("sorted"), std::string::npos);
  Raw dup;
  dup.groups = {"a", "a"};
  EXPECT_NE(decode_message(dup.bytes()).find("sorted and unique"), std::string::npos);
  Raw many;
  for (int i = 0; i < 17; ++i) many.groups.push_back("g" + std::to_string(10 + i));
  EXPECT_NE(decode_message(many.bytes()).find("17 groups"), std::string::npos);
  many.groups.pop_back();
  EXPECT_TRUE(decode_certificate(many.bytes())) << "16 groups are allowed";
}

TEST(CertificateDecode, RejectsOutOfRangeFields) {
  Raw v4;
  v4.vip_len = 33;
  EXPECT_NE(decode_message(v4.bytes()).find("IPv4 prefix length 33"), std::string::npos);
  Raw v6;
  v6.flags = 1;
  v6.vip6_len = 129;
  EXPECT_NE(decode_message(v6.bytes()).find("IPv6 prefix length 129"), std::string::npos);
  for (std::uint8_t f : {2, 0x80, 0xff}) {
    Raw flags;
    flags.flags = f;
    EXPECT_NE(decode_message(flags.bytes()).find("unknown flags"), std::string::npos) << int(f);
  }
  Raw times;
  times.not_before = kNow;
  times.not_after = kNow - 1;
  EXPECT_NE(decode_message(times.bytes()).find("before not_before"), std::string::npos);
  times.not_after = kNow;
  EXPECT_TRUE(decode_certificate(times.bytes())) << "zero lifetime is well-formed";
  Raw negative;
  negative.not_before = -5;
  negative.not_after = -1;
  auto r = decode_certificate(negative.bytes());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->not_before, -5) << "times are signed big-endian";
}

TEST(CertificateDecode, CaCertificateRejections) {
  Ca ca;
  Bytes enc = encode(ca.cert);
  for (std::size_t n = 0; n < enc.size(); ++n)
    EXPECT_FALSE(decode_ca_certificate(Bytes(enc.begin(), enc.begin() + n))) << n;
  Bytes longer = enc;
  longer.push_back(1);
  EXPECT_FALSE(decode_ca_certificate(longer));
  Bytes bad_version = enc;
  bad_version[0] = 2;
  EXPECT_FALSE(decode_ca_certificate(bad_version));
  Bytes bad_name = enc;
  bad_name[3] = '-';
  EXPECT_FALSE(decode_ca_certificate(bad_name));
  EXPECT_FALSE(decode_certificate(enc)) << "a CA certificate is not a node certificate";
}

TEST(CertificateVerify, AcceptsOnlyInsideTheHalfOpenValidityWindow) {
  Ca ca;
  Certificate c = ca.issue(sample());
  EXPECT_EQ(verify(c, ca.cert, c.not_before - 1).error().kind, CertErrorKind::not_yet_valid);
  EXPECT_TRUE(verify(c, ca.cert, c.not_before));
  EXPECT_TRUE(verify(c, ca.cert, c.not_after - 1));
  auto expired = verify(c, ca.cert, c.not_after);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().kind, CertErrorKind::expired);
  EXPECT_EQ(expired.error().message.rfind("expired: 'alice' expired at", 0), 0u)
      << expired.error().message;

  Certificate zero = sample();
  zero.not_before = zero.not_after = kNow;
  zero = ca.issue(zero);
  EXPECT_EQ(verify(zero, ca.cert, kNow).error().kind, CertErrorKind::expired);
}

TEST(CertificateVerify, TheCasWindowBoundsItsCertificates) {
  Ca ca("short-ca", kNow - kDay, kNow + kDay);
  Certificate c = sample();
  c.not_after = kNow + 10 * kDay;  // longer than the CA (p2pvpnctl caps this; the check holds)
  c = ca.issue(c);
  EXPECT_TRUE(verify(c, ca.cert, kNow));
  auto r = verify(c, ca.cert, kNow + 2 * kDay);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, CertErrorKind::expired);
  EXPECT_NE(r.error().message.find("CA certificate"), std::string::npos);
}

TEST(CertificateVerify, WrongCaIsReportedAsWrongCa) {
  Ca ours("ours"), theirs("theirs");
  Certificate c = theirs.issue(sample());
  auto r = verify(c, ours.cert, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, CertErrorKind::wrong_ca);
  EXPECT_EQ(r.error().message.rfind("wrong CA", 0), 0u);
  EXPECT_NE(r.error().message.find(to_hex(key_id(theirs.cert.public_key))), std::string::npos);

  // Claiming our key id while signed by theirs is a forgery, not a wrong CA.
  Certificate forged = c;
  forged.issuer = key_id(ours.cert.public_key);
  EXPECT_EQ(verify(forged, ours.cert, kNow).error().kind, CertErrorKind::bad_signature);
}

TEST(CertificateVerify, EveryFlippedByteIsRejected) {
  Ca ca;
  Certificate c = sample();
  c.vip6 = *Ipv6Prefix::parse("fd00::2/64");
  c.groups = {"ops"};
  const Bytes enc = encode(ca.issue(c));
  const std::size_t issuer_at = enc.size() - kSignatureSize - kKeyIdSize;
  for (std::size_t i = 0; i < enc.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80}) {
      Bytes t = enc;
      t[i] ^= mask;
      auto d = decode_certificate(t);
      if (!d) {
        EXPECT_EQ(d.error().kind, CertErrorKind::malformed);
        continue;
      }
      auto r = verify(*d, ca.cert, kNow);
      ASSERT_FALSE(r) << "byte " << i << " mask " << int(mask) << " still verifies";
      const CertErrorKind expect = i >= issuer_at && i < issuer_at + kKeyIdSize
                                       ? CertErrorKind::wrong_ca
                                       : CertErrorKind::bad_signature;
      EXPECT_EQ(r.error().kind, expect) << "byte " << i << ": " << r.error().message;
    }
  }
}

TEST(CertificateVerify, SignatureIsDomainSeparated) {
  Ca ca;
  Certificate c = ca.issue(sample());
  // The CA's signature over the bare body (no context string) must not verify.
  Bytes body = encode(c);
  body.resize(body.size() - kSignatureSize);
  c.signature = ca.key.sign(body);
  EXPECT_EQ(verify(c, ca.cert, kNow).error().kind, CertErrorKind::bad_signature);
}

TEST(CertificateVerify, RoleAndRevocationPolicy) {
  Ca ca;
  Certificate node = ca.issue(sample());
  auto role = verify(node, ca.cert, kNow, {.required_role = Role::coordinator});
  ASSERT_FALSE(role);
  EXPECT_EQ(role.error().kind, CertErrorKind::wrong_role);
  EXPECT_TRUE(verify(node, ca.cert, kNow, {.required_role = Role::node}));

  Certificate other = ca.issue(sample());
  const std::vector<std::string> revoked{fingerprint(other), fingerprint(node)};
  auto r = verify(node, ca.cert, kNow, {.revoked = revoked});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, CertErrorKind::revoked);
  const std::vector<std::string> others{fingerprint(other)};
  EXPECT_TRUE(verify(node, ca.cert, kNow, {.revoked = others}));
}

TEST(CertificateVerify, CaSelfSignature) {
  Ca ca;
  EXPECT_TRUE(verify_ca(ca.cert, kNow));
  CaCertificate t = ca.cert;
  t.name = "other";
  EXPECT_EQ(verify_ca(t, kNow).error().kind, CertErrorKind::bad_signature);
  t = ca.cert;
  t.not_after += 1;
  EXPECT_EQ(verify_ca(t, kNow).error().kind, CertErrorKind::bad_signature);
  EXPECT_EQ(verify_ca(ca.cert, ca.cert.not_after).error().kind, CertErrorKind::expired);
  EXPECT_EQ(verify_ca(ca.cert, ca.cert.not_before - 1).error().kind, CertErrorKind::not_yet_valid);
}

TEST(CertificateSign, RefusesMismatchedKeyAndInvalidFields) {
  Ca ca, other;
  auto mismatched = sign(sample(), ca.cert, other.key);
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().kind, CertErrorKind::wrong_ca);

  Certificate bad = sample();
  bad.name = "no spaces";
  EXPECT_EQ(sign(bad, ca.cert, ca.key).error().kind, CertErrorKind::malformed);
  bad = sample();
  bad.groups = {"a", "a"};
  EXPECT_NE(sign(bad, ca.cert, ca.key).error().message.find("sorted and unique"),
            std::string::npos);
  bad = sample();
  bad.groups.assign(17, "g");
  EXPECT_FALSE(sign(bad, ca.cert, ca.key));
  bad = sample();
  bad.not_after = bad.not_before - 1;
  EXPECT_FALSE(sign(bad, ca.cert, ca.key));
  EXPECT_FALSE(make_ca_certificate("", ca.key, kNow, kNow + 1));
}

TEST(CertificateDeathTest, EncodingAnInvalidCertificateAborts) {
  Certificate c = sample();
  c.name = std::string(300, 'a');
  EXPECT_DEATH((void)encode(c), "encoding an invalid certificate");
}

TEST(Certificate, FingerprintIsBlake2bOfTheEncoding) {
  Ca ca;
  Certificate c = ca.issue(sample());
  Bytes enc = encode(c);
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), enc.data(), enc.size(), nullptr, 0);
  EXPECT_EQ(fingerprint(c), to_hex(h));
  EXPECT_EQ(fingerprint(c).size(), 64u);
  Certificate d = c;
  d.not_after -= 1;
  EXPECT_NE(fingerprint(d), fingerprint(c));

  std::array<std::uint8_t, 32> kid{};
  crypto_generichash(kid.data(), kid.size(), ca.cert.public_key.data(), 32, nullptr, 0);
  EXPECT_TRUE(std::equal(kid.begin(), kid.begin() + 16, key_id(ca.cert.public_key).begin()));
}

TEST(Certificate, NameRules) {
  for (const std::string& ok :
       std::vector<std::string>{"a", "A9", "node-1.example_x", std::string(63, 'z')})
    EXPECT_TRUE(valid_name(ok)) << ok;
  for (const std::string& bad :
       std::vector<std::string>{"", "-a", "_a", ".a", "a b", "a/b", "a:b", std::string(64, 'z')})
    EXPECT_FALSE(valid_name(bad)) << bad;
  EXPECT_EQ(parse_role("node"), Role::node);
  EXPECT_EQ(parse_role("coordinator"), Role::coordinator);
  EXPECT_EQ(parse_role("ca"), std::nullopt);
}

TEST(Certificate, DescribeShowsEveryField) {
  Ca ca;
  Certificate c = sample();
  c.vip6 = *Ipv6Prefix::parse("fd00::2/64");
  c.groups = {"ops", "db"};
  c.not_before = 0;
  c.not_after = 1'700'000'000;
  c = ca.issue(c);
  const std::string text = describe(c);
  for (const std::string& want :
       {std::string("name:        alice"), std::string("role:        node"),
        std::string("vip:         10.77.0.2/24"), std::string("vip6:        fd00::2/64"),
        std::string("groups:      db, ops"), std::string("1970-01-01T00:00:00Z"),
        std::string("2023-11-14T22:13:20Z"), to_base64(c.public_key), fingerprint(c),
        to_hex(key_id(ca.cert.public_key))})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  EXPECT_NE(describe(ca.cert).find("key id:      " + to_hex(key_id(ca.cert.public_key))),
            std::string::npos);
  EXPECT_EQ(format_utc(INT64_MAX).rfind("@", 0), 0u);
}

TEST(Certificate, ArmourRoundTripAndLabelMixups) {
  Ca ca;
  Certificate c = ca.issue(sample());
  auto back = certificate_from_armor(to_armor(c));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, c);
  auto ca_back = ca_certificate_from_armor(to_armor(ca.cert));
  ASSERT_TRUE(ca_back);
  EXPECT_EQ(*ca_back, ca.cert);

  auto mixed = certificate_from_armor(to_armor(ca.cert));
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().message.find("this file holds a CA CERTIFICATE"), std::string::npos)
      << mixed.error().message;
  EXPECT_FALSE(ca_certificate_from_armor(to_armor(c)));
  // Well-armoured garbage is a decode error.
  EXPECT_EQ(certificate_from_armor(armor(kCertificateLabel, Bytes{1, 1, 1})).error().kind,
            CertErrorKind::malformed);
}

class CertificateFiles : public ::testing::Test {
 protected:
  test::TempDir tmp_{"p2p-cert"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(CertificateFiles, SaveAndLoad) {
  Ca ca;
  Certificate c = ca.issue(sample());
  ASSERT_TRUE(save_certificate(dir_ / "a.crt", c));
  ASSERT_TRUE(save_ca_certificate(dir_ / "ca.crt", ca.cert));
  EXPECT_EQ(*load_certificate(dir_ / "a.crt"), c);
  EXPECT_EQ(*load_ca_certificate(dir_ / "ca.crt"), ca.cert);
  EXPECT_EQ(save_certificate(dir_ / "a.crt", c).error().kind, CertErrorKind::io);
  EXPECT_TRUE(save_certificate(dir_ / "a.crt", c, true));

  auto missing = load_certificate(dir_ / "none.crt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, CertErrorKind::io);
  auto wrong = load_certificate(dir_ / "ca.crt");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, CertErrorKind::malformed);
  EXPECT_NE(wrong.error().message.find("ca.crt"), std::string::npos);
}

}  // namespace
}  // namespace p2p::crypto
