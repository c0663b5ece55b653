// UdpSendBatch (net/udp_send_batch.hpp): a receive batch's datagrams come out grouped by
// destination, each destination's in the order added, views of the caller's bytes; a full
// batch refuses and counts. The same batch in front of a real socket, where each group's runs
// leave as UDP_SEGMENT sends, is in udp_offload_test.cpp.
#include "net/udp_send_batch.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace p2p {
namespace {

const Endpoint kA{Ipv4{0x0a000001}, 7000};
const Endpoint kB{Ipv4{0x0a000002}, 7000};
const Endpoint kA2{Ipv4{0x0a000001}, 7001};  // same address as kA, another port

struct Out {
  Endpoint to;
  const std::uint8_t* data;
  std::size_t size;
};

std::vector<Out> drain(UdpSendBatch& batch) {
  std::vector<Out> out;
  batch.drain([&](const Endpoint& to, std::span<const std::uint8_t> d) {
    out.push_back(Out{to, d.data(), d.size()});
  });
  return out;
}

TEST(UdpSendBatch, MixedDestinationsComeOutGroupedInTheOrderAdded) {
  std::vector<std::uint8_t> buffer(100);
  UdpSendBatch batch(16);
  // Interleaved: B, A, A2, B, A, B (each datagram its own bytes in the buffer).
  const std::vector<std::pair<Endpoint, std::size_t>> added{{kB, 0},  {kA, 10}, {kA2, 20},
                                                            {kB, 30}, {kA, 40}, {kB, 50}};
  for (const auto& [to, at] : added) ASSERT_TRUE(batch.add(to, {buffer.data() + at, 10}));
  EXPECT_EQ(batch.size(), 6u);
  auto out = drain(batch);
  EXPECT_TRUE(batch.empty());
  ASSERT_EQ(out.size(), 6u);
  const std::vector<std::pair<Endpoint, std::size_t>> expected{{kA, 10}, {kA, 40}, {kA2, 20},
                                                               {kB, 0},  {kB, 30}, {kB, 50}};
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].to, expected[i].first) << i;
    EXPECT_EQ(out[i].data, buffer.data() + expected[i].second) << i;  // a view, not a copy
    EXPECT_EQ(out[i].size, 10u);
  }
  EXPECT_TRUE(drain(batch).empty());  // drained means empty
}

TEST(UdpSendBatch, OneDestinationKeepsItsOrderAcrossSizes) {
  std::vector<std::uint8_t> buffer(5000);
  UdpSendBatch batch(8);
  const std::vector<std::size_t> sizes{1200, 1200, 1200, 300, 1200};
  std::size_t at = 0;
  for (auto s : sizes) {
    ASSERT_TRUE(batch.add(kA, {buffer.data() + at, s}));
    at += s;
  }
  auto out = drain(batch);
  ASSERT_EQ(out.size(), sizes.size());
  at = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(out[i].size, sizes[i]);
    EXPECT_EQ(out[i].data, buffer.data() + at);
    at += sizes[i];
  }
}

TEST(UdpSendBatch, AFullBatchRefusesAndCountsUntilDrained) {
  std::vector<std::uint8_t> buffer(10);
  UdpSendBatch batch(3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(batch.add(kA, buffer));
  EXPECT_FALSE(batch.add(kB, buffer));
  EXPECT_FALSE(batch.add(kA, buffer));
  EXPECT_EQ(batch.dropped(), 2u);
  EXPECT_EQ(batch.size(), 3u);
  auto out = drain(batch);
  EXPECT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.to, kA);  // the refused B never comes out
  EXPECT_TRUE(batch.add(kB, buffer));
  EXPECT_EQ(batch.dropped(), 2u);
  EXPECT_EQ(batch.capacity(), 3u);
}

}  // namespace
}  // namespace p2p
