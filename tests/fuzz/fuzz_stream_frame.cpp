// Fuzz target for the stream framing (net/stream_frame.hpp). The first input byte picks the
// decoder's bound and a chunking pattern; the rest is the stream.
// - the decoder never crashes and never hands out a frame over its bound;
// - the frames and the failure point do not depend on how the stream is cut into chunks;
// - re-encoding the frames gives back exactly the bytes consumed before any failure.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "net/stream_frame.hpp"

using namespace p2p;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Decoded {
  std::vector<std::vector<std::uint8_t>> frames;
  bool failed = false;
  std::size_t consumed = 0;
};

// Feeds `in` in chunks of 1, 2, 3, ... up to `step` bytes (step 0: all at once).
Decoded decode(std::span<const std::uint8_t> in, std::size_t max_frame, std::size_t step) {
  wire::FrameDecoder d(max_frame);
  Decoded out;
  std::size_t cut = 1;
  while (!in.empty() && !d.failed()) {
    auto chunk = step == 0 ? in : in.first(std::min(in.size(), cut));
    if (step != 0) cut = cut % step + 1;
    while (!chunk.empty()) {
      const auto n = d.consume(chunk);
      out.consumed += n;
      chunk = chunk.subspan(n);
      in = in.subspan(n);
      if (d.has_frame()) {
        auto f = d.frame();
        check(f.size() <= max_frame);
        check(f.headroom() >= kHeadroom && f.tailroom() >= kTailroom);
        out.frames.emplace_back(f.data(), f.data() + f.size());
      }
      if (d.failed()) break;
      check(n > 0);
    }
  }
  out.failed = d.failed();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_frame = data[0] & 0x80 ? wire::kMaxFrame : (data[0] & 0x7f) * 8;
  const std::size_t step = (data[0] & 0x0f) + 1;
  std::span<const std::uint8_t> in(data + 1, size - 1);

  const auto whole = decode(in, max_frame, 0);
  const auto cut = decode(in, max_frame, step);
  check(whole.frames == cut.frames && whole.failed == cut.failed);
  check(whole.consumed == cut.consumed);

  std::vector<std::uint8_t> again;
  for (const auto& f : whole.frames) {
    const auto h = wire::frame_header(f.size());
    again.insert(again.end(), h.begin(), h.end());
    again.insert(again.end(), f.begin(), f.end());
  }
  if (whole.failed) {
    check(again.size() + wire::kFrameHeaderSize == whole.consumed);
  } else {
    check(again.size() <= in.size());
    check(std::equal(again.begin(), again.end(), in.begin()));
  }
  return 0;
}
