#include "net/revocation_push.hpp"

#include <algorithm>

namespace p2p::wire {

std::vector<RevocationChunk> split_revocation_list(std::uint64_t sequence,
                                                   std::span<const std::uint8_t> encoded) {
  std::vector<RevocationChunk> out;
  const std::size_t count = (encoded.size() + kRevocationChunkSize - 1) / kRevocationChunkSize;
  if (count == 0 || count > kMaxRevocationChunks) return out;
  for (std::size_t i = 0; i < count; ++i) {
    auto part =
        encoded.subspan(i * kRevocationChunkSize,
                        std::min(kRevocationChunkSize, encoded.size() - i * kRevocationChunkSize));
    out.push_back(RevocationChunk{sequence,
                                  static_cast<std::uint8_t>(i),
                                  static_cast<std::uint8_t>(count),
                                  {part.begin(), part.end()}});
  }
  return out;
}

RevocationAssembly::Result RevocationAssembly::add(const RevocationChunk& c, std::uint64_t held) {
  if (c.sequence <= held || c.sequence < sequence_) return Result::kStale;
  if (c.count == 0 || c.count > kMaxRevocationChunks || c.index >= c.count || c.bytes.empty() ||
      c.bytes.size() > kRevocationChunkSize)
    return Result::kInconsistent;
  // Every chunk but the last is full: the bytes have one place each.
  const bool last = c.index + 1 == c.count;
  if (!last && c.bytes.size() != kRevocationChunkSize) return Result::kInconsistent;
  if (c.sequence > sequence_) {
    sequence_ = c.sequence;
    count_ = c.count;
    received_ = 0;
    parts_.assign(c.count, {});
  } else if (c.count != count_) {
    return Result::kInconsistent;
  }
  auto& part = parts_[c.index];
  if (part.empty()) {
    part = c.bytes;
    ++received_;
  }
  return received_ == count_ ? Result::kComplete : Result::kIncomplete;
}

std::vector<std::uint8_t> RevocationAssembly::take() {
  std::vector<std::uint8_t> out;
  if (received_ != count_ || count_ == 0) return out;
  for (auto& p : parts_) out.insert(out.end(), p.begin(), p.end());
  parts_.clear();
  received_ = 0;
  count_ = 0;
  return out;
}

}  // namespace p2p::wire
