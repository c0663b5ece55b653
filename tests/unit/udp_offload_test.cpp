// UDP segmentation offload: the run and split arithmetic (net/udp_offload.hpp), then the
// socket on loopback with UDP_SEGMENT and UDP_GRO on (net/asio/udp_socket.hpp): a run of
// same-size datagrams leaves in one message and arrives coalesced, and every datagram comes
// out again, in order, byte for byte, one per pool buffer. Then the relay's way (the
// coordinator's shell): datagrams read in place from the coalesced buffers, and sends grouped
// by destination (UdpSendBatch) so that interleaved runs still leave one message each.
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
#include "net/udp_send_batch.hpp"

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

// Queues `count` datagrams of `size` (the last one `last` bytes) for each of b and c,
// interleaved b, c, b, c, ..., through a UdpSendBatch when `grouped`, and flushes.
void send_interleaved(io::UdpSocket& a, const Endpoint& b, const Endpoint& c, bool grouped,
                      std::vector<std::vector<std::uint8_t>>& to_b,
                      std::vector<std::vector<std::uint8_t>>& to_c) {
  for (std::size_t i = 0; i < 8; ++i) {
    to_b.push_back(datagram(i, i == 7 ? 300 : 1200));  // a short last datagram
    to_c.push_back(datagram(100 + i, 1000));
  }
  UdpSendBatch batch(64);
  for (std::size_t i = 0; i < 8; ++i) {
    for (auto [to, d] : {std::pair{b, &to_b[i]}, std::pair{c, &to_c[i]}}) {
      if (grouped) {
        ASSERT_TRUE(batch.add(to, *d));
      } else {
        ASSERT_TRUE(a.queue(to, *d, io::UdpSocket::Hold::kReference));
      }
    }
  }
  batch.drain([&](const Endpoint& to, std::span<const std::uint8_t> d) {
    EXPECT_TRUE(a.queue(to, d, io::UdpSocket::Hold::kReference));
  });
  EXPECT_EQ(a.flush(), 16u);
  EXPECT_EQ(a.queued(), 0u);
}

TEST(UdpSendBatchOnASocket, GroupedInterleavedRunsLeaveAsOneMessagePerDestination) {
  for (bool grouped : {true, false}) {
    SCOPED_TRACE(grouped ? "grouped" : "as queued");
    boost::asio::io_context io;
    auto a = open_udp(io, true);
    auto b = open_udp(io, false);
    auto c = open_udp(io, false);
    if (a.gso() != io::UdpSocket::Offload::kOn) GTEST_SKIP() << "no UDP GSO in this kernel";
    std::vector<std::vector<std::uint8_t>> to_b, to_c;
    send_interleaved(a, b.local_endpoint(), c.local_endpoint(), grouped, to_b, to_c);
    // Grouped: b's eight (seven of 1200 and a short last one) in one message, c's in another.
    // As queued, no two neighbours share a destination: sixteen single messages.
    EXPECT_EQ(a.stats().gso_sends, grouped ? 2u : 0u);
    EXPECT_EQ(a.stats().sent, 16u);
    EXPECT_EQ(receive(b, to_b.size()), to_b);
    EXPECT_EQ(receive(c, to_c.size()), to_c);
  }
}

TEST(UdpSocketInPlace, ViewsOfTheCoalescedBufferAreRelayedWithoutACopy) {
  boost::asio::io_context io;
  auto a = open_udp(io, true);
  auto b = open_udp(io, true);
  auto c = open_udp(io, false);
  if (a.gso() != io::UdpSocket::Offload::kOn || b.gro() != io::UdpSocket::Offload::kOn)
    GTEST_SKIP() << "no UDP GSO/GRO in this kernel";
  std::vector<io::ReceivedInPlace> none(4);
  EXPECT_FALSE(c.receive_in_place(none).has_value());  // gro off: receive_batch's job

  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < 30; ++i) {
    sent.push_back(datagram(i, i == 29 ? 500 : 1200));
    ASSERT_TRUE(a.queue(b.local_endpoint(), sent.back()));
  }
  a.flush();
  // Read in place (a batch smaller than what is read, so some stays pending between calls),
  // flip each datagram's first byte where it lies and send it on by reference, like the relay.
  std::vector<io::ReceivedInPlace> views(7);
  std::size_t got = 0, adjacent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got < sent.size() && std::chrono::steady_clock::now() < deadline) {
    auto n = b.receive_in_place(views);
    ASSERT_TRUE(n.has_value());
    if (*n == 0) {
      pollfd p{b.native_handle(), POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    for (std::size_t i = 0; i < *n; ++i) {
      auto bytes = views[i].bytes;
      ASSERT_LT(got, sent.size());
      EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), sent[got].begin(), sent[got].end()))
          << "datagram " << got;
      EXPECT_TRUE(b.holds(bytes));
      EXPECT_EQ(views[i].from.port, a.local_endpoint().port);
      if (i > 0 && views[i - 1].bytes.data() + views[i - 1].bytes.size() == bytes.data())
        ++adjacent;  // cut from one coalesced buffer, not copied apart
      bytes[0] ^= 0xff;
      sent[got][0] ^= 0xff;
      EXPECT_TRUE(b.queue(c.local_endpoint(), bytes, io::UdpSocket::Hold::kReference));
      ++got;
    }
    b.flush();  // before the next receive_in_place() reuses the buffers
  }
  EXPECT_EQ(got, sent.size());
  EXPECT_GE(b.stats().gro_buffers, 1u);
  EXPECT_GE(adjacent, 1u);
  EXPECT_FALSE(b.holds(sent[0]));
  EXPECT_EQ(receive(c, sent.size()), sent);
}

}  // namespace
}  // namespace p2p
