// UDP segmentation offload arithmetic (UDP_SEGMENT on send, UDP_GRO on receive), I/O-free.
//
// Send (GSO): one sendmsg() with a UDP_SEGMENT control message of gso_size carries a run of
// datagrams to one destination, laid end to end; the kernel cuts it into datagrams of gso_size
// bytes, the last one possibly shorter. gso_run_length() says how many queued datagrams (all
// to the same destination, sizes given in queue order) one such send may carry.
//
// Receive (GRO): with UDP_GRO on, one received buffer may hold several datagrams of one
// sender laid end to end, all gso_size bytes but the last (shorter or equal); gro_segment_count()
// and gro_segment() cut it up again. gso_size 0 means one datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace p2p::udp_offload {

// The kernel's UDP_MAX_SEGMENTS (older kernels; newer ones allow more).
inline constexpr std::size_t kMaxSegments = 64;
// The UDP payload of one send: an IPv4 packet's 65535 bytes less the IP and UDP headers.
inline constexpr std::size_t kMaxRunBytes = 65535 - 20 - 8;

// How many datagrams from the front of `sizes` (all to one destination) leave in one GSO send:
// the first's size is the segment size, every further one is at most that, a shorter one ends
// the run, and the run stays within max_segments and max_bytes. At least 1 when sizes is not
// empty (a single datagram is always its own run); 0 for an empty span.
std::size_t gso_run_length(std::span<const std::size_t> sizes,
                           std::size_t max_segments = kMaxSegments,
                           std::size_t max_bytes = kMaxRunBytes);

// The number of datagrams in a received buffer of `length` bytes with `gso_size` (0: one).
std::size_t gro_segment_count(std::size_t length, std::size_t gso_size);
// Datagram i (< gro_segment_count(buffer.size(), gso_size)) of a received buffer.
std::span<const std::uint8_t> gro_segment(std::span<const std::uint8_t> buffer,
                                          std::size_t gso_size, std::size_t i);

}  // namespace p2p::udp_offload
