#include "net/stream_frame.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace p2p::wire {

std::array<std::uint8_t, kFrameHeaderSize> frame_header(std::size_t size) {
  assert(size <= kMaxFrame);
  return {static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size & 0xff)};
}

bool push_frame_header(PacketView& packet) {
  const auto size = packet.size();
  if (size > kMaxFrame || !packet.push_front(kFrameHeaderSize)) return false;
  const auto h = frame_header(size);
  std::memcpy(packet.data(), h.data(), h.size());
  return true;
}

FrameDecoder::FrameDecoder(std::size_t max_frame)
    : max_frame_(std::min(max_frame, kMaxFrame)), buffer_(kHeadroom + max_frame_ + kTailroom) {}

std::size_t FrameDecoder::consume(std::span<const std::uint8_t> in) {
  if (state_ == State::kFailed) return 0;
  if (state_ == State::kFrame) {
    state_ = State::kHeader;
    body_used_ = 0;
  }
  std::size_t used = 0;
  if (state_ == State::kHeader) {
    const auto n = std::min(in.size(), kFrameHeaderSize - header_used_);
    std::memcpy(header_.data() + header_used_, in.data(), n);
    header_used_ += n;
    used += n;
    if (header_used_ < kFrameHeaderSize) return used;
    header_used_ = 0;
    body_size_ = (std::size_t{header_[0]} << 8) | header_[1];
    if (body_size_ > max_frame_) {
      state_ = State::kFailed;
      return used;
    }
    state_ = State::kBody;
  }
  const auto n = std::min(in.size() - used, body_size_ - body_used_);
  if (n > 0) std::memcpy(buffer_.data() + kHeadroom + body_used_, in.data() + used, n);
  body_used_ += n;
  used += n;
  if (body_used_ == body_size_) state_ = State::kFrame;
  return used;
}

PacketView FrameDecoder::frame() {
  assert(state_ == State::kFrame);
  return PacketView(buffer_.data(), buffer_.size(), kHeadroom, body_size_);
}

}  // namespace p2p::wire
