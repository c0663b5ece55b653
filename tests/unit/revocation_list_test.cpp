// The CA-signed revocation list: its encoding (one per list, bounded), its signature,
// tampering, rollback refusal, its armour and files, and its chunks on the wire.
#include "crypto/revocation_list.hpp"

#include <gtest/gtest.h>

#include "net/control.hpp"
#include "net/revocation_push.hpp"
#include "tests/support/sim_net.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::crypto {
namespace {

constexpr UnixTime kNow = 1'800'000'000;

Fingerprint fp(std::uint8_t b) {
  Fingerprint f{};
  f.fill(b);
  return f;
}

RevocationList signed_list(const sim::TestCa& ca, std::uint64_t sequence,
                           std::vector<Fingerprint> revoked) {
  RevocationList l;
  l.sequence = sequence;
  l.issued_at = kNow;
  l.revoked = std::move(revoked);
  auto s = sign(std::move(l), ca.cert, ca.key);
  EXPECT_TRUE(s) << s.error().message;
  return *s;
}

TEST(RevocationList, SignsSortedUniqueAndRoundTrips) {
  sim::TestCa ca(kNow);
  auto l = signed_list(ca, 3, {fp(9), fp(1), fp(9), fp(5)});
  EXPECT_EQ(l.revoked, (std::vector<Fingerprint>{fp(1), fp(5), fp(9)}));
  EXPECT_TRUE(verify(l, ca.cert));
  auto bytes = encode(l);
  EXPECT_EQ(bytes.size(), 1 + 8 + 8 + 16 + 2 + 3 * 32 + 64u);
  auto back = decode_revocation_list(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, l);
  EXPECT_TRUE(back->contains(fp(5)));
  EXPECT_FALSE(back->contains(fp(4)));
  auto again = revocation_list_from_armor(to_armor(l));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, l);
  EXPECT_NE(describe(l).find("sequence:    3"), std::string::npos);
}

TEST(RevocationList, TamperingAnyByteIsCaught) {
  sim::TestCa ca(kNow);
  const auto bytes = encode(signed_list(ca, 1, {fp(1), fp(2)}));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto t = bytes;
    t[i] ^= 0x01;
    auto l = decode_revocation_list(t);
    if (!l) continue;  // no longer one list's encoding
    EXPECT_FALSE(verify(*l, ca.cert)) << "flipped byte " << i;
  }
}

TEST(RevocationList, AnotherCaNeitherSignsNorVerifies) {
  sim::TestCa ca(kNow), other(kNow, "other-ca");
  auto l = signed_list(other, 1, {fp(1)});
  auto r = verify(l, ca.cert);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, CertErrorKind::wrong_ca);
  // The right key id with another key's signature: a bad signature.
  l.issuer = key_id(ca.cert.public_key);
  r = verify(l, ca.cert);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, CertErrorKind::bad_signature);
  RevocationList mismatch;
  mismatch.sequence = 1;
  auto s = sign(mismatch, ca.cert, other.key);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, CertErrorKind::wrong_ca);
}

TEST(RevocationList, DecodingIsStrictAndBounded) {
  sim::TestCa ca(kNow);
  const auto good = encode(signed_list(ca, 1, {fp(1), fp(2)}));
  auto bad = [](std::vector<std::uint8_t> b) { return !decode_revocation_list(b); };
  EXPECT_TRUE(bad({}));
  auto v = good;
  v[0] = 2;  // version
  EXPECT_TRUE(bad(v));
  v = good;
  v.push_back(0);  // trailing byte
  EXPECT_TRUE(bad(v));
  v = good;
  v.pop_back();  // short
  EXPECT_TRUE(bad(v));
  v = good;
  std::fill(v.begin() + 1, v.begin() + 9, 0);  // sequence 0
  EXPECT_TRUE(bad(v));
  v = good;
  std::swap_ranges(v.begin() + 35, v.begin() + 67, v.begin() + 67);  // unsorted
  EXPECT_TRUE(bad(v));
  v = good;
  v[33] = 0x04;  // count 1026 > kMaxRevokedCertificates
  v[34] = 0x02;
  EXPECT_TRUE(bad(v));
  EXPECT_TRUE(bad(std::vector<std::uint8_t>(kMaxRevocationListSize + 1, 1)));
  // The largest list there can be still decodes.
  std::vector<Fingerprint> many(kMaxRevokedCertificates);
  for (std::size_t i = 0; i < many.size(); ++i) many[i][0] = i >> 8, many[i][1] = i & 0xff;
  auto big = encode(signed_list(ca, 1, many));
  EXPECT_EQ(big.size(), kMaxRevocationListSize);
  EXPECT_TRUE(decode_revocation_list(big));
  many.push_back(fp(0xff));
  RevocationList over;
  over.sequence = 1;
  over.revoked = many;
  EXPECT_FALSE(sign(over, ca.cert, ca.key));
}

TEST(Revocations, TakesOnlyNewerListsAndMergesTheConfiguredOnes) {
  sim::TestCa ca(kNow), other(kNow, "other-ca");
  auto node = ca.issue("n", "10.77.0.2/24");
  const auto n_fp = fingerprint_bytes(node.certificate);
  const std::string configured = to_hex(fp(7));
  Revocations r({configured});
  EXPECT_EQ(r.sequence(), 0u);
  EXPECT_FALSE(r.revoked(node.certificate));

  auto v2 = signed_list(ca, 2, {n_fp, fp(7)});
  ASSERT_TRUE(r.update(v2, ca.cert));
  EXPECT_TRUE(*r.update(v2, ca.cert) == false);  // the same again: not newer
  EXPECT_EQ(r.sequence(), 2u);
  EXPECT_TRUE(r.revoked(node.certificate));
  EXPECT_EQ(r.all().size(), 2u);  // fp(7) once
  auto d = decode_revocation_list(r.encoded());
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, v2);

  // Rollback: an older list, even one that verifies, is not taken.
  auto v1 = signed_list(ca, 1, {});
  auto taken = r.update(v1, ca.cert);
  ASSERT_TRUE(taken);
  EXPECT_FALSE(*taken);
  EXPECT_TRUE(r.revoked(node.certificate));
  // A forged newer list (another CA's, or tampered) is an error and changes nothing.
  EXPECT_FALSE(r.update(signed_list(other, 9, {}), ca.cert));
  auto forged = signed_list(ca, 3, {n_fp});
  forged.revoked.clear();
  EXPECT_FALSE(r.update(forged, ca.cert));
  EXPECT_EQ(r.sequence(), 2u);
  // Un-revoking takes a newer list without the entry; the configured one stays.
  ASSERT_TRUE(*r.update(signed_list(ca, 3, {}), ca.cert));
  EXPECT_FALSE(r.revoked(node.certificate));
  ASSERT_EQ(r.all().size(), 1u);
  EXPECT_EQ(r.all()[0], configured);

  // A reload replaces the configured fingerprints and keeps the signed list in force.
  ASSERT_TRUE(*r.update(signed_list(ca, 4, {n_fp}), ca.cert));
  r.set_configured({});
  EXPECT_EQ(r.sequence(), 4u);
  EXPECT_TRUE(r.revoked(node.certificate));
  ASSERT_EQ(r.all().size(), 1u);
  r.set_configured({configured, to_hex(n_fp)});
  EXPECT_EQ(r.all().size(), 2u);  // the node's fingerprint once
}

TEST(RevocationList, FilesAndFingerprints) {
  sim::TestCa ca(kNow);
  test::TempDir dir;
  auto node = ca.issue("n", "10.77.0.2/24");
  EXPECT_EQ(to_hex(fingerprint_bytes(node.certificate)), fingerprint(node.certificate));
  EXPECT_FALSE(parse_fingerprint("abc"));
  auto l = signed_list(ca, 4, {fingerprint_bytes(node.certificate)});
  const auto path = dir.path() / "revoked.list";
  ASSERT_TRUE(save_revocation_list(path, l));
  ASSERT_TRUE(save_revocation_list(path, l));  // replaced
  auto back = load_revocation_list(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, l);
  auto missing = load_revocation_list(dir.path() / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, CertErrorKind::io);
}

}  // namespace
}  // namespace p2p::crypto

namespace p2p::wire {
namespace {

TEST(RevocationPush, ChunksCarryAListAndReassembleInAnyOrder) {
  std::vector<std::uint8_t> list(2 * kRevocationChunkSize + 100);
  for (std::size_t i = 0; i < list.size(); ++i) list[i] = static_cast<std::uint8_t>(i * 7);
  auto chunks = split_revocation_list(5, list);
  ASSERT_EQ(chunks.size(), 3u);
  for (const auto& c : chunks) {
    std::vector<std::uint8_t> enc;
    encode_control(enc, c);
    auto m = decode_control(enc);
    ASSERT_TRUE(m);
    EXPECT_EQ(std::get<RevocationChunk>(*m), c);
  }
  RevocationAssembly a;
  using R = RevocationAssembly::Result;
  EXPECT_EQ(a.add(chunks[2], 4), R::kIncomplete);
  EXPECT_EQ(a.add(chunks[2], 4), R::kIncomplete);  // a duplicate
  EXPECT_EQ(a.add(chunks[0], 4), R::kIncomplete);
  EXPECT_EQ(a.add(chunks[1], 4), R::kComplete);
  EXPECT_EQ(a.take(), list);
  // What we hold already, or older: stale.
  EXPECT_EQ(a.add(chunks[0], 5), R::kStale);
  EXPECT_TRUE(split_revocation_list(1, {}).empty());
  EXPECT_TRUE(split_revocation_list(
                  1, std::vector<std::uint8_t>(kMaxRevocationChunks * kRevocationChunkSize + 1))
                  .empty());
}

TEST(RevocationPush, ANewerListStartsOverAndInconsistentChunksAreRefused) {
  std::vector<std::uint8_t> l6(kRevocationChunkSize + 1, 6), l7(kRevocationChunkSize + 1, 7);
  auto c6 = split_revocation_list(6, l6), c7 = split_revocation_list(7, l7);
  RevocationAssembly a;
  using R = RevocationAssembly::Result;
  EXPECT_EQ(a.add(c6[0], 0), R::kIncomplete);
  EXPECT_EQ(a.add(c7[1], 0), R::kIncomplete);  // 7 replaces 6
  EXPECT_EQ(a.add(c6[1], 0), R::kStale);
  auto short_first = c7[0];
  short_first.bytes.pop_back();
  EXPECT_EQ(a.add(short_first, 0), R::kInconsistent);
  auto other_count = c7[0];
  other_count.count = 3;
  EXPECT_EQ(a.add(other_count, 0), R::kInconsistent);
  EXPECT_EQ(a.add(c7[0], 0), R::kComplete);
  EXPECT_EQ(a.take(), l7);
}

TEST(RevocationPush, DecoderBoundsChunks) {
  auto enc = [](const ControlMessage& m) {
    std::vector<std::uint8_t> out;
    encode_control(out, m);
    return out;
  };
  EXPECT_TRUE(decode_control(enc(RevocationHave{42})));
  auto ok = enc(RevocationChunk{1, 0, 1, {1, 2, 3}});
  EXPECT_TRUE(decode_control(ok));
  auto v = ok;
  v[9] = 1;  // index 1 of count 1
  EXPECT_FALSE(decode_control(v));
  v = ok;
  v[10] = 0;  // count 0
  EXPECT_FALSE(decode_control(v));
  v = ok;
  v[10] = kMaxRevocationChunks + 1;
  v[9] = 0;
  EXPECT_FALSE(decode_control(v));
  EXPECT_FALSE(decode_control(enc(RevocationChunk{1, 0, 1, {}})));  // empty
  std::vector<std::uint8_t> big{0x21, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0x04, 0x01};
  big.resize(big.size() + kRevocationChunkSize + 1);
  EXPECT_FALSE(decode_control(big));  // over kRevocationChunkSize
}

}  // namespace
}  // namespace p2p::wire
