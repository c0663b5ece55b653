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

namespace p2p::offload {

// Coalescer: the way back into a TUN with offloads (TSO granted), in the other direction from
// parse()/write_segment(). The packets of one receive batch are add()ed as they are decrypted
// (by reference: they must stay unchanged until clear()); consecutive TCP segments of one flow
// become one super-segment (GRO), everything else stays a packet of its own. frame(g) then
// gives group g as the parts of one TUN write: a virtio-net header, and either the one packet
// (kPlainHeader in front) or the first packet's headers fixed up for the whole (IP length and,
// for IPv4, header checksum; the TCP checksum field holds the pseudo-header sum, NEEDS_CSUM,
// gso_type TCPV4/TCPV6, gso_size the first segment's payload) followed by every segment's
// payload, in order. Groups come out in the order of their first packets; within a flow the
// packets keep their order.
//
// A TCP segment joins the newest group of its flow (same addresses and ports) when: IPv4
// without options or fragmentation, or IPv6 with TCP as the first next header; the IP length
// fits the packet exactly; flags ACK with or without PSH; a payload; a valid TCP checksum
// (the kernel will not check it again); the group's next sequence number; the same IP fields
// (TOS/traffic class, TTL/hop limit, DF, flow label), TCP header length, acknowledgement
// number, window and options bytes as the group's first; a payload no longer than the first's.
// A shorter payload or PSH ends the group, as does a 64th segment or 64 KiB. Any other TCP
// packet of the flow ends its group too (nothing may overtake it).
class Coalescer {
 public:
  static constexpr std::size_t kMaxPackets = 128;  // per batch: add() refuses more
  static constexpr std::size_t kMaxSegments = 64;  // per group
  static constexpr std::size_t kMaxHeaders = 120;  // IPv6 40 + TCP 60, IPv4 20 + TCP 60

  // Adds one IP packet; false when kMaxPackets are held (write the frames and clear() first).
  bool add(std::span<const std::uint8_t> packet);
  std::size_t groups() const { return groups_; }
  std::size_t packets() const { return packets_; }
  // Group g (< groups()) as the parts of one write, the virtio-net header first. Valid until
  // the next frame() or clear().
  std::span<const std::span<const std::uint8_t>> frame(std::size_t g);
  // Segments in group g.
  std::size_t segments(std::size_t g) const { return group_[g].count; }
  void clear() { groups_ = packets_ = 0; }

 private:
  struct Group {
    std::size_t first = 0, last = 0;  // indexes into packet_ (linked by next)
    std::size_t count = 0;
    bool tcp = false;     // a candidate, can take more while !closed
    bool closed = false;  // nothing more joins
    bool v6 = false;
    std::size_t l3 = 0, l4 = 0;  // header lengths
    std::size_t payload = 0;     // all segments'
    std::size_t gso_size = 0;    // the first segment's payload
    std::uint32_t next_seq = 0;
    bool psh = false;
    std::array<std::uint8_t, kVirtioNetHdrSize + kMaxHeaders> head{};
  };
  struct Packet {
    std::span<const std::uint8_t> bytes;
    std::size_t next = 0;
  };
  std::size_t groups_ = 0, packets_ = 0;
  std::array<Group, kMaxPackets> group_{};
  std::array<Packet, kMaxPackets> packet_{};
  std::array<std::span<const std::uint8_t>, kMaxSegments + 1> parts_{};
};

}  // namespace p2p::offload
