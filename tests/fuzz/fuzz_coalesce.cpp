// Fuzz target for offload::Coalescer (net/offload.hpp): the decrypted packets of one receive
// batch, as a peer (honest or not) may send them, on their way into a TUN with offloads.
// Input: records of [length (2 bytes, big-endian)][packet]. Checks:
// - add() never crashes, never reads past a packet, and refuses only past kMaxPackets;
// - every group's frame is a kPlainHeader and one whole packet, or a super-segment that
//   parse() accepts, with as many segments as the group has, whose split segments each carry
//   a valid TCP checksum and whose payloads add up to the frame's.
#include <cstdint>
#include <cstdlib>
#include <cstring>
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
  static Coalescer c;
  c.clear();
  // Each packet in its own allocation, so that reading past one is caught.
  std::vector<std::vector<std::uint8_t>> packets;
  for (std::size_t at = 0; at + 2 <= size;) {
    std::size_t len = static_cast<std::size_t>(data[at] << 8 | data[at + 1]);
    at += 2;
    len = std::min(len, size - at);
    packets.emplace_back(data + at, data + at + len);
    at += len;
  }
  for (std::size_t i = 0; i < packets.size(); ++i)
    check(c.add(packets[i]) == (i < Coalescer::kMaxPackets));
  static std::vector<std::uint8_t> frame, seg(70000);
  std::size_t in_groups = 0;
  for (std::size_t g = 0; g < c.groups(); ++g) {
    frame.clear();
    const auto parts = c.frame(g);
    for (auto p : parts) frame.insert(frame.end(), p.begin(), p.end());
    const std::size_t n = c.segments(g);
    in_groups += n;
    if (n == 1) {
      check(parts.size() == 2);
      check(std::memcmp(frame.data(), kPlainHeader.data(), kVirtioNetHdrSize) == 0);
      continue;
    }
    check(parts.size() == n + 1);
    auto s = parse(frame);
    check(s.has_value());
    check(s->is_gso() && s->segments == n);
    std::size_t payload = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t len = write_segment(*s, i, seg);
      check(len == s->segment_length(i));
      payload += len - s->headers_len;
      const bool v4 = seg[0] >> 4 == 4;
      std::uint64_t sum = 6 + (len - s->l3_len);
      sum = checksum_add(sum, std::span<const std::uint8_t>(seg).subspan(v4 ? 12 : 8, v4 ? 8 : 32));
      sum =
          checksum_add(sum, std::span<const std::uint8_t>(seg).subspan(s->l3_len, len - s->l3_len));
      check(checksum_finish(sum) == 0);
    }
    check(payload == s->packet.size() - s->headers_len);
  }
  check(in_groups == std::min(packets.size(), Coalescer::kMaxPackets));
  return 0;
}
