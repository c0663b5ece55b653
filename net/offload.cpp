#include "net/offload.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace p2p::offload {

namespace {

constexpr std::uint8_t kTcp = 6, kUdp = 17;
constexpr std::uint8_t kFin = 0x01, kPsh = 0x08, kCwr = 0x80;

std::uint16_t load16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
void store16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// The pseudo-header's sum for an L4 segment of `l4_len` bytes in `packet`.
std::uint64_t pseudo_header(std::span<const std::uint8_t> packet, std::uint8_t protocol,
                            std::size_t l4_len) {
  std::uint64_t sum = protocol + l4_len;
  if (packet[0] >> 4 == 4) return checksum_add(sum, packet.subspan(12, 8));
  return checksum_add(sum, packet.subspan(8, 32));
}

// Fills in the TCP/UDP checksum of `packet` (IP header of l3 bytes, then the L4 segment).
void fill_l4_checksum(std::span<std::uint8_t> packet, std::size_t l3, std::uint8_t protocol) {
  std::uint8_t* field = packet.data() + l3 + (protocol == kTcp ? 16 : 6);
  store16(field, 0);
  auto l4 = packet.subspan(l3);
  std::uint16_t sum = checksum_finish(checksum_add(pseudo_header(packet, protocol, l4.size()), l4));
  if (sum == 0 && protocol == kUdp) sum = 0xffff;  // 0 means "no checksum" for UDP
  store16(field, sum);
}

}  // namespace

const char* to_string(OffloadError e) {
  switch (e) {
    case OffloadError::kTruncated: return "truncated";
    case OffloadError::kBadHeader: return "bad virtio-net header";
    case OffloadError::kUnsupported: return "unsupported offload";
  }
  return "?";
}

VirtioNetHdr VirtioNetHdr::decode(std::span<const std::uint8_t> in) {
  VirtioNetHdr h;
  h.flags = in[0];
  h.gso_type = in[1];
  std::memcpy(&h.hdr_len, in.data() + 2, 2);  // host byte order, as the TUN writes it
  std::memcpy(&h.gso_size, in.data() + 4, 2);
  std::memcpy(&h.csum_start, in.data() + 6, 2);
  std::memcpy(&h.csum_offset, in.data() + 8, 2);
  return h;
}

void VirtioNetHdr::encode(std::span<std::uint8_t, kVirtioNetHdrSize> out) const {
  out[0] = flags;
  out[1] = gso_type;
  std::memcpy(out.data() + 2, &hdr_len, 2);
  std::memcpy(out.data() + 4, &gso_size, 2);
  std::memcpy(out.data() + 6, &csum_start, 2);
  std::memcpy(out.data() + 8, &csum_offset, 2);
}

std::uint64_t checksum_add(std::uint64_t sum, std::span<const std::uint8_t> bytes) {
  const std::uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  for (; n >= 4; p += 4, n -= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += __builtin_bswap32(w);  // big-endian 32-bit words sum to the same 16-bit folds
  }
  if (n >= 2) {
    sum += load16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1) sum += static_cast<std::uint32_t>(p[0]) << 8;
  return sum;
}

std::uint16_t checksum_finish(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::size_t SuperSegment::segment_length(std::size_t i) const {
  if (!is_gso()) return packet.size();
  std::size_t payload = packet.size() - headers_len;
  return headers_len + std::min(segment_size, payload - std::min(payload, i * segment_size));
}

Expected<SuperSegment, OffloadError> parse(std::span<const std::uint8_t> frame) {
  if (frame.size() < kVirtioNetHdrSize + 1) return fail(OffloadError::kTruncated);
  SuperSegment s;
  s.hdr = VirtioNetHdr::decode(frame);
  s.packet = frame.subspan(kVirtioNetHdrSize);
  if (s.hdr.flags & VirtioNetHdr::kNeedsCsum) {
    if (std::size_t{s.hdr.csum_start} + s.hdr.csum_offset + 2 > s.packet.size())
      return fail(OffloadError::kBadHeader);
  }
  const std::uint8_t gso = s.hdr.gso_type & ~VirtioNetHdr::kGsoEcn;
  if (gso == VirtioNetHdr::kGsoNone) {
    s.segment_size = s.packet.size();
    return s;
  }
  if (gso != VirtioNetHdr::kGsoTcpV4 && gso != VirtioNetHdr::kGsoTcpV6 &&
      gso != VirtioNetHdr::kGsoUdpL4)
    return fail(OffloadError::kUnsupported);
  if (s.hdr.gso_size == 0) return fail(OffloadError::kBadHeader);

  // The IP header; the packet ends where it says.
  const auto& p = s.packet;
  std::uint8_t protocol;
  if (p[0] >> 4 == 4) {
    if (gso == VirtioNetHdr::kGsoTcpV6) return fail(OffloadError::kBadHeader);
    if (p.size() < 20) return fail(OffloadError::kTruncated);
    s.l3_len = std::size_t{p[0] & 0x0fu} * 4;
    std::size_t total = load16(&p[2]);
    if (s.l3_len < 20 || total < s.l3_len || total > p.size())
      return fail(OffloadError::kTruncated);
    s.packet = p.first(total);
    protocol = p[9];
  } else if (p[0] >> 4 == 6) {
    if (gso == VirtioNetHdr::kGsoTcpV4) return fail(OffloadError::kBadHeader);
    if (p.size() < 40) return fail(OffloadError::kTruncated);
    s.l3_len = 40;
    std::size_t total = 40 + std::size_t{load16(&p[4])};
    if (total > p.size()) return fail(OffloadError::kTruncated);
    s.packet = p.first(total);
    protocol = p[6];  // an extension header is not segmented
  } else {
    return fail(OffloadError::kBadHeader);
  }
  const bool udp = gso == VirtioNetHdr::kGsoUdpL4;
  if (protocol != (udp ? kUdp : kTcp)) return fail(OffloadError::kUnsupported);

  // The TCP/UDP header.
  std::size_t l4_len = 8;
  if (!udp) {
    if (s.packet.size() < s.l3_len + 20) return fail(OffloadError::kTruncated);
    l4_len = static_cast<std::size_t>(s.packet[s.l3_len + 12] >> 4) * 4;
    if (l4_len < 20) return fail(OffloadError::kTruncated);
  }
  s.headers_len = s.l3_len + l4_len;
  if (s.packet.size() < s.headers_len) return fail(OffloadError::kTruncated);
  s.segment_size = s.hdr.gso_size;
  std::size_t payload = s.packet.size() - s.headers_len;
  s.segments = std::max<std::size_t>(1, (payload + s.segment_size - 1) / s.segment_size);
  return s;
}

std::size_t write_segment(const SuperSegment& s, std::size_t i, std::span<std::uint8_t> out) {
  const std::size_t len = s.segment_length(i);
  if (!s.is_gso()) {
    std::memcpy(out.data(), s.packet.data(), len);
    if (s.hdr.flags & VirtioNetHdr::kNeedsCsum) {
      // The field holds the pseudo-header's sum: sum from csum_start to the end over it.
      std::uint8_t* field = out.data() + s.hdr.csum_start + s.hdr.csum_offset;
      std::uint16_t sum =
          checksum_finish(checksum_add(0, out.subspan(s.hdr.csum_start, len - s.hdr.csum_start)));
      store16(field, sum == 0 ? 0xffff : sum);
    }
    return len;
  }
  std::memcpy(out.data(), s.packet.data(), s.headers_len);
  std::memcpy(out.data() + s.headers_len, s.packet.data() + s.headers_len + i * s.segment_size,
              len - s.headers_len);
  auto packet = out.first(len);
  const std::size_t l3 = s.l3_len;
  const bool v4 = packet[0] >> 4 == 4;
  const std::uint8_t protocol = v4 ? packet[9] : packet[6];
  if (v4) {
    store16(&packet[2], static_cast<std::uint16_t>(len));
    store16(&packet[4], static_cast<std::uint16_t>(load16(&packet[4]) + i));
    store16(&packet[10], 0);
    store16(&packet[10], checksum_finish(checksum_add(0, packet.first(l3))));
  } else {
    store16(&packet[4], static_cast<std::uint16_t>(len - 40));
  }
  if (protocol == kTcp) {
    std::uint8_t* seq = &packet[l3 + 4];
    std::uint32_t n =
        static_cast<std::uint32_t>(seq[0]) << 24 | seq[1] << 16 | seq[2] << 8 | seq[3];
    n += static_cast<std::uint32_t>(i * s.segment_size);
    seq[0] = static_cast<std::uint8_t>(n >> 24);
    seq[1] = static_cast<std::uint8_t>(n >> 16);
    seq[2] = static_cast<std::uint8_t>(n >> 8);
    seq[3] = static_cast<std::uint8_t>(n);
    if (i + 1 < s.segments) packet[l3 + 13] &= static_cast<std::uint8_t>(~(kFin | kPsh));
    if (i > 0) packet[l3 + 13] &= static_cast<std::uint8_t>(~kCwr);
  } else {
    store16(&packet[l3 + 4], static_cast<std::uint16_t>(len - l3));
  }
  fill_l4_checksum(packet, l3, protocol);
  return len;
}

// ---------------------------------------------------------------------------------------
// Coalescer

namespace {

constexpr std::uint8_t kAck = 0x10;

std::uint32_t load32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// A TCP packet whose IP length fits it exactly and whose TCP header is whole.
struct Tcp {
  bool v6 = false;
  std::size_t l3 = 0, l4 = 0, payload = 0;
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;
  bool candidate = false;  // may be coalesced
};

std::optional<Tcp> tcp_of(std::span<const std::uint8_t> p) {
  Tcp t;
  bool plain_ip;
  if (p.size() >= 20 && p[0] >> 4 == 4) {
    t.l3 = std::size_t{p[0] & 0x0fu} * 4;
    if (t.l3 < 20 || load16(&p[2]) != p.size() || p[9] != kTcp) return std::nullopt;
    plain_ip = t.l3 == 20 && (load16(&p[6]) & 0x3fff) == 0;  // no options, not a fragment
  } else if (p.size() >= 40 && p[0] >> 4 == 6) {
    t.v6 = true;
    t.l3 = 40;
    if (std::size_t{load16(&p[4])} + 40 != p.size() || p[6] != kTcp) return std::nullopt;
    plain_ip = true;
  } else {
    return std::nullopt;
  }
  if (p.size() < t.l3 + 20) return std::nullopt;
  t.l4 = static_cast<std::size_t>(p[t.l3 + 12] >> 4) * 4;
  if (t.l4 < 20 || p.size() < t.l3 + t.l4) return std::nullopt;
  t.payload = p.size() - t.l3 - t.l4;
  t.seq = load32(&p[t.l3 + 4]);
  t.flags = p[t.l3 + 13];
  t.candidate =
      plain_ip && t.payload > 0 && (t.flags & ~kPsh) == kAck &&
      t.l3 + t.l4 <= Coalescer::kMaxHeaders &&
      checksum_finish(checksum_add(pseudo_header(p, kTcp, p.size() - t.l3), p.subspan(t.l3))) == 0;
  return t;
}

// Same addresses and ports (a and b both TCP of the same IP version).
bool same_flow(std::span<const std::uint8_t> a, std::size_t a_l3, std::span<const std::uint8_t> b,
               std::size_t b_l3, bool v6) {
  const std::size_t at = v6 ? 8 : 12, len = v6 ? 32 : 8;
  return std::memcmp(&a[at], &b[at], len) == 0 && std::memcmp(&a[a_l3], &b[b_l3], 4) == 0;
}

// The fields a segment must share with the group's first (both candidates of one flow).
bool same_fields(std::span<const std::uint8_t> f, std::span<const std::uint8_t> p, std::size_t l3,
                 std::size_t l4, bool v6) {
  if (v6) {
    if (std::memcmp(&f[0], &p[0], 4) != 0 || f[7] != p[7]) return false;
  } else if (f[1] != p[1] || f[8] != p[8] || (f[6] & 0x40) != (p[6] & 0x40)) {
    return false;
  }
  return std::memcmp(&f[l3 + 8], &p[l3 + 8], 4) == 0 &&    // acknowledgement number
         std::memcmp(&f[l3 + 14], &p[l3 + 14], 2) == 0 &&  // window
         std::memcmp(&f[l3 + 20], &p[l3 + 20], l4 - 20) == 0;
}

}  // namespace

bool Coalescer::add(std::span<const std::uint8_t> packet) {
  if (packets_ == kMaxPackets) return false;
  const std::size_t index = packets_++;
  packet_[index] = Packet{packet, 0};
  const auto tcp = tcp_of(packet);
  // The newest group of this flow: joined when it can be, closed when it cannot.
  if (tcp) {
    for (std::size_t g = groups_; g-- > 0;) {
      Group& group = group_[g];
      const auto first = packet_[group.first].bytes;
      if (!group.tcp || group.v6 != tcp->v6 ||
          !same_flow(first, group.l3, packet, tcp->l3, tcp->v6))
        continue;
      const bool joins = !group.closed && tcp->candidate && tcp->l4 == group.l4 &&
                         tcp->seq == group.next_seq && tcp->payload <= group.gso_size &&
                         group.count < kMaxSegments &&
                         group.l3 + group.l4 + group.payload + tcp->payload <= 65535 &&
                         same_fields(first, packet, group.l3, group.l4, group.v6);
      if (!joins) {
        group.closed = true;
        break;
      }
      packet_[group.last].next = index;
      group.last = index;
      ++group.count;
      group.payload += tcp->payload;
      group.next_seq += static_cast<std::uint32_t>(tcp->payload);
      group.psh = (tcp->flags & kPsh) != 0;
      group.closed = group.psh || tcp->payload < group.gso_size;
      return true;
    }
  }
  Group& group = group_[groups_++];
  group = Group{};
  group.first = group.last = index;
  group.count = 1;
  if (tcp) {
    // Every TCP packet is recorded as a flow's newest group, a non-candidate closed at once.
    group.tcp = true;
    group.v6 = tcp->v6;
    group.l3 = tcp->l3;
    group.l4 = tcp->l4;
    group.payload = group.gso_size = tcp->payload;
    group.next_seq = tcp->seq + static_cast<std::uint32_t>(tcp->payload);
    group.psh = (tcp->flags & kPsh) != 0;
    group.closed = !tcp->candidate || group.psh;
  }
  return true;
}

std::span<const std::span<const std::uint8_t>> Coalescer::frame(std::size_t g) {
  Group& group = group_[g];
  const auto first = packet_[group.first].bytes;
  if (group.count == 1) {
    parts_[0] = kPlainHeader;
    parts_[1] = first;
    return {parts_.data(), 2};
  }
  // The first packet's headers, fixed up for the whole super-segment.
  const std::size_t headers = group.l3 + group.l4;
  const std::size_t total = headers + group.payload;
  std::uint8_t* h = group.head.data() + kVirtioNetHdrSize;
  std::memcpy(h, first.data(), headers);
  std::span<std::uint8_t> ip{h, headers};
  if (group.v6) {
    store16(&h[4], static_cast<std::uint16_t>(total - 40));
  } else {
    store16(&h[2], static_cast<std::uint16_t>(total));
    store16(&h[10], 0);
    store16(&h[10], checksum_finish(checksum_add(0, ip.first(group.l3))));
  }
  if (group.psh) h[group.l3 + 13] |= kPsh;
  // NEEDS_CSUM: the field holds the pseudo-header's sum, folded, not complemented.
  store16(&h[group.l3 + 16], 0);
  std::uint64_t sum = pseudo_header(ip, kTcp, total - group.l3);
  store16(&h[group.l3 + 16], static_cast<std::uint16_t>(~checksum_finish(sum)));
  VirtioNetHdr vh;
  vh.flags = VirtioNetHdr::kNeedsCsum;
  vh.gso_type = group.v6 ? VirtioNetHdr::kGsoTcpV6 : VirtioNetHdr::kGsoTcpV4;
  vh.hdr_len = static_cast<std::uint16_t>(headers);
  vh.gso_size = static_cast<std::uint16_t>(group.gso_size);
  vh.csum_start = static_cast<std::uint16_t>(group.l3);
  vh.csum_offset = 16;
  vh.encode(std::span<std::uint8_t, kVirtioNetHdrSize>(group.head.data(), kVirtioNetHdrSize));
  parts_[0] = {group.head.data(), kVirtioNetHdrSize + headers};
  std::size_t n = 1;
  for (std::size_t i = group.first, k = 0; k < group.count; i = packet_[i].next, ++k) {
    parts_[n++] = packet_[i].bytes.subspan(headers);
  }
  return {parts_.data(), n};
}

}  // namespace p2p::offload
