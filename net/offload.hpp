// Offload: what a TUN opened with IFF_VNET_HDR and TUNSETOFFLOAD hands over and takes, I/O-free.
//
// Every read from such a TUN starts with a 10-byte virtio-net header (VirtioNetHdr, host byte
// order) followed by one IP packet, which may be a super-segment: a TCP (TSO) or UDP (USO)
// packet of up to 64 KiB whose payload is to leave as gso_size-sized segments, each with the
// headers of the first, fixed up. A packet may also carry a partial checksum (NEEDS_CSUM: the
// L4 checksum field holds only the pseudo-header sum). parse() checks the header against the
// IP and TCP/UDP headers behind it (nothing is trusted: the lengths come from the packet);
// write_segment() writes segment i as an ordinary packet with complete checksums (IPv4 header,
// TCP or UDP), so what leaves the node is what a TUN without offloads would have read.
//
// Every write to the TUN starts with such a header too: kPlainHeader for an ordinary packet
// (checksum complete, no segmentation).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/expected.hpp"

namespace p2p::offload {

inline constexpr std::size_t kVirtioNetHdrSize = 10;

struct VirtioNetHdr {
  static constexpr std::uint8_t kNeedsCsum = 1;
  static constexpr std::uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoUdp = 3, kGsoTcpV6 = 4,
                                kGsoUdpL4 = 5, kGsoEcn = 0x80;
  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;

  // `in` holds at least kVirtioNetHdrSize bytes.
  static VirtioNetHdr decode(std::span<const std::uint8_t> in);
  void encode(std::span<std::uint8_t, kVirtioNetHdrSize> out) const;
};

inline constexpr std::array<std::uint8_t, kVirtioNetHdrSize> kPlainHeader{};

enum class OffloadError {
  kTruncated,    // shorter than the headers it announces
  kBadHeader,    // virtio-net header inconsistent with the packet (checksum place, gso type)
  kUnsupported,  // a GSO type or an IPv6 extension header we do not segment
};
const char* to_string(OffloadError e);

// One read from the TUN, checked. `packet` refers to the caller's buffer.
struct SuperSegment {
  VirtioNetHdr hdr;
  std::span<const std::uint8_t> packet;  // the IP packet behind the virtio-net header
  std::size_t l3_len = 0;                // IP header length
  std::size_t headers_len = 0;           // IP + TCP/UDP header (0 without GSO)
  std::size_t segment_size = 0;          // payload per segment (without GSO: whole packet)
  std::size_t segments = 1;

  bool is_gso() const { return headers_len != 0; }
  // Length of segment i (< segments) as written by write_segment().
  std::size_t segment_length(std::size_t i) const;
};

// `frame` = virtio-net header + packet.
Expected<SuperSegment, OffloadError> parse(std::span<const std::uint8_t> frame);

// Writes segment i (< s.segments) to out (at least s.segment_length(i) bytes) as an ordinary
// packet with complete checksums; returns its length.
std::size_t write_segment(const SuperSegment& s, std::size_t i, std::span<std::uint8_t> out);

// The Internet checksum (RFC 1071) of `bytes` added to `sum`, not folded or complemented.
std::uint64_t checksum_add(std::uint64_t sum, std::span<const std::uint8_t> bytes);
// Folds to 16 bits and complements.
std::uint16_t checksum_finish(std::uint64_t sum);

}  // namespace p2p::offload
