// ByteReader / ByteWriter: every read exactly at the end and one byte past it, the writer's
// limit, length prefixes at their maximum and one over, and that failure sticks.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "net/byte_io.hpp"

namespace p2p::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes iota(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i + 1);
  return b;
}

// Runs `read` on exactly `size` bytes (it must succeed and end the input) and on one byte less
// (it must fail, leave the reader failed, and a later read must fail too).
void expect_exact(const char* what, std::size_t size,
                  const std::function<bool(ByteReader&)>& read) {
  const Bytes in = iota(size);
  ByteReader exact(in);
  EXPECT_TRUE(read(exact)) << what;
  EXPECT_TRUE(exact.ok()) << what;
  EXPECT_TRUE(exact.done()) << what;
  EXPECT_EQ(exact.position(), size) << what;

  ByteReader shorter{std::span(in).first(size - 1)};
  EXPECT_FALSE(read(shorter)) << what;
  EXPECT_FALSE(shorter.ok()) << what;
  EXPECT_FALSE(shorter.done()) << what;
  EXPECT_EQ(shorter.remaining(), 0u) << what;
  EXPECT_FALSE(shorter.u8()) << what << ": a failed reader stays failed";
  EXPECT_TRUE(shorter.rest().empty()) << what;
}

TEST(ByteReader, EveryGetterAtTheEndAndOnePast) {
  expect_exact("u8", 1, [](ByteReader& r) { return r.u8() == 0x01; });
  expect_exact("u16", 2, [](ByteReader& r) { return r.u16() == 0x0102; });
  expect_exact("u32", 4, [](ByteReader& r) { return r.u32() == 0x01020304u; });
  expect_exact("u64", 8, [](ByteReader& r) { return r.u64() == 0x0102030405060708u; });
  expect_exact("bytes", 5, [](ByteReader& r) {
    auto b = r.bytes(5);
    return b && b->size() == 5 && (*b)[4] == 5;
  });
  expect_exact("array", 16, [](ByteReader& r) {
    auto a = r.array<16>();
    return a && (*a)[0] == 1 && (*a)[15] == 16;
  });
  expect_exact("skip", 3, [](ByteReader& r) { return r.skip(3); });
}

// The length-prefixed getters read their content, not iota's bytes, so they get their own
// end-of-input tests.
TEST(ByteReader, LengthPrefixedAtTheEndAndOnePast) {
  const Bytes str = {3, 'a', 'b', 'c'};
  ByteReader s(str);
  EXPECT_EQ(s.str8(3), "abc");
  EXPECT_TRUE(s.done());
  ByteReader s_short{std::span(str).first(3)};
  EXPECT_FALSE(s_short.str8(3));
  EXPECT_FALSE(s_short.ok());

  const Bytes blob = {0, 2, 7, 8};
  ByteReader b(blob);
  auto got = b.blob16(2);
  ASSERT_TRUE(got);
  EXPECT_EQ(Bytes(got->begin(), got->end()), (Bytes{7, 8}));
  EXPECT_TRUE(b.done());
  ByteReader b_short{std::span(blob).first(3)};
  EXPECT_FALSE(b_short.blob16(2));
  EXPECT_FALSE(b_short.ok());
  ByteReader b_no_prefix{std::span(blob).first(1)};
  EXPECT_FALSE(b_no_prefix.blob16(2));

  const Bytes v6 = {6, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53};
  ByteReader e(v6);
  auto ep = e.endpoint();
  ASSERT_TRUE(ep);
  EXPECT_EQ(*ep, *Endpoint::parse("[2001:db8::1]:53"));
  EXPECT_TRUE(e.done());
  for (std::size_t n = 0; n < v6.size(); ++n) {
    ByteReader cut{std::span(v6).first(n)};
    EXPECT_FALSE(cut.endpoint()) << n;
    EXPECT_FALSE(cut.ok()) << n;
  }
  const Bytes bad_family = {5, 1, 2, 3, 4, 0, 1};
  ByteReader f(bad_family);
  EXPECT_FALSE(f.endpoint());
  EXPECT_FALSE(f.ok());
}

TEST(ByteReader, LengthPrefixesAtTheirMaximumAndOneOver) {
  Bytes s255 = {255};
  s255.resize(1 + 255, 'x');
  ByteReader at_max(s255);
  EXPECT_EQ(at_max.str8(255), std::string(255, 'x'));
  EXPECT_TRUE(at_max.done());
  ByteReader over(s255);
  EXPECT_FALSE(over.str8(254));  // the bytes are there, the length is over the caller's limit
  EXPECT_FALSE(over.ok());

  Bytes b = {0xff, 0xff};
  b.resize(2 + 0xffff, 0xab);
  ByteReader blob_at_max(b);
  auto v = blob_at_max.blob16(0xffff);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), 0xffffu);
  EXPECT_TRUE(blob_at_max.done());
  ByteReader blob_over(b);
  EXPECT_FALSE(blob_over.blob16(0xfffe));
  EXPECT_FALSE(blob_over.ok());
}

TEST(ByteReader, RestAlignAndPosition) {
  const Bytes in = iota(8);
  ByteReader r(in);
  r.u8();
  EXPECT_EQ(r.position(), 1u);
  EXPECT_TRUE(r.align(4));
  EXPECT_EQ(r.position(), 4u);
  EXPECT_TRUE(r.align(4));  // already aligned: skips nothing
  EXPECT_EQ(r.position(), 4u);
  auto rest = r.rest();
  EXPECT_EQ(Bytes(rest.begin(), rest.end()), (Bytes{5, 6, 7, 8}));
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.rest().empty());

  // Alignment padding that is not all there fails; position() says where the failed read began.
  ByteReader cut{std::span(in).first(6)};
  cut.u8();
  cut.u32();
  EXPECT_EQ(cut.position(), 5u);
  EXPECT_FALSE(cut.align(4));
  EXPECT_FALSE(cut.ok());
  EXPECT_EQ(cut.position(), 5u);
}

TEST(ByteWriter, WritesBigEndian) {
  Bytes out = {0xee};  // appended to, not cleared
  ByteWriter w(out);
  w.u8(1);
  w.u16(0x0203);
  w.u32(0x04050607);
  w.u64(0x08090a0b0c0d0e0f);
  w.bytes(Bytes{0x10});
  w.str8("ab");
  w.blob16(Bytes{0x11});
  w.endpoint(*Endpoint::parse("192.0.2.1:80"));
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.size(), out.size() - 1);
  EXPECT_EQ(out, (Bytes{0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,  // integers
                        2, 'a', 'b', 0, 1, 0x11,                                   // prefixed
                        4, 192, 0, 2, 1, 0, 80}));                                 // endpoint
}

TEST(ByteWriter, AlignAndPatchCountFromTheWriterStart) {
  Bytes out = {0xee, 0xee};
  ByteWriter w(out);
  w.u16(0);
  w.u8(7);
  w.align(4);
  EXPECT_EQ(w.size(), 4u);
  w.align(4);
  EXPECT_EQ(w.size(), 4u);
  w.patch_u16(0, 0x1234);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(out, (Bytes{0xee, 0xee, 0x12, 0x34, 7, 0}));
}

TEST(ByteWriter, PatchOutsideWhatWasWrittenFails) {
  Bytes out;
  ByteWriter w(out);
  w.u16(0);
  w.u8(1);
  w.patch_u16(1, 0xabcd);  // the last two bytes: fine
  EXPECT_TRUE(w.ok());
  w.patch_u16(2, 0xabcd);  // would touch a byte never written
  EXPECT_FALSE(w.ok());
  EXPECT_TRUE(out.empty());
}

TEST(ByteWriter, LimitIsExactAndOverflowFailsForGood) {
  // Each kind of write, sized to end exactly at the limit, then one byte more.
  const std::vector<std::pair<std::size_t, std::function<void(ByteWriter&)>>> writes = {
      {1, [](ByteWriter& w) { w.u8(1); }},
      {2, [](ByteWriter& w) { w.u16(1); }},
      {4, [](ByteWriter& w) { w.u32(1); }},
      {8, [](ByteWriter& w) { w.u64(1); }},
      {3, [](ByteWriter& w) { w.bytes(Bytes{1, 2, 3}); }},
      {4, [](ByteWriter& w) { w.str8("abc"); }},
      {5, [](ByteWriter& w) { w.blob16(Bytes{1, 2, 3}); }},
      {7, [](ByteWriter& w) { w.endpoint(*Endpoint::parse("192.0.2.1:1")); }},
      {19, [](ByteWriter& w) { w.endpoint(*Endpoint::parse("[2001:db8::1]:1")); }},
      {4, [](ByteWriter& w) { w.align(4); }},  // the last one: after a u8, so 3 zero bytes
  };
  for (std::size_t i = 0; i < writes.size(); ++i) {
    const auto& [size, write] = writes[i];
    const bool aligning = i + 1 == writes.size();
    const std::size_t before = aligning ? 1 : 0;

    Bytes fits = {0xee};
    ByteWriter w(fits, size);
    if (aligning) w.u8(9);
    write(w);
    EXPECT_TRUE(w.ok()) << i;
    EXPECT_EQ(w.size(), size) << i;
    EXPECT_EQ(fits.size(), 1 + size) << i;

    Bytes over = {0xee};
    ByteWriter tight(over, size - 1);
    if (aligning) tight.u8(9);
    ASSERT_TRUE(tight.ok()) << i;
    EXPECT_EQ(tight.size(), before) << i;
    write(tight);
    EXPECT_FALSE(tight.ok()) << i;
    // Nothing of the writer's output is left behind: not a truncated encoding.
    EXPECT_EQ(over, Bytes{0xee}) << i;
    EXPECT_EQ(tight.size(), 0u) << i;
    // Failed for good, even for a write that would fit.
    tight.u8(1);
    tight.bytes({});
    tight.patch_u16(0, 1);
    EXPECT_FALSE(tight.ok()) << i;
    EXPECT_EQ(over, Bytes{0xee}) << i;
  }
}

TEST(ByteWriter, AFailedWriteInTheMiddleDropsEverything) {
  Bytes out = {0xee};
  ByteWriter w(out, 6);
  w.u32(0x01020304);
  w.u32(0x05060708);  // 8 > 6
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(out, Bytes{0xee});
  w.u8(1);  // would fit the limit, but the writer has failed
  EXPECT_EQ(out, Bytes{0xee});
}

TEST(ByteWriter, LengthPrefixesAtTheirMaximumAndOneOver) {
  Bytes out;
  ByteWriter w(out);
  w.str8(std::string(255, 'x'));
  EXPECT_TRUE(w.ok());
  ASSERT_EQ(out.size(), 1u + 255);
  EXPECT_EQ(out[0], 255);
  ByteReader back(out);
  EXPECT_EQ(back.str8(255), std::string(255, 'x'));

  Bytes over;
  ByteWriter w_over(over);
  w_over.u8(1);
  w_over.str8(std::string(256, 'x'));  // the u8 prefix cannot say 256
  EXPECT_FALSE(w_over.ok());
  EXPECT_TRUE(over.empty());

  Bytes blob;
  ByteWriter b(blob);
  b.blob16(Bytes(0xffff, 0xab));
  EXPECT_TRUE(b.ok());
  ASSERT_EQ(blob.size(), 2u + 0xffff);
  EXPECT_EQ(blob[0], 0xff);
  EXPECT_EQ(blob[1], 0xff);

  Bytes blob_over;
  ByteWriter b_over(blob_over);
  b_over.blob16(Bytes(0x10000, 0xab));
  EXPECT_FALSE(b_over.ok());
  EXPECT_TRUE(blob_over.empty());
}

}  // namespace
}  // namespace p2p::wire
