#include "net/offload.hpp"

#include <algorithm>
#include <cstring>

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

}  // namespace p2p::offload
