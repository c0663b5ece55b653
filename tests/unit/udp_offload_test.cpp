// UDP segmentation offload: the run and split arithmetic (net/udp_offload.hpp), then the
// socket on loopback with UDP_SEGMENT and UDP_GRO on (net/asio/udp_socket.hpp): a run of
// same-size datagrams leaves in one message and arrives coalesced, and every datagram comes
// out again, in order, byte for byte, one per pool buffer.
#include <gtest/gtest.h>
#include <poll.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <vector>

#include "net/asio/packet_pool.hpp"
#include "net/asio/udp_socket.hpp"
#include "net/udp_offload.hpp"

namespace p2p {
namespace {

using namespace std::chrono_literals;
using udp_offload::gro_segment;
using udp_offload::gro_segment_count;
using udp_offload::gso_run_length;

std::size_t run(std::vector<std::size_t> sizes, std::size_t max_segments = 64,
                std::size_t max_bytes = udp_offload::kMaxRunBytes) {
  return gso_run_length(sizes, max_segments, max_bytes);
}

TEST(GsoRun, SameSizesRunAndTheLastMayBeShort) {
  EXPECT_EQ(run({}), 0u);
  EXPECT_EQ(run({1400}), 1u);
  EXPECT_EQ(run({1400, 1400, 1400}), 3u);
  EXPECT_EQ(run({1400, 1400, 900, 1400}), 3u);  // the short one ends the run
  EXPECT_EQ(run({1400, 1500, 1400}), 1u);       // a longer one cannot follow
  EXPECT_EQ(run({900, 1400}), 1u);
  EXPECT_EQ(run({0, 0}), 1u);
  EXPECT_EQ(run({1400, 0}), 1u);
}

TEST(GsoRun, BoundedBySegmentsAndBytes) {
  std::vector<std::size_t> many(100, 1000);
  EXPECT_EQ(run(many), 64u);
  EXPECT_EQ(run(many, 10), 10u);
  EXPECT_EQ(run(many, 64, 5500), 5u);
  std::vector<std::size_t> big(100, 1452);
  std::size_t n = run(big);
  EXPECT_LE(n * 1452, udp_offload::kMaxRunBytes);
  EXPECT_GT((n + 1) * 1452, udp_offload::kMaxRunBytes);
}

TEST(GroSplit, CutsIntoGsoSizedDatagramsWithAShortLastOne) {
  std::vector<std::uint8_t> buffer(3500);
  for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(gro_segment_count(0, 1000), 0u);
  EXPECT_EQ(gro_segment_count(3500, 0), 1u);
  EXPECT_EQ(gro_segment_count(1000, 1000), 1u);
  EXPECT_EQ(gro_segment_count(3000, 1000), 3u);
  ASSERT_EQ(gro_segment_count(3500, 1000), 4u);
  std::size_t at = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    auto d = gro_segment(buffer, 1000, i);
    EXPECT_EQ(d.size(), i < 3 ? 1000u : 500u);
    EXPECT_EQ(d.data(), buffer.data() + at);
    at += d.size();
  }
  EXPECT_EQ(at, buffer.size());
  EXPECT_EQ(gro_segment(buffer, 0, 0).size(), buffer.size());
}

// --- the socket, on loopback ------------------------------------------------------------------

const Endpoint kLoopback{Ipv4{0x7f000001}, 0};

io::UdpSocket open_udp(boost::asio::io_context& io, bool offloads) {
  auto s = io::UdpSocket::open(io, kLoopback, io::UdpOptions{.gso = offloads, .gro = offloads});
  if (!s) throw std::runtime_error(s.error().message);
  return std::move(*s);
}

std::vector<std::uint8_t> datagram(std::size_t i, std::size_t size) {
  std::vector<std::uint8_t> d(size);
  for (std::size_t k = 0; k < size; ++k) d[k] = static_cast<std::uint8_t>(i * 13 + k);
  return d;
}

// Receives `count` datagrams (or gives up after 5 s) through a pool smaller than a coalesced
// buffer holds, so that some wait in the socket between calls.
std::vector<std::vector<std::uint8_t>> receive(io::UdpSocket& s, std::size_t count) {
  io::PacketPool pool(8);
  std::vector<io::ReceivedDatagram> out(8);
  std::vector<std::vector<std::uint8_t>> got;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto n = s.receive_batch(pool, out);
    EXPECT_TRUE(n.has_value());
    if (!n || *n == 0) {
      EXPECT_FALSE(s.has_pending());
      pollfd p{s.native_handle(), POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    for (std::size_t i = 0; i < *n; ++i) {
      EXPECT_EQ(out[i].from.port, out[0].from.port);
      got.emplace_back(pool.packet(i), pool.packet(i) + out[i].length);
    }
  }
  return got;
}

void send_runs_and_receive(bool offloads) {
  boost::asio::io_context io;
  auto a = open_udp(io, offloads);
  auto b = open_udp(io, offloads);
  auto c = open_udp(io, false);
  if (offloads &&
      (a.gso() != io::UdpSocket::Offload::kOn || b.gro() != io::UdpSocket::Offload::kOn))
    GTEST_SKIP() << "no UDP GSO/GRO in this kernel";
  // Runs of 1200-byte datagrams, a short one, a datagram to another destination in between.
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < 100; ++i) {
    const std::size_t size = i % 25 == 24 ? 300 : 1200;
    sent.push_back(datagram(i, size));
    ASSERT_TRUE(a.queue(b.local_endpoint(), sent.back()));
    if (i == 60) {
      ASSERT_TRUE(a.queue(c.local_endpoint(), datagram(999, 1200)));
    }
  }
  a.flush();
  EXPECT_EQ(a.queued(), 0u);
  EXPECT_EQ(a.stats().sent, 101u);
  auto got = receive(b, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i], sent[i]) << "datagram " << i;
  EXPECT_EQ(b.stats().received, sent.size());
  auto other = receive(c, 1);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0], datagram(999, 1200));
  if (offloads) {
    // 100 datagrams in runs of at most 25: at least 4 messages carried several.
    EXPECT_GE(a.stats().gso_sends, 4u);
    EXPECT_LE(a.stats().gso_sends, 6u);
    EXPECT_GE(b.stats().gro_buffers, 1u);
  } else {
    EXPECT_EQ(a.stats().gso_sends, 0u);
    EXPECT_EQ(b.stats().gro_buffers, 0u);
    EXPECT_EQ(a.gso(), io::UdpSocket::Offload::kOff);
  }
}

TEST(UdpSocketOffload, RunsLeaveInOneMessageAndArriveSplitInOrder) {
  send_runs_and_receive(true);
}

TEST(UdpSocketOffload, OffMeansOneDatagramPerMessage) {
  send_runs_and_receive(false);
}

}  // namespace
}  // namespace p2p
