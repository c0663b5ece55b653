#include "net/udp_offload.hpp"

#include <algorithm>

namespace p2p::udp_offload {

std::size_t gso_run_length(std::span<const std::size_t> sizes, std::size_t max_segments,
                           std::size_t max_bytes) {
  if (sizes.empty()) return 0;
  const std::size_t segment = sizes[0];
  std::size_t n = 1, total = segment;
  if (segment == 0) return 1;
  while (n < sizes.size() && n < max_segments) {
    const std::size_t s = sizes[n];
    if (s == 0 || s > segment || total + s > max_bytes) break;
    total += s;
    ++n;
    if (s < segment) break;  // only the last may be short
  }
  return n;
}

std::size_t gro_segment_count(std::size_t length, std::size_t gso_size) {
  if (gso_size == 0 || length <= gso_size) return length == 0 ? 0 : 1;
  return (length + gso_size - 1) / gso_size;
}

std::span<const std::uint8_t> gro_segment(std::span<const std::uint8_t> buffer,
                                          std::size_t gso_size, std::size_t i) {
  if (gso_size == 0 || buffer.size() <= gso_size) return buffer;
  const std::size_t at = std::min(buffer.size(), i * gso_size);
  return buffer.subspan(at, std::min(gso_size, buffer.size() - at));
}

}  // namespace p2p::udp_offload
