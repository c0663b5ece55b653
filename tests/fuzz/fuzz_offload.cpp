// Fuzz target for net/offload: a virtio-net header and the (super-)packet behind it, as a TUN
// with offloads hands them over.
// - parse() never crashes and never reads past the input;
// - when it accepts, the segments' lengths add up to the headers once per segment plus the
//   payload, none exceeds the input, and write_segment() writes exactly that many bytes, each
//   segment a packet of the announced length with a valid L4 checksum.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "net/offload.hpp"

using namespace p2p;
using namespace p2p::offload;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65600) return 0;
  auto parsed = parse({data, size});
  if (!parsed) return 0;
  const SuperSegment& s = *parsed;
  check(s.packet.size() + kVirtioNetHdrSize <= size);
  check(s.segments >= 1);
  static std::vector<std::uint8_t> out(70000);
  std::size_t payload = 0;
  // Bounded work per input: the first and the last 16 segments.
  for (std::size_t i = 0; i < s.segments; ++i) {
    if (i >= 16 && i + 16 < s.segments) i = s.segments - 16;
    const std::size_t len = s.segment_length(i);
    check(len <= s.packet.size());
    check(write_segment(s, i, out) == len);
    if (s.is_gso()) {
      check(len >= s.headers_len);
      payload += len - s.headers_len;
      // The L4 checksum of what was written verifies (the pseudo-header plus the segment).
      const bool v4 = out[0] >> 4 == 4;
      std::uint64_t sum = (v4 ? out[9] : out[6]) + (len - s.l3_len);
      sum = checksum_add(sum, std::span<const std::uint8_t>(out).subspan(v4 ? 12 : 8, v4 ? 8 : 32));
      sum = checksum_add(sum, std::span<const std::uint8_t>(out).subspan(s.l3_len, len - s.l3_len));
      check(checksum_finish(sum) == 0);
    }
  }
  if (s.is_gso() && s.segments <= 32) check(payload == s.packet.size() - s.headers_len);
  return 0;
}
