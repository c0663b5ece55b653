// net/offload: splitting the TUN's super-segments (TSO/USO) into ordinary packets and completing
// partial checksums, checked against a byte-by-byte reference checksum; and the parser's refusals.
#include "net/offload.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace p2p::offload {
namespace {

using Bytes = std::vector<std::uint8_t>;

// RFC 1071 the slow way: 16-bit big-endian words, an odd byte padded, folded, complemented.
std::uint16_t reference_checksum(const Bytes& b) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < b.size(); i += 2) {
    sum += static_cast<std::uint32_t>(b[i]) << 8 | (i + 1 < b.size() ? b[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint16_t be16(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
std::uint32_t be32(const Bytes& b, std::size_t at) {
  return static_cast<std::uint32_t>(be16(b, at)) << 16 | be16(b, at + 2);
}
void put16(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

// The pseudo-header + L4 bytes of `packet` (IP header of l3 bytes): valid when its reference
// checksum is 0.
Bytes with_pseudo_header(const Bytes& packet, std::size_t l3, std::uint8_t protocol) {
  Bytes out;
  std::size_t l4 = packet.size() - l3;
  if (packet[0] >> 4 == 4) {
    out.assign(packet.begin() + 12, packet.begin() + 20);
    out.insert(out.end(),
               {0, protocol, static_cast<std::uint8_t>(l4 >> 8), static_cast<std::uint8_t>(l4)});
  } else {
    out.assign(packet.begin() + 8, packet.begin() + 40);
    out.insert(out.end(), {0, 0, static_cast<std::uint8_t>(l4 >> 8), static_cast<std::uint8_t>(l4),
                           0, 0, 0, protocol});
  }
  out.insert(out.end(), packet.begin() + static_cast<std::ptrdiff_t>(l3), packet.end());
  return out;
}

struct Spec {
  bool v6 = false;
  bool udp = false;
  std::size_t payload = 5000;
  std::uint16_t gso_size = 1360;
  std::size_t tcp_options = 12;   // timestamps, as Linux sends
  std::uint8_t tcp_flags = 0x18;  // ACK|PSH
};

std::size_t l3_of(const Spec& s) {
  return s.v6 ? 40 : 20;
}
std::size_t l4_of(const Spec& s) {
  return s.udp ? 8 : 20 + s.tcp_options;
}

// A super-segment as the kernel hands it: one header, all the payload, the L4 checksum field
// holding only the pseudo-header's sum (NEEDS_CSUM).
Bytes make_frame(const Spec& s) {
  const std::size_t l3 = l3_of(s), l4 = l4_of(s);
  Bytes p(l3 + l4 + s.payload);
  const std::uint8_t protocol = s.udp ? 17 : 6;
  if (!s.v6) {
    p[0] = 0x45;
    put16(p, 2, static_cast<std::uint32_t>(p.size()));
    put16(p, 4, 0xfffe);  // the id wraps while segmenting
    p[6] = 0x40;          // DF
    p[8] = 64;
    p[9] = protocol;
    for (int k = 0; k < 4; ++k)
      p[12 + k] = static_cast<std::uint8_t>(10 + k), p[16 + k] = static_cast<std::uint8_t>(20 + k);
  } else {
    p[0] = 0x60;
    put16(p, 4, static_cast<std::uint32_t>(p.size() - 40));
    p[6] = protocol;
    p[7] = 64;
    for (int k = 0; k < 16; ++k)
      p[8 + k] = static_cast<std::uint8_t>(0x20 + k),
            p[24 + k] = static_cast<std::uint8_t>(0x40 + k);
  }
  put16(p, l3, 40000);
  put16(p, l3 + 2, 5201);
  if (s.udp) {
    put16(p, l3 + 4, static_cast<std::uint32_t>(l4 + s.payload));
  } else {
    put16(p, l3 + 4, 0xffff);  // the sequence number wraps too
    put16(p, l3 + 6, 0xff00);
    p[l3 + 12] = static_cast<std::uint8_t>((l4 / 4) << 4);
    p[l3 + 13] = s.tcp_flags;
    put16(p, l3 + 14, 502);
    for (std::size_t k = 20; k < l4; ++k) p[l3 + k] = static_cast<std::uint8_t>(k);
  }
  for (std::size_t k = 0; k < s.payload; ++k)
    p[l3 + l4 + k] = static_cast<std::uint8_t>(k * 13 + 7);
  // The partial checksum: the pseudo-header sum (over the whole super-segment), not complemented.
  Bytes pseudo = with_pseudo_header(p, l3, protocol);
  pseudo.resize(s.v6 ? 40 : 12);
  const std::size_t field = l3 + (s.udp ? 6 : 16);
  put16(p, field, static_cast<std::uint16_t>(~reference_checksum(pseudo)));

  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = s.udp  ? VirtioNetHdr::kGsoUdpL4
               : s.v6 ? VirtioNetHdr::kGsoTcpV6
                      : VirtioNetHdr::kGsoTcpV4;
  h.hdr_len = static_cast<std::uint16_t>(l3 + l4);
  h.gso_size = s.gso_size;
  h.csum_start = static_cast<std::uint16_t>(l3);
  h.csum_offset = s.udp ? 6 : 16;
  Bytes frame(kVirtioNetHdrSize);
  h.encode(std::span<std::uint8_t, kVirtioNetHdrSize>(frame.data(), kVirtioNetHdrSize));
  frame.insert(frame.end(), p.begin(), p.end());
  return frame;
}

// Splits make_frame(s) and checks every segment field by field against the original.
void check_split(const Spec& s) {
  SCOPED_TRACE(testing::Message() << "v6=" << s.v6 << " udp=" << s.udp << " payload=" << s.payload
                                  << " gso_size=" << s.gso_size);
  const Bytes frame = make_frame(s);
  const Bytes original(frame.begin() + kVirtioNetHdrSize, frame.end());
  auto parsed = parse(frame);
  ASSERT_TRUE(parsed.has_value()) << to_string(parsed.error());
  const std::size_t l3 = l3_of(s), headers = l3 + l4_of(s);
  const std::size_t expected = s.payload == 0 ? 1 : (s.payload + s.gso_size - 1) / s.gso_size;
  ASSERT_EQ(parsed->segments, expected);
  std::size_t offset = 0;
  for (std::size_t i = 0; i < parsed->segments; ++i) {
    SCOPED_TRACE(i);
    const std::size_t chunk = std::min<std::size_t>(s.gso_size, s.payload - offset);
    Bytes seg(parsed->segment_length(i));
    ASSERT_EQ(seg.size(), headers + chunk);
    ASSERT_EQ(write_segment(*parsed, i, seg), seg.size());
    // Payload: exactly the next slice.
    EXPECT_TRUE(std::equal(seg.begin() + static_cast<std::ptrdiff_t>(headers), seg.end(),
                           original.begin() + static_cast<std::ptrdiff_t>(headers + offset)));
    if (!s.v6) {
      EXPECT_EQ(be16(seg, 2), seg.size());
      EXPECT_EQ(be16(seg, 4), static_cast<std::uint16_t>(0xfffe + i));
      EXPECT_EQ(reference_checksum(Bytes(seg.begin(), seg.begin() + 20)), 0) << "IPv4 header";
    } else {
      EXPECT_EQ(be16(seg, 4), seg.size() - 40);
    }
    if (s.udp) {
      EXPECT_EQ(be16(seg, l3 + 4), seg.size() - l3);
    } else {
      EXPECT_EQ(be32(seg, l3 + 4), static_cast<std::uint32_t>(0xffffff00u + offset));
      const bool last = i + 1 == parsed->segments;
      EXPECT_EQ(seg[l3 + 13], s.tcp_flags & (last ? 0xff : ~0x09) & (i ? ~0x80 : 0xff));
      // Options unchanged.
      EXPECT_TRUE(std::equal(seg.begin() + static_cast<std::ptrdiff_t>(l3 + 20),
                             seg.begin() + static_cast<std::ptrdiff_t>(headers),
                             original.begin() + static_cast<std::ptrdiff_t>(l3 + 20)));
    }
    EXPECT_EQ(reference_checksum(with_pseudo_header(seg, l3, s.udp ? 17 : 6)), 0) << "L4 checksum";
    offset += chunk;
  }
  EXPECT_EQ(offset, s.payload);
}

TEST(Offload, SplitsTcpV4WithAShortLastSegment) {
  check_split({});
}
TEST(Offload, SplitsTcpV4IntoExactlyFullSegments) {
  check_split({.payload = 2720});
}
TEST(Offload, SplitsOddSizes) {
  check_split({.payload = 3333, .gso_size = 1001});
  check_split({.v6 = true, .payload = 4097, .gso_size = 999, .tcp_options = 0});
  check_split({.udp = true, .payload = 1201, .gso_size = 77});
}
TEST(Offload, SplitsTcpV6) {
  check_split({.v6 = true, .payload = 64000, .gso_size = 1340});
}
TEST(Offload, SplitsUdpBothFamilies) {
  check_split({.udp = true, .payload = 10000, .gso_size = 1372});
  check_split({.v6 = true, .udp = true, .payload = 10000, .gso_size = 1352});
}
TEST(Offload, KeepsFlagsOnlyWhereTheyBelong) {
  // CWR on the first segment only; FIN and PSH on the last only.
  check_split({.payload = 4000, .gso_size = 1000, .tcp_flags = 0x80 | 0x10 | 0x08 | 0x01});
}
TEST(Offload, OneSegmentAndAnEmptyPayload) {
  check_split({.payload = 100});
  check_split({.payload = 0});
  check_split({.payload = 65535 - 52, .gso_size = 65535});  // the largest, in one
}

TEST(Offload, CompletesAPartialChecksumWithoutSegmenting) {
  Spec s{.udp = true, .payload = 301};
  Bytes frame = make_frame(s);
  frame[1] = VirtioNetHdr::kGsoNone;  // an ordinary UDP packet, checksum left to "hardware"
  auto parsed = parse(frame);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_FALSE(parsed->is_gso());
  ASSERT_EQ(parsed->segments, 1u);
  Bytes out(parsed->segment_length(0));
  ASSERT_EQ(write_segment(*parsed, 0, out), frame.size() - kVirtioNetHdrSize);
  EXPECT_EQ(reference_checksum(with_pseudo_header(out, 20, 17)), 0);
  // Without NEEDS_CSUM the packet passes unchanged.
  frame[0] = 0;
  parsed = parse(frame);
  ASSERT_TRUE(parsed.has_value());
  write_segment(*parsed, 0, out);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), frame.begin() + kVirtioNetHdrSize));
}

TEST(Offload, RefusesWhatDoesNotAddUp) {
  const Bytes good = make_frame({});
  auto refused = [](Bytes f, OffloadError why) {
    SCOPED_TRACE(to_string(why));
    auto r = parse(f);
    ASSERT_FALSE(r.has_value());
    EXPECT_STREQ(to_string(r.error()), to_string(why));
  };
  refused(Bytes(good.begin(), good.begin() + 10), OffloadError::kTruncated);
  Bytes f(good.begin(), good.begin() + 30);  // an IPv4 header, no TCP header
  refused(f, OffloadError::kBadHeader);      // the checksum's place lies past the end
  f[0] = 0;
  refused(f, OffloadError::kTruncated);
  f = good;
  f[4] = f[5] = 0;  // gso_size 0
  refused(f, OffloadError::kBadHeader);
  f = good;
  put16(f, 10 + 2, 60000);  // IPv4 total length past the end
  refused(f, OffloadError::kTruncated);
  f = good;
  f[10 + 20 + 12] = 0x40;  // TCP data offset 16 bytes
  refused(f, OffloadError::kTruncated);
  f = good;
  f[1] = VirtioNetHdr::kGsoTcpV6;  // says IPv6, holds IPv4
  refused(f, OffloadError::kBadHeader);
  f = good;
  f[1] = VirtioNetHdr::kGsoUdp;  // UFO: IP fragmentation, never enabled
  refused(f, OffloadError::kUnsupported);
  f = make_frame({.v6 = true});
  f[10 + 6] = 0;  // a hop-by-hop header first
  refused(f, OffloadError::kUnsupported);
  f = good;
  f[1] = VirtioNetHdr::kGsoNone;
  std::uint16_t far = 65000;
  std::memcpy(&f[6], &far, 2);  // csum_start past the packet
  refused(f, OffloadError::kBadHeader);
}

TEST(Offload, FastChecksumAgreesWithTheReference) {
  Bytes b(1001);
  for (std::size_t k = 0; k < b.size(); ++k) b[k] = static_cast<std::uint8_t>(k * 151 + 3);
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 63u, 1000u, 1001u}) {
    Bytes part(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(checksum_finish(checksum_add(0, part)), reference_checksum(part)) << n;
  }
}

// --- the Coalescer: segments back into one super-segment ---------------------------------------

// The packets a peer's node sends for make_frame(s): the super-segment split.
std::vector<Bytes> segments_of(const Spec& s) {
  const Bytes frame = make_frame(s);
  auto parsed = parse(frame);
  EXPECT_TRUE(parsed.has_value());
  std::vector<Bytes> out;
  for (std::size_t i = 0; parsed && i < parsed->segments; ++i) {
    Bytes seg(parsed->segment_length(i));
    write_segment(*parsed, i, seg);
    out.push_back(std::move(seg));
  }
  return out;
}

// Recomputes an IPv4 TCP packet's checksum after a test changed it.
void fix_tcp_checksum(Bytes& p) {
  put16(p, 20 + 16, 0);
  put16(p, 20 + 16, reference_checksum(with_pseudo_header(p, 20, 6)));
}

Bytes joined(std::span<const std::span<const std::uint8_t>> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Coalesces segments_of(s) (one group expected), checks the frame's header fields and
// checksums against the reference, and splits it again: the same packets come back.
void check_coalesce(const Spec& s) {
  SCOPED_TRACE(testing::Message() << "v6=" << s.v6 << " payload=" << s.payload
                                  << " gso_size=" << s.gso_size);
  const auto segments = segments_of(s);
  ASSERT_GE(segments.size(), 2u);
  Coalescer c;
  for (const auto& seg : segments) ASSERT_TRUE(c.add(seg));
  ASSERT_EQ(c.groups(), 1u);
  ASSERT_EQ(c.segments(0), segments.size());
  const Bytes frame = joined(c.frame(0));
  const std::size_t l3 = l3_of(s), headers = l3 + l4_of(s);
  ASSERT_EQ(frame.size(), kVirtioNetHdrSize + headers + s.payload);
  const VirtioNetHdr h = VirtioNetHdr::decode(frame);
  EXPECT_EQ(h.flags, VirtioNetHdr::kNeedsCsum);
  EXPECT_EQ(h.gso_type, s.v6 ? VirtioNetHdr::kGsoTcpV6 : VirtioNetHdr::kGsoTcpV4);
  EXPECT_EQ(h.gso_size, s.gso_size);
  EXPECT_EQ(h.hdr_len, headers);
  EXPECT_EQ(h.csum_start, l3);
  EXPECT_EQ(h.csum_offset, 16);
  const Bytes packet(frame.begin() + kVirtioNetHdrSize, frame.end());
  if (!s.v6) {
    EXPECT_EQ(be16(packet, 2), packet.size());
    EXPECT_EQ(be16(packet, 4), 0xfffe);  // the first segment's id
    EXPECT_EQ(reference_checksum(Bytes(packet.begin(), packet.begin() + 20)), 0) << "IPv4 header";
  } else {
    EXPECT_EQ(be16(packet, 4), packet.size() - 40);
  }
  // The TCP checksum field: the pseudo-header's sum for the whole, not complemented.
  Bytes pseudo = with_pseudo_header(packet, l3, 6);
  pseudo.resize(s.v6 ? 40 : 12);
  EXPECT_EQ(be16(packet, l3 + 16), static_cast<std::uint16_t>(~reference_checksum(pseudo)));
  EXPECT_EQ(packet[l3 + 13], s.tcp_flags);  // the last segment's PSH
  // What the kernel would do with it (segmenting it again) gives back the very packets.
  auto again = parse(frame);
  ASSERT_TRUE(again.has_value()) << to_string(again.error());
  ASSERT_EQ(again->segments, segments.size());
  for (std::size_t i = 0; i < segments.size(); ++i) {
    Bytes seg(again->segment_length(i));
    write_segment(*again, i, seg);
    EXPECT_EQ(seg, segments[i]) << "segment " << i;
  }
}

TEST(Coalescer, JoinsTcpV4WithAShortLastSegment) {
  check_coalesce({});
}
TEST(Coalescer, JoinsExactlyFullSegmentsAndOddSizes) {
  check_coalesce({.payload = 2720});
  check_coalesce({.payload = 3333, .gso_size = 1001});
  check_coalesce({.payload = 3333, .gso_size = 1001, .tcp_options = 0, .tcp_flags = 0x10});
}
TEST(Coalescer, JoinsTcpV6) {
  check_coalesce({.v6 = true, .payload = 64000, .gso_size = 1340});
  check_coalesce({.v6 = true, .payload = 4097, .gso_size = 999, .tcp_options = 0});
}

TEST(Coalescer, OtherPacketsPassAloneAndUnchanged) {
  Coalescer c;
  const auto udp = segments_of({.udp = true, .payload = 3000, .gso_size = 1000});
  const auto ack = segments_of({.payload = 0, .tcp_flags = 0x10});  // a pure ACK
  const auto fin = segments_of({.payload = 100, .tcp_flags = 0x11});
  for (const auto* list : {&udp, &ack, &fin})
    for (const auto& p : *list) ASSERT_TRUE(c.add(p));
  Bytes junk{0x45, 0, 0};
  ASSERT_TRUE(c.add(junk));
  ASSERT_EQ(c.groups(), 6u);
  std::vector<const Bytes*> all{&udp[0], &udp[1], &udp[2], &ack[0], &fin[0], &junk};
  for (std::size_t g = 0; g < c.groups(); ++g) {
    Bytes expected(kPlainHeader.begin(), kPlainHeader.end());
    expected.insert(expected.end(), all[g]->begin(), all[g]->end());
    EXPECT_EQ(joined(c.frame(g)), expected) << g;
  }
}

TEST(Coalescer, FlowsInterleaveAndEachKeepsItsOrder) {
  const auto a = segments_of({.payload = 4000, .gso_size = 1000});
  auto b = segments_of({.v6 = true, .payload = 3000, .gso_size = 1000});
  Coalescer c;
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.add(a[i]));
    if (i < 3) {
      ASSERT_TRUE(c.add(b[i]));
    }
  }
  ASSERT_EQ(c.groups(), 2u);
  EXPECT_EQ(c.segments(0), 4u);
  EXPECT_EQ(c.segments(1), 3u);
  EXPECT_EQ(VirtioNetHdr::decode(joined(c.frame(1))).gso_type, VirtioNetHdr::kGsoTcpV6);
}

TEST(Coalescer, WhatBreaksARun) {
  const auto segs = segments_of({.payload = 6000, .gso_size = 1000, .tcp_flags = 0x10});
  auto count = [](const std::vector<Bytes>& packets) {
    Coalescer c;
    for (const auto& p : packets) EXPECT_TRUE(c.add(p));
    std::vector<std::size_t> out;
    for (std::size_t g = 0; g < c.groups(); ++g) out.push_back(c.segments(g));
    return out;
  };
  using V = std::vector<std::size_t>;
  EXPECT_EQ(count(segs), V({6}));
  // A gap (a lost segment), a reordered one: a new group each time the sequence jumps.
  EXPECT_EQ(count({segs[0], segs[1], segs[3], segs[4]}), V({2, 2}));
  EXPECT_EQ(count({segs[0], segs[2], segs[1]}), V({1, 1, 1}));
  // PSH ends a run.
  auto psh = segs;
  psh[2][20 + 13] |= 0x08;
  fix_tcp_checksum(psh[2]);
  EXPECT_EQ(count(psh), V({3, 3}));
  // A different acknowledgement number or window (the next segment differs from it again), a
  // corrupted checksum or payload: alone.
  for (std::size_t at : {20u + 8u, 20u + 14u, 20u + 16u, 20u + 60u}) {
    auto changed = segs;
    changed[3][at] ^= 0x01;
    if (at == 20 + 8 || at == 20 + 14) fix_tcp_checksum(changed[3]);
    EXPECT_EQ(count(changed), V({3, 1, 2})) << at;
  }
  // A short segment ends a run.
  auto odd = segments_of({.payload = 2500, .gso_size = 1000, .tcp_flags = 0x10});
  EXPECT_EQ(count(odd), V({3}));
  // A FIN of the flow in between: nothing overtakes it.
  auto fin = segs[2];
  fin[20 + 13] |= 0x01;
  fix_tcp_checksum(fin);
  EXPECT_EQ(count({segs[0], segs[1], fin, segs[3]}), V({2, 1, 1}));
}

TEST(Coalescer, BoundedInPacketsAndSegments) {
  const auto segs = segments_of({.payload = 100 * 600, .gso_size = 600, .tcp_flags = 0x10});
  ASSERT_EQ(segs.size(), 100u);
  Coalescer c;
  for (const auto& p : segs) ASSERT_TRUE(c.add(p));
  ASSERT_EQ(c.groups(), 2u);
  EXPECT_EQ(c.segments(0), Coalescer::kMaxSegments);
  for (std::size_t i = 100; i < Coalescer::kMaxPackets; ++i) ASSERT_TRUE(c.add(segs[0]));
  EXPECT_FALSE(c.add(segs[0]));
  c.clear();
  EXPECT_EQ(c.groups(), 0u);
  EXPECT_TRUE(c.add(segs[0]));
}

}  // namespace
}  // namespace p2p::offload
