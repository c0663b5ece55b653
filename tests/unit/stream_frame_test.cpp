// The stream framing (net/stream_frame.hpp): length prefix, incremental decoding of arbitrary
// chunks, the bound on a frame, and the in-place header.
#include "net/stream_frame.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace p2p::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes framed(const std::vector<Bytes>& frames) {
  Bytes out;
  for (const auto& f : frames) {
    auto h = frame_header(f.size());
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// Decodes `stream` fed `chunk` bytes at a time.
std::vector<Bytes> decode(FrameDecoder& d, const Bytes& stream, std::size_t chunk) {
  std::vector<Bytes> out;
  for (std::size_t at = 0; at < stream.size() && !d.failed();) {
    std::span<const std::uint8_t> in(stream.data() + at, std::min(chunk, stream.size() - at));
    while (!in.empty() && !d.failed()) {
      auto n = d.consume(in);
      in = in.subspan(n);
      at += n;
      if (d.has_frame()) {
        auto f = d.frame();
        out.emplace_back(f.data(), f.data() + f.size());
      }
    }
  }
  return out;
}

TEST(StreamFrame, HeaderIsBigEndianLength) {
  EXPECT_EQ(frame_header(0), (std::array<std::uint8_t, 2>{0, 0}));
  EXPECT_EQ(frame_header(0x1234), (std::array<std::uint8_t, 2>{0x12, 0x34}));
  EXPECT_EQ(frame_header(kMaxFrame), (std::array<std::uint8_t, 2>{0xff, 0xff}));
}

TEST(StreamFrame, SameFramesWhateverTheChunking) {
  std::vector<Bytes> frames{Bytes{1, 2, 3}, Bytes{}, Bytes(1400, 0xab), Bytes{9}, Bytes(70, 7)};
  const auto stream = framed(frames);
  for (std::size_t chunk :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{1401}, stream.size()}) {
    FrameDecoder d;
    EXPECT_EQ(decode(d, stream, chunk), frames) << "chunk " << chunk;
    EXPECT_FALSE(d.failed());
    EXPECT_EQ(d.pending(), 0u);
  }
}

TEST(StreamFrame, ConsumeStopsAtTheEndOfAFrame) {
  const auto stream = framed({Bytes{1, 2}, Bytes{3}});
  FrameDecoder d;
  EXPECT_EQ(d.consume(stream), 4u);
  ASSERT_TRUE(d.has_frame());
  EXPECT_EQ(d.frame().size(), 2u);
  EXPECT_EQ(d.consume(std::span(stream).subspan(4)), 3u);
  ASSERT_TRUE(d.has_frame());
  EXPECT_EQ(d.frame().data()[0], 3);
}

TEST(StreamFrame, PendingCountsAHalfFrame) {
  const auto stream = framed({Bytes(10, 1)});
  FrameDecoder d;
  EXPECT_EQ(d.consume(std::span(stream).first(1)), 1u);
  EXPECT_EQ(d.pending(), 1u);
  EXPECT_EQ(d.consume(std::span(stream).subspan(1, 5)), 5u);
  EXPECT_EQ(d.pending(), 6u);
  EXPECT_FALSE(d.has_frame());
}

TEST(StreamFrame, FrameOverTheBoundFailsForGood) {
  FrameDecoder d(100);
  auto stream = framed({Bytes(100, 1), Bytes(101, 2), Bytes(1, 3)});
  auto frames = decode(d, stream, 7);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.has_frame());
  EXPECT_EQ(d.consume(stream), 0u);
}

TEST(StreamFrame, FrameHasRoomToBeResealedInPlace) {
  FrameDecoder d;
  const auto stream = framed({Bytes(64, 5)});
  d.consume(stream);
  ASSERT_TRUE(d.has_frame());
  auto f = d.frame();
  EXPECT_GE(f.headroom(), kHeadroom);
  EXPECT_GE(f.tailroom(), kTailroom);
  EXPECT_TRUE(push_frame_header(f));
  EXPECT_EQ(Bytes(f.data(), f.data() + f.size()), stream);
}

TEST(StreamFrame, PushHeaderRefusesWithoutHeadroomOrOverTheMaximum) {
  Bytes buf(kMaxFrame + 4);
  PacketView no_room(buf.data(), buf.size(), 1, 10);
  EXPECT_FALSE(push_frame_header(no_room));
  EXPECT_EQ(no_room.size(), 10u);
  PacketView big(buf.data(), buf.size(), 2, kMaxFrame + 1);
  EXPECT_FALSE(push_frame_header(big));
  PacketView ok(buf.data(), buf.size(), 2, kMaxFrame);
  EXPECT_TRUE(push_frame_header(ok));
  EXPECT_EQ(buf[0], 0xff);
  EXPECT_EQ(buf[1], 0xff);
}

}  // namespace
}  // namespace p2p::wire
