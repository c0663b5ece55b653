// core::PathSet's TCP paths on a virtual clock: a stream is a confirmed path of its own,
// chosen over the relay and under any confirmed UDP path; it is probed over its stream and
// dies when its probes go unanswered; UDP is retried in the background while on it, and a UDP
// path that confirms takes over; removing the stream falls back to the relay.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <vector>

#include "daemon/core/path_set.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

const Endpoint kPeerPublic = *Endpoint::parse("203.0.113.7:40000");
const Endpoint kPeerTcp = *Endpoint::parse("203.0.113.7:40001");
const Endpoint kOwnPublic = *Endpoint::parse("198.51.100.2:41000");
constexpr std::uint32_t kStream = 7;

class Recorder : public PathEffects {
 public:
  void send_probe(const Endpoint& to, std::uint64_t id) override { udp.push_back({to, id}); }
  void send_stream_probe(std::uint32_t stream, std::uint64_t id) override {
    tcp.push_back({stream, id});
  }
  std::vector<std::pair<Endpoint, std::uint64_t>> udp;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> tcp;
};

class PathSetTcpTest : public ::testing::Test {
 protected:
  PathPolicy policy;
  spdlog::logger log{"path_set_tcp_test", std::make_shared<spdlog::sinks::null_sink_st>()};
  Time now = Time{} + 1000s;
  Recorder fx;
  PathSet set{policy, log, 100};

  CandidateSources sources() {
    CandidateSources c;
    c.peer_public = kPeerPublic;
    c.own_public = kOwnPublic;
    return c;
  }
  // Ticks at every deadline up to `until`; true if any tick said a UDP retry is due.
  bool run_until(Time until, bool traffic = false) {
    bool retry = false;
    for (int guard = 0; set.deadline() <= until && guard < 100000; ++guard) {
      now = std::max(now, set.deadline());
      retry |= set.tick(now, traffic, fx).retry_due;
    }
    now = std::max(now, until);
    return retry;
  }
  // A UDP punching round that times out: on the relay, "punching timed out".
  void failed_udp_round() {
    set.start_punching(now, sources(), false, fx);
    run_until(now + policy.punch_timeout);
    ASSERT_EQ(set.active(), nullptr);
    ASSERT_EQ(set.relay_reason(), "punching timed out");
  }
};

TEST_F(PathSetTcpTest, AStreamIsAConfirmedPathChosenOverTheRelay) {
  failed_udp_round();
  set.add_stream(now, kStream, kPeerTcp);
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(set.active()->transport, Transport::kTcp);
  EXPECT_EQ(set.active()->stream, kStream);
  EXPECT_EQ(set.active()->endpoint, kPeerTcp);
  EXPECT_EQ(set.tcp(), set.active());
  EXPECT_STREQ(to_string(Transport::kTcp), "tcp");
  EXPECT_STREQ(to_string(Transport::kUdp), "udp");
}

TEST_F(PathSetTcpTest, ProbedOverItsStreamAndDeadWhenUnanswered) {
  failed_udp_round();
  set.add_stream(now, kStream, kPeerTcp);
  // Under traffic the active path is probed every 2 s: over the stream, never over UDP.
  const auto udp_before = fx.udp.size();
  int answered = 0;
  for (int i = 0; i < 300; ++i) {  // 30 s, answering within 100 ms
    run_until(now + 100ms, true);
    if (fx.tcp.empty()) continue;
    EXPECT_FALSE(set.on_stream_ack(now, fx.tcp.back().second, kStream + 1));
    answered += set.on_stream_ack(now, fx.tcp.back().second, kStream);
  }
  ASSERT_FALSE(fx.tcp.empty());
  EXPECT_EQ(fx.tcp.front().first, kStream);
  // Answered on the stream: still confirmed, with an RTT.
  EXPECT_GE(answered, 5);
  EXPECT_TRUE(set.tcp()->confirmed);
  EXPECT_TRUE(set.tcp()->rtt);
  // An ack arriving over UDP from the same endpoint does not confirm the TCP path.
  EXPECT_FALSE(set.on_ack(now, fx.tcp.back().second, kPeerTcp));
  // Unanswered from now on: dead after kProbesToDeclareDead probes.
  run_until(now + 30s, true);
  ASSERT_NE(set.tcp(), nullptr);
  EXPECT_FALSE(set.tcp()->confirmed);
  EXPECT_EQ(set.active(), nullptr);
  EXPECT_EQ(set.relay_reason(), "tcp path lost");
  // Only background UDP retries went out over UDP (lookups, not probes): none here.
  EXPECT_EQ(fx.udp.size(), udp_before);
}

TEST_F(PathSetTcpTest, UdpIsRetriedInTheBackgroundAndTakesOver) {
  failed_udp_round();
  set.add_stream(now, kStream, kPeerTcp);
  // While on TCP, a UDP retry still comes due (at the punch backoff, bounded).
  const Time on_tcp = now;
  bool retry = false;
  for (int i = 0; i < 400 && !retry; ++i) {
    retry = run_until(now + 1s);
    if (!fx.tcp.empty()) set.on_stream_ack(now, fx.tcp.back().second, kStream);
  }
  ASSERT_TRUE(retry);
  EXPECT_LE(now - on_tcp, kMaxPunchBackoff);
  // The retry's round: the UDP candidate confirms and is chosen over the stream.
  set.start_punching(now, sources(), true, fx);
  EXPECT_EQ(set.active()->transport, Transport::kTcp);  // still on TCP while punching
  ASSERT_FALSE(fx.udp.empty());
  EXPECT_TRUE(set.on_ack(now + 30ms, fx.udp.back().second, kPeerPublic));
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(set.active()->transport, Transport::kUdp);
  // The stream stays beside it as a fallback.
  ASSERT_NE(set.tcp(), nullptr);
  EXPECT_TRUE(set.tcp()->confirmed);
}

TEST_F(PathSetTcpTest, ConfirmedUdpOutranksTcp) {
  set.start_punching(now, sources(), true, fx);
  ASSERT_FALSE(fx.udp.empty());
  ASSERT_TRUE(set.on_ack(now + 20ms, fx.udp.back().second, kPeerPublic));
  set.add_stream(now + 30ms, kStream, kPeerTcp);
  EXPECT_EQ(set.active()->transport, Transport::kUdp);
}

TEST_F(PathSetTcpTest, RemovingTheStreamFallsBackToTheRelay) {
  failed_udp_round();
  set.add_stream(now, kStream, kPeerTcp);
  EXPECT_FALSE(set.remove_stream(now, kStream + 1));
  EXPECT_NE(set.active(), nullptr);
  EXPECT_TRUE(set.remove_stream(now, kStream));
  EXPECT_EQ(set.active(), nullptr);
  EXPECT_EQ(set.tcp(), nullptr);
  EXPECT_EQ(set.relay_reason(), "tcp path closed");
}

TEST_F(PathSetTcpTest, ANewStreamReplacesTheOld) {
  failed_udp_round();
  set.add_stream(now, kStream, kPeerTcp);
  set.add_stream(now, kStream + 1, kPeerTcp);
  ASSERT_NE(set.tcp(), nullptr);
  EXPECT_EQ(set.tcp()->stream, kStream + 1);
  std::size_t tcp_paths = 0;
  for (const auto& p : set.paths()) tcp_paths += p.transport == Transport::kTcp;
  EXPECT_EQ(tcp_paths, 1u);
}

}  // namespace
}  // namespace p2p::core
