// Datagrams framed on a byte stream (TCP): each frame is a 2-byte big-endian length followed
// by that many bytes, so a frame carries at most 65535 bytes (one datagram, kMaxDatagram).
//
//   [length u16][datagram ...length bytes]
//
// I/O-free. The encoder writes the length into a packet's headroom (no copy). The decoder is
// fed whatever chunks the stream delivers (a byte at a time or many frames at once) and hands
// back whole frames in its own buffer, with kHeadroom before and kTailroom after them, so the
// cores can open and re-seal a frame in place as they do a UDP datagram. Its buffer is
// allocated once (its max_frame bound); a length over that bound fails the decoder for good:
// the stream is then out of sync and must be closed. A zero length is a valid, empty frame.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/packet_view.hpp"

namespace p2p::wire {

inline constexpr std::size_t kFrameHeaderSize = 2;
inline constexpr std::size_t kMaxFrame = 65535;

// The length prefix of a frame of `size` bytes; size <= kMaxFrame.
std::array<std::uint8_t, kFrameHeaderSize> frame_header(std::size_t size);

// Grows `packet` into its headroom by the length prefix; false (unchanged) when the packet is
// larger than kMaxFrame or there is no headroom for the prefix.
bool push_frame_header(PacketView& packet);

class FrameDecoder {
 public:
  // max_frame <= kMaxFrame: the largest frame accepted.
  explicit FrameDecoder(std::size_t max_frame = kMaxFrame);

  // Consumes bytes of `in` up to the end of the next frame, or all of them; returns how many.
  // After a call, has_frame() says whether a frame completed (consume more only after taking
  // it: the next call reuses the buffer) and failed() whether the stream was out of bounds
  // (nothing is consumed after that).
  std::size_t consume(std::span<const std::uint8_t> in);

  bool has_frame() const { return state_ == State::kFrame; }
  bool failed() const { return state_ == State::kFailed; }
  // The completed frame; valid until the next consume(). Requires has_frame().
  PacketView frame();
  // Bytes of a frame (header included) received but not yet complete: a peer that stops
  // mid-frame shows here.
  std::size_t pending() const {
    if (state_ == State::kBody) return kFrameHeaderSize + body_used_;
    return state_ == State::kHeader ? header_used_ : 0;
  }
  std::size_t max_frame() const { return max_frame_; }

 private:
  enum class State { kHeader, kBody, kFrame, kFailed };

  std::size_t max_frame_;
  std::vector<std::uint8_t> buffer_;  // kHeadroom + max_frame + kTailroom
  std::array<std::uint8_t, kFrameHeaderSize> header_{};
  std::size_t header_used_ = 0;
  std::size_t body_size_ = 0;
  std::size_t body_used_ = 0;
  State state_ = State::kHeader;
};

}  // namespace p2p::wire
