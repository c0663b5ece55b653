// core::BirthdayPunch on the virtual clock with recording effects: every cap (sockets, probes
// per second, probes per attempt), distinct random ports, the first hit closes every other
// socket and hands over the winner, the back-off after a failure (1 min doubling to 30 min),
// one attempt at a time; and plan_punch's choice of it.
#include "daemon/core/birthday_punch.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "daemon/core/hard_nat_punch.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}
const Ipv4 kPeer = *Ipv4::parse("10.77.0.3");

struct Recorder : BirthdayEffects {
  std::mt19937_64 rng{42};
  std::size_t socket_limit = 100000;
  std::set<std::uint32_t> open;
  std::uint32_t next = 1;
  std::size_t peak = 0;
  struct Probe {
    Time at;
    std::uint32_t socket;
    Endpoint to;
  };
  std::vector<Probe> probes;
  Time now{};

  std::uint32_t open_socket() override {
    if (open.size() >= socket_limit) return 0;
    open.insert(next);
    peak = std::max(peak, open.size());
    return next++;
  }
  void close_socket(std::uint32_t s) override { EXPECT_EQ(open.erase(s), 1u) << s; }
  void send_probe(std::uint32_t socket, const Endpoint& to) override {
    if (socket != 0) {
      EXPECT_TRUE(open.contains(socket));
    }
    probes.push_back({now, socket, to});
  }
  std::uint64_t random() override { return rng(); }
};

// Runs the attempt to its end, ticking whenever it asks; returns the time it ended.
Time run(BirthdayPunch& b, Recorder& fx, Time t) {
  for (int guard = 0; b.running() && guard < 100000; ++guard) {
    t = std::max(t, b.deadline());
    fx.now = t;
    b.tick(t, fx);
  }
  return t;
}

TEST(BirthdayPunch, TheSymmetricSideOpensAtMostTheSocketCapAndSpreadsTheProbes) {
  BirthdayPunch b({true, 256, 200, 1024});
  Recorder fx;
  const Time t0 = Time{} + 1h;
  fx.now = t0;
  b.start(t0, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx);
  Time end = run(b, fx, t0);
  EXPECT_FALSE(b.running());
  EXPECT_EQ(fx.probes.size(), 1024u);
  EXPECT_EQ(fx.peak, 256u);
  EXPECT_TRUE(fx.open.empty());  // all closed at the end
  std::set<std::uint32_t> used;
  for (const auto& p : fx.probes) {
    EXPECT_EQ(p.to, ep("198.51.100.1:41000"));
    used.insert(p.socket);
  }
  EXPECT_EQ(used.size(), 256u);
  // 1024 probes at 200/s take 5.12 s, then answers are waited for.
  EXPECT_GE(end - t0, 5s);
  EXPECT_LE(end - t0, 5s + 120ms + BirthdayPunch::kLinger + 10ms);
  EXPECT_EQ(b.counters().probes, 1024u);
  EXPECT_EQ(b.counters().sockets_opened, 256u);
}

TEST(BirthdayPunch, TheConeSideProbesDistinctRandomPortsOfTheAddress) {
  BirthdayPunch b({true, 256, 200, 1024});
  Recorder fx;
  b.start(Time{}, kPeer, BirthdayPunch::Role::kPorts, ep("198.51.100.2:5000"), fx);
  run(b, fx, Time{});
  ASSERT_EQ(fx.probes.size(), 1024u);
  std::set<std::uint16_t> ports;
  for (const auto& p : fx.probes) {
    EXPECT_EQ(p.socket, 0u);
    EXPECT_EQ(p.to.address, ep("198.51.100.2:5000").address);
    EXPECT_GE(p.to.port, 1024);
    ports.insert(p.to.port);
  }
  EXPECT_EQ(ports.size(), 1024u);
  EXPECT_EQ(fx.peak, 0u);  // no extra socket on the cone side
  // Spread over the range, not a run of neighbours.
  EXPECT_LT(*ports.begin(), 20000);
  EXPECT_GT(*ports.rbegin(), 45000);
}

TEST(BirthdayPunch, NeverFasterThanTheRateEvenWhenTickedLate) {
  BirthdayPunch b({true, 64, 100, 500});
  Recorder fx;
  b.start(Time{}, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx);
  // Ticked far too often, then very late: the rate holds in every one-second window.
  Time t{};
  for (int i = 0; i < 2000 && b.running(); ++i) {
    t += i == 700 ? 3s : 1ms;
    fx.now = t;
    b.tick(t, fx);
  }
  run(b, fx, t);
  ASSERT_EQ(fx.probes.size(), 500u);
  for (std::size_t i = 0; i < fx.probes.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < fx.probes.size() && fx.probes[j].at - fx.probes[i].at < 1s; ++j)
      ++in_window;
    EXPECT_LE(in_window, 100u + BirthdayPunch::kBurst) << "window from probe " << i;
  }
}

TEST(BirthdayPunch, TheFirstHitClosesEveryOtherSocketAndHandsOverTheWinner) {
  BirthdayPunch b({true, 256, 200, 1024});
  Recorder fx;
  b.start(Time{}, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx);
  Time t{};
  while (fx.open.size() < 100) {
    t = b.deadline();
    fx.now = t;
    b.tick(t, fx);
  }
  const std::uint32_t winner = *std::next(fx.open.begin(), 37);
  EXPECT_TRUE(b.owns(winner));
  EXPECT_FALSE(b.hit(t, *Ipv4::parse("10.77.0.9"), winner, fx));  // another peer: no
  auto won = b.hit(t, kPeer, winner, fx);
  ASSERT_TRUE(won);
  EXPECT_EQ(*won, winner);
  EXPECT_EQ(fx.open, std::set<std::uint32_t>{winner});  // the caller owns it now
  EXPECT_FALSE(b.running());
  const auto sent = fx.probes.size();
  b.tick(t + 10s, fx);
  EXPECT_EQ(fx.probes.size(), sent);  // nothing more after the hit
  EXPECT_EQ(b.counters().successes, 1u);
  // No back-off after a success, only the short linger.
  EXPECT_FALSE(b.can_start(t));
  EXPECT_TRUE(b.can_start(t + BirthdayPunch::kLinger));
}

TEST(BirthdayPunch, AHitOnTheNodesOwnSocketKeepsNone) {
  BirthdayPunch b({true, 8, 200, 64});
  Recorder fx;
  b.start(Time{}, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx);
  run(b, fx, Time{});  // fails
  Recorder fx2;
  const Time t = b.not_before();
  b.start(t, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx2);
  fx2.now = t + 20ms;
  b.tick(t + 20ms, fx2);
  ASSERT_FALSE(fx2.open.empty());
  EXPECT_FALSE(b.hit(t + 20ms, kPeer, 0, fx2));
  EXPECT_TRUE(fx2.open.empty());
}

TEST(BirthdayPunch, BacksOffAfterAFailureDoublingToThirtyMinutes) {
  BirthdayPunch b({true, 16, 200, 100});
  Recorder fx;
  Time t = Time{} + 1h;
  std::vector<Duration> waits;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(b.can_start(t));
    b.start(t, kPeer, BirthdayPunch::Role::kPorts, ep("198.51.100.2:5000"), fx);
    EXPECT_FALSE(b.can_start(t));  // one at a time
    t = run(b, fx, t);
    waits.push_back(b.not_before() - t);
    EXPECT_FALSE(b.can_start(b.not_before() - 1ms));
    t = b.not_before();
  }
  const std::vector<Duration> want{1min, 2min, 4min, 8min, 16min, 30min, 30min, 30min};
  EXPECT_EQ(waits, want);
  EXPECT_EQ(b.counters().attempts, 8u);
  EXPECT_EQ(b.counters().probes, 800u);
  // A success resets the back-off.
  b.start(t, kPeer, BirthdayPunch::Role::kPorts, ep("198.51.100.2:5000"), fx);
  b.hit(t, kPeer, 0, fx);
  t += BirthdayPunch::kLinger;
  b.start(t, kPeer, BirthdayPunch::Role::kPorts, ep("198.51.100.2:5000"), fx);
  t = run(b, fx, t);
  EXPECT_EQ(b.not_before() - t, 1min);
}

TEST(BirthdayPunch, FewerSocketsThanAskedForStillPunchAndNoneFailsAtOnce) {
  BirthdayPunch b({true, 256, 200, 300});
  Recorder fx;
  fx.socket_limit = 10;
  b.start(Time{}, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), fx);
  Time t = run(b, fx, Time{});
  EXPECT_EQ(fx.peak, 10u);
  EXPECT_EQ(fx.probes.size(), 300u);
  Recorder none;
  none.socket_limit = 0;
  t = b.not_before();
  b.start(t, kPeer, BirthdayPunch::Role::kSockets, ep("198.51.100.1:41000"), none);
  EXPECT_FALSE(b.running());
  EXPECT_TRUE(none.probes.empty());
  EXPECT_GT(b.not_before(), t);  // counted as a failure: backs off
}

TEST(BirthdayPunch, DisabledNeverStarts) {
  BirthdayPunch b({false, 256, 200, 1024});
  Recorder fx;
  EXPECT_FALSE(b.can_start(Time{}));
  b.start(Time{}, kPeer, BirthdayPunch::Role::kPorts, ep("198.51.100.2:5000"), fx);
  EXPECT_TRUE(fx.probes.empty());
}

TEST(BirthdayPunch, PlanPicksItForAPortRestrictedConeAndARandomSymmetricNat) {
  const wire::NatSummary cone{wire::NatType::kPortRestrictedCone, wire::PortAllocation::kPreserving,
                              0};
  const wire::NatSummary full{wire::NatType::kFullCone, wire::PortAllocation::kPreserving, 0};
  const wire::NatSummary random{wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
  const wire::NatSummary seq{wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
  const Endpoint a = ep("198.51.100.1:20000"), b = ep("198.51.100.2:30000");
  EXPECT_EQ(plan_punch(a, cone, b, random, true, true).method, PunchMethod::kBirthday);
  EXPECT_EQ(plan_punch(a, random, b, cone, true, true).method, PunchMethod::kBirthday);
  EXPECT_EQ(plan_punch(a, cone, b, random, true, false).method, PunchMethod::kPlain);
  EXPECT_EQ(plan_punch(a, full, b, random, true, true).method, PunchMethod::kPlain);
  EXPECT_EQ(plan_punch(a, cone, b, seq, true, true).method, PunchMethod::kPredictPeer);
  EXPECT_EQ(plan_punch(a, random, b, random, true, true).method, PunchMethod::kNone);
  EXPECT_EQ(plan_punch(std::nullopt, cone, b, random, true, true).method, PunchMethod::kPlain);
  EXPECT_STREQ(to_string(PunchMethod::kBirthday), "birthday");
}

}  // namespace
}  // namespace p2p::core
