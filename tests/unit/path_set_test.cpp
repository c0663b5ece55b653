// core::PathSet on a virtual clock: which candidates punching gathers and why it relays instead,
// when probes leave, what an ack confirms, which confirmed path is chosen, when a path dies,
// the punch timeout and its doubling backoff, peer-reflexive sources, and deadline().
// A recording PathEffects stands in for the network: a test answers (or not) each probe.
#include "daemon/core/path_set.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

struct SentProbe {
  Time at;
  Endpoint to;
  std::uint64_t id;
};

// Records every probe with the test's current virtual time.
class RecordingEffects : public PathEffects {
 public:
  explicit RecordingEffects(const Time& now) : now_(now) {}
  void send_probe(const Endpoint& to, std::uint64_t probe_id) override {
    sent.push_back({now_, to, probe_id});
  }
  std::vector<SentProbe> to(const Endpoint& e) const {
    std::vector<SentProbe> out;
    for (const auto& p : sent) {
      if (p.to == e) out.push_back(p);
    }
    return out;
  }
  // The id of the last probe sent to `e` (0: none).
  std::uint64_t last_id(const Endpoint& e) const {
    auto v = to(e);
    return v.empty() ? 0 : v.back().id;
  }
  std::vector<SentProbe> sent;

 private:
  const Time& now_;
};

const Endpoint kPeerPublic = ep("203.0.113.7:40000");
const Endpoint kPeerLan = ep("192.168.1.7:5000");
const Endpoint kPeerLan2 = ep("192.168.1.8:5000");
const Endpoint kOwnPublic = ep("198.51.100.2:41000");
const Endpoint kOwnPublicSameNat = ep("203.0.113.7:41000");  // same address as the peer's

class PathSetTest : public ::testing::Test {
 protected:
  PathPolicy policy;
  spdlog::logger log{"path_set_test", std::make_shared<spdlog::sinks::null_sink_st>()};
  const Time t0 = Time{} + 1000s;
  Time now = t0;
  RecordingEffects fx{now};
  PathSet set{policy, log, 100};
  std::vector<Endpoint> lan{kPeerLan};

  CandidateSources sources(std::optional<Endpoint> own_public = kOwnPublic) {
    CandidateSources c;
    c.peer_public = kPeerPublic;
    c.peer_local = lan;
    c.own_public = own_public;
    return c;
  }

  void punch(const CandidateSources& c, bool traffic = false) {
    set.start_punching(now, c, traffic, fx);
  }

  // Runs tick() at every deadline up to and including `until`; ORs the results together.
  PathSet::TickResult run_until(Time until, bool traffic = false) {
    PathSet::TickResult all;
    for (int guard = 0; set.deadline() <= until; ++guard) {
      EXPECT_LT(guard, 100000) << "tick() keeps asking for the same instant";
      if (guard >= 100000) break;
      now = std::max(now, set.deadline());
      auto r = set.tick(now, traffic, fx);
      all.active_lost |= r.active_lost;
      all.retry_due |= r.retry_due;
    }
    now = std::max(now, until);
    return all;
  }

  // Answers the last probe sent to `e`, `rtt` after it left (the clock moves to that time).
  bool ack(const Endpoint& e, Duration rtt) {
    auto probes = fx.to(e);
    if (probes.empty()) return false;
    now = std::max(now, probes.back().at + rtt);
    return set.on_ack(now, probes.back().id, e);
  }

  // Milliseconds since t0: readable in failure messages (a time_point prints as bytes).
  std::int64_t ms(Time t) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count();
  }

  // Steps the clock a second at a time from `from` until tick() reports retry_due; returns
  // that instant (Time{}: none within kMaxPunchBackoff).
  Time retry_after(Time from) {
    for (Time t = from + 1s; t <= from + kMaxPunchBackoff + 1s; t += 1s) {
      if (run_until(t).retry_due) return t;
    }
    return Time{};
  }

  const Path* find(const Endpoint& e) const {
    for (const auto& p : set.paths()) {
      if (p.endpoint == e) return &p;
    }
    return nullptr;
  }
  std::size_t count(PathKind k) const {
    return std::count_if(set.paths().begin(), set.paths().end(),
                         [&](const Path& p) { return p.kind == k; });
  }
};

// --- Candidates ----------------------------------------------------------------------------

// Behind different NATs the peer's LAN addresses are unreachable: only its public endpoint.
TEST_F(PathSetTest, DifferentPublicAddressesGiveOnlyThePublicCandidate) {
  punch(sources(kOwnPublic));
  ASSERT_EQ(set.paths().size(), 1u);
  EXPECT_EQ(set.paths()[0].endpoint, kPeerPublic);
  EXPECT_EQ(set.paths()[0].kind, PathKind::kPublic);
  EXPECT_TRUE(set.punching());
  EXPECT_EQ(set.relay_reason(), "punching");
  ASSERT_EQ(fx.sent.size(), 1u);  // probed at once
  EXPECT_EQ(fx.sent[0].to, kPeerPublic);
  EXPECT_EQ(fx.sent[0].at, t0);
  EXPECT_NE(fx.sent[0].id, 0u);
}

// The same public address (one NAT) or our own public endpoint unknown: the LAN too.
TEST_F(PathSetTest, SharedOrUnknownPublicAddressAddsLanCandidates) {
  lan = {kPeerLan, kPeerLan2};
  punch(sources(kOwnPublicSameNat));
  EXPECT_EQ(count(PathKind::kPublic), 1u);
  EXPECT_EQ(count(PathKind::kLan), 2u);
  ASSERT_TRUE(find(kPeerLan2));
  EXPECT_EQ(find(kPeerLan2)->kind, PathKind::kLan);
  EXPECT_EQ(fx.sent.size(), 3u);

  PathSet unknown(policy, log, 1);
  RecordingEffects fx2(now);
  unknown.start_punching(now, sources(std::nullopt), false, fx2);
  EXPECT_EQ(unknown.paths().size(), 3u);
}

// A symmetric peer with sequential allocation: kPredictedPorts ports past its public one,
// one port_step apart.
TEST_F(PathSetTest, SequentialSymmetricPeerGetsPredictedPorts) {
  auto c = sources();
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 2};
  punch(c);
  ASSERT_EQ(count(PathKind::kPredicted), static_cast<std::size_t>(kPredictedPorts));
  for (int k = 1; k <= kPredictedPorts; ++k) {
    Endpoint e = kPeerPublic;
    e.port = static_cast<std::uint16_t>(kPeerPublic.port + 2 * k);
    ASSERT_TRUE(find(e)) << e.to_string();
    EXPECT_EQ(find(e)->kind, PathKind::kPredicted);
  }
  EXPECT_EQ(fx.sent.size(), 1u + kPredictedPorts);
}

// Prediction stops at the ends of the port range (either direction of step).
TEST_F(PathSetTest, PredictedPortsStayInsideThePortRange) {
  auto c = sources();
  c.peer_public = ep("203.0.113.7:65530");
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 2};
  punch(c);
  EXPECT_EQ(count(PathKind::kPredicted), 2u);  // 65532, 65534
  EXPECT_TRUE(find(ep("203.0.113.7:65534")));

  PathSet down(policy, log, 1);
  RecordingEffects fx2(now);
  c.peer_public = ep("203.0.113.7:10");
  c.peer_nat.port_step = -4;
  down.start_punching(now, c, false, fx2);
  std::vector<std::uint16_t> ports;
  for (const auto& p : down.paths()) {
    if (p.kind == PathKind::kPredicted) ports.push_back(p.endpoint.port);
  }
  EXPECT_EQ(ports, (std::vector<std::uint16_t>{6, 2}));  // never 0 or negative
}

// No prediction for a random allocator, a zero step, or with port_prediction off.
TEST_F(PathSetTest, NoPredictionWithoutASequentialSymmetricPeer) {
  auto c = sources();
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
  punch(c);
  EXPECT_EQ(count(PathKind::kPredicted), 0u);

  PathSet zero(policy, log, 1);
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 0};
  zero.start_punching(now, c, false, fx);
  EXPECT_EQ(zero.paths().size(), 1u);

  PathPolicy off = policy;
  off.port_prediction = false;
  PathSet disabled(off, log, 1);
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
  disabled.start_punching(now, c, false, fx);
  EXPECT_EQ(disabled.paths().size(), 1u);
}

// Never more than kMaxCandidates, whatever the sources offer.
TEST_F(PathSetTest, CandidatesAreBoundedByMaxCandidates) {
  lan.clear();
  for (int i = 0; i < 30; ++i) {
    Endpoint e = kPeerLan;
    e.port = static_cast<std::uint16_t>(6000 + i);
    lan.push_back(e);
  }
  auto c = sources(std::nullopt);
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
  punch(c);
  EXPECT_EQ(set.paths().size(), kMaxCandidates);
  EXPECT_EQ(fx.sent.size(), kMaxCandidates);
  // A new probe source finds no room either.
  EXPECT_EQ(set.on_probe(now, ep("198.18.0.1:1")), PathSet::ProbeSource::kKnown);
  EXPECT_EQ(set.paths().size(), kMaxCandidates);
}

// --- Relay instead of punching -------------------------------------------------------------

TEST_F(PathSetTest, ForcedRelayGathersNothing) {
  set.set_force(Force::kRelay);
  punch(sources());
  EXPECT_EQ(set.relay_reason(), "forced");
  EXPECT_FALSE(set.punching());
  EXPECT_TRUE(set.paths().empty());
  EXPECT_TRUE(fx.sent.empty());
}

TEST_F(PathSetTest, PunchingDisabledRelaysUnlessForcedDirect) {
  policy.punch_enabled = false;
  punch(sources());
  EXPECT_EQ(set.relay_reason(), "punching disabled");
  EXPECT_FALSE(set.punching());
  EXPECT_TRUE(fx.sent.empty());

  set.set_force(Force::kDirect);
  punch(sources());
  EXPECT_TRUE(set.punching());
  EXPECT_EQ(fx.sent.size(), 1u);
}

TEST_F(PathSetTest, BothSymmetricRelaysUnlessForcedDirect) {
  auto c = sources();
  c.own_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
  c.peer_nat = c.own_nat;
  punch(c);
  EXPECT_EQ(set.relay_reason(), "both symmetric");
  EXPECT_FALSE(set.punching());
  EXPECT_TRUE(fx.sent.empty());

  // One symmetric side alone is punched.
  PathSet one(policy, log, 1);
  c.own_nat = {};
  one.start_punching(now, c, false, fx);
  EXPECT_TRUE(one.punching());

  set.set_force(Force::kDirect);
  c.own_nat = c.peer_nat;
  punch(c);
  EXPECT_TRUE(set.punching());
}

// Both symmetric and both sequential: each side probes predicted ports of the other, the one
// with the lower public endpoint every second port (hard_nat_punch.hpp), and says so.
TEST_F(PathSetTest, BothSequentialSymmetricArePredictedBothWays) {
  auto c = sources();
  c.own_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
  c.peer_nat = c.own_nat;
  punch(c);  // kOwnPublic 198.51.100.2 < kPeerPublic 203.0.113.7: we lead, stride 2
  EXPECT_TRUE(set.punching());
  EXPECT_EQ(set.punch_method(), PunchMethod::kPredictBoth);
  ASSERT_EQ(count(PathKind::kPredicted), static_cast<std::size_t>(kPredictedPorts));
  EXPECT_TRUE(find(ep("203.0.113.7:40002")));
  EXPECT_TRUE(find(ep("203.0.113.7:40032")));
  EXPECT_FALSE(find(ep("203.0.113.7:40001")));
}

TEST_F(PathSetTest, NoCandidatesRelays) {
  CandidateSources c;  // no public endpoint, no LAN endpoints
  punch(c);
  EXPECT_EQ(set.relay_reason(), "no candidates");
  EXPECT_FALSE(set.punching());
  EXPECT_TRUE(fx.sent.empty());
  EXPECT_EQ(set.deadline(), Time::max());
}

// --- Probing -------------------------------------------------------------------------------

// An unanswered candidate is probed every kPunchFastInterval for the first kPunchFastPhase,
// then every kPunchSlowInterval until the punch timeout.
// (Within the fast phase the outstanding probe is sent again with its id; see the next test.)
TEST_F(PathSetTest, PunchProbesFastForTwoSecondsThenSlow) {
  punch(sources());
  run_until(t0 + policy.punch_timeout - 1ms);
  std::vector<Duration> at;
  for (const auto& p : fx.to(kPeerPublic)) at.push_back(p.at - t0);
  std::vector<Duration> want;
  for (Duration t{}; t < kPunchFastPhase; t += kPunchFastInterval) want.push_back(t);
  for (Duration t = kPunchFastPhase; t < policy.punch_timeout; t += kPunchSlowInterval)
    want.push_back(t);
  EXPECT_EQ(at, want);
}

// One outstanding probe per path: an odd id that lives kProbeTimeout, its copies in the fast
// phase repeat it, and every new probe after a timeout has a fresh id.
TEST_F(PathSetTest, PunchProbesCarryFreshOddIdsPerTimeoutAndCopiesRepeatThem) {
  punch(sources());
  run_until(t0 + policy.punch_timeout - 1ms);
  auto probes = fx.to(kPeerPublic);
  ASSERT_EQ(probes.size(), 16u);  // 8 in the fast phase, then one a second
  std::map<std::int64_t, std::set<std::uint64_t>> ids_by_second;
  std::set<std::uint64_t> all;
  for (const auto& p : probes) {
    EXPECT_EQ(p.id % 2, 1u);
    ids_by_second[std::chrono::duration_cast<std::chrono::seconds>(p.at - t0).count()].insert(p.id);
    all.insert(p.id);
  }
  for (const auto& [second, ids] : ids_by_second) EXPECT_EQ(ids.size(), 1u) << second;
  EXPECT_EQ(all.size(), ids_by_second.size());                  // no id outlives its second
  EXPECT_EQ(probes.back().at, t0 + policy.punch_timeout - 1s);  // probed to the end
}

// An answer to the first copy of a probe confirms the path after the copies went out.
TEST_F(PathSetTest, AckToAnEarlierCopyConfirms) {
  punch(sources());
  const auto id = fx.last_id(kPeerPublic);
  run_until(t0 + 600ms);  // two more copies left
  ASSERT_EQ(fx.to(kPeerPublic).size(), 3u);
  ASSERT_EQ(fx.last_id(kPeerPublic), id);
  now = t0 + 610ms;
  EXPECT_TRUE(set.on_ack(now, id, kPeerPublic));
  ASSERT_TRUE(set.active());
  EXPECT_EQ(set.active()->rtt, 610ms);  // counted from the first copy
}

// --- Acks ----------------------------------------------------------------------------------

// Only the outstanding probe id, from the endpoint it was sent to, confirms a path.
TEST_F(PathSetTest, AckConfirmsOnlyTheMatchingProbeFromTheSameEndpoint) {
  punch(sources());
  const auto id = fx.last_id(kPeerPublic);
  now = t0 + 40ms;
  EXPECT_FALSE(set.on_ack(now, id, ep("203.0.113.7:40001")));  // right id, wrong endpoint
  EXPECT_FALSE(set.on_ack(now, id + 2, kPeerPublic));          // wrong id
  EXPECT_FALSE(set.on_ack(now, 0, kPeerPublic));
  EXPECT_FALSE(set.paths()[0].confirmed);
  EXPECT_EQ(set.active(), nullptr);

  EXPECT_TRUE(set.on_ack(now, id, kPeerPublic));
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(set.active()->endpoint, kPeerPublic);
  EXPECT_TRUE(set.active()->confirmed);
  EXPECT_EQ(set.active()->rtt, 40ms);
  EXPECT_EQ(set.active()->last_ack, now);
  EXPECT_EQ(set.relay_reason(), "");
  EXPECT_FALSE(set.punching());                    // the best kind available is confirmed
  EXPECT_FALSE(set.on_ack(now, id, kPeerPublic));  // a replayed ack matches nothing
}

// A LAN path beats a public one even when the public one answers faster.
TEST_F(PathSetTest, LanIsPreferredOverPublic) {
  punch(sources(kOwnPublicSameNat));
  ASSERT_TRUE(ack(kPeerPublic, 5ms));
  EXPECT_EQ(set.active()->endpoint, kPeerPublic);
  EXPECT_TRUE(set.punching());  // a LAN candidate is still pending
  ASSERT_TRUE(ack(kPeerLan, 50ms));
  EXPECT_EQ(set.active()->endpoint, kPeerLan);
  EXPECT_EQ(set.active()->kind, PathKind::kLan);
  EXPECT_FALSE(set.punching());
}

// Between paths of the same rank, the lower RTT wins, even when it is confirmed later.
TEST_F(PathSetTest, LowerRttWinsWithinTheSameRank) {
  punch(sources());
  const Endpoint reflexive = ep("203.0.113.7:40123");
  now = t0 + 80ms;
  EXPECT_EQ(set.on_probe(now, reflexive), PathSet::ProbeSource::kNew);
  run_until(now);  // the reflexive candidate is probed now
  ASSERT_EQ(fx.to(reflexive).size(), 1u);
  ASSERT_TRUE(ack(kPeerPublic, 100ms));  // t0 + 100 ms
  EXPECT_EQ(set.active()->endpoint, kPeerPublic);
  ASSERT_TRUE(ack(reflexive, 30ms));  // sent at 80 ms: t0 + 110 ms
  EXPECT_EQ(set.active()->endpoint, reflexive);
  EXPECT_EQ(set.active()->kind, PathKind::kReflexive);
}

// Once the best path is confirmed, the predicted ports that did not answer are forgotten.
TEST_F(PathSetTest, UnconfirmedPredictedCandidatesAreDroppedOnceTheBestIsConfirmed) {
  auto c = sources();
  c.peer_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
  punch(c);
  const Endpoint third = ep("203.0.113.7:40003");
  ASSERT_TRUE(find(third));
  ASSERT_TRUE(ack(third, 30ms));
  EXPECT_EQ(set.active()->endpoint, third);
  EXPECT_FALSE(set.punching());
  EXPECT_EQ(count(PathKind::kPredicted), 1u);  // only the confirmed one
  EXPECT_TRUE(find(kPeerPublic));              // not predicted: kept
  EXPECT_EQ(set.active()->endpoint, third);    // still named after the erase
}

// --- Dead paths ----------------------------------------------------------------------------

// kProbesToDeclareDead keepalive probes in a row without an ack: the path is dead, the owner
// is told once, and a retry is due kRetryAfterLoss later.
TEST_F(PathSetTest, UnansweredProbesKillTheActivePath) {
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  const std::size_t before = fx.sent.size();
  PathSet::TickResult r;
  Time lost_at{};
  while (now < t0 + 200s) {
    now = set.deadline();
    r = set.tick(now, false, fx);
    if (r.active_lost) {
      lost_at = now;
      break;
    }
    ASSERT_NE(set.active(), nullptr) << "lost without telling at " << (now - t0).count();
  }
  ASSERT_TRUE(r.active_lost);
  auto probes = std::vector<SentProbe>(fx.sent.begin() + before, fx.sent.end());
  ASSERT_EQ(probes.size(), static_cast<std::size_t>(kProbesToDeclareDead));
  EXPECT_EQ(lost_at, probes.back().at + kProbeTimeout);
  EXPECT_EQ(probes[1].at - probes[0].at, policy.keepalive);  // idle: keepalive interval
  EXPECT_EQ(set.active(), nullptr);
  EXPECT_FALSE(set.paths()[0].confirmed);
  EXPECT_EQ(set.relay_reason(), "direct path lost");
  EXPECT_FALSE(run_until(lost_at + kRetryAfterLoss - 1ms).retry_due);
  EXPECT_TRUE(run_until(lost_at + kRetryAfterLoss).retry_due);
}

// Two unanswered probes are not enough.
TEST_F(PathSetTest, AnAckBeforeTheLastProbeTimesOutKeepsThePath) {
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  const std::size_t before = fx.sent.size();
  while (fx.sent.size() < before + kProbesToDeclareDead) {
    now = set.deadline();
    EXPECT_FALSE(set.tick(now, false, fx).active_lost);
  }
  ASSERT_TRUE(ack(kPeerPublic, 500ms));
  EXPECT_FALSE(run_until(now + 10s).active_lost);
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(set.active()->unanswered, 0);
}

// Under traffic the active path is probed every kActiveProbeInterval.
TEST_F(PathSetTest, ActivePathUnderTrafficIsProbedEveryTwoSeconds) {
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  const std::size_t before = fx.sent.size();
  Time last_probe = now;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(set.active());
    while (fx.sent.size() == before + i) {
      now = set.deadline();
      set.tick(now, true, fx);
    }
    if (i > 0) {
      EXPECT_EQ(now - last_probe, kActiveProbeInterval);
    }
    last_probe = now;
    ASSERT_TRUE(ack(kPeerPublic, 10ms));
  }
}

// check_now(): the next probe alone decides. Unanswered, the path is dead one kProbeTimeout
// after it left; answered, nothing changes.
TEST_F(PathSetTest, CheckNowMakesOneUnansweredProbeDecide) {
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  run_until(t0 + 5s);
  const std::size_t before = fx.sent.size();
  set.check_now(now);
  EXPECT_EQ(ms(set.deadline()), ms(now));
  const Time checked = now;
  run_until(now);
  ASSERT_EQ(fx.sent.size(), before + 1);
  EXPECT_EQ(fx.sent.back().at, checked);
  ASSERT_TRUE(ack(kPeerPublic, 30ms));
  EXPECT_FALSE(run_until(checked + 3s).active_lost);
  EXPECT_NE(set.active(), nullptr);

  const std::size_t before2 = fx.sent.size();
  set.check_now(now);
  const Time checked2 = now;
  EXPECT_FALSE(run_until(checked2 + kProbeTimeout - 1ms).active_lost);
  EXPECT_NE(set.active(), nullptr);
  EXPECT_TRUE(run_until(checked2 + kProbeTimeout).active_lost);
  EXPECT_EQ(set.active(), nullptr);
  EXPECT_EQ(fx.sent.size(), before2 + 1);
}

// --- Punch timeout and backoff -------------------------------------------------------------

// Nothing answers: at the punch timeout the peer is relayed ("punching timed out"), the
// candidates are dropped, and a retry is due after 15 s, then 30 s, ... up to kMaxPunchBackoff.
TEST_F(PathSetTest, PunchTimeoutRelaysAndRetriesWithADoublingBackoff) {
  punch(sources());
  run_until(t0 + policy.punch_timeout - 1ms);
  EXPECT_TRUE(set.punching());
  EXPECT_FALSE(set.paths().empty());
  run_until(t0 + policy.punch_timeout);
  EXPECT_FALSE(set.punching());
  EXPECT_EQ(set.relay_reason(), "punching timed out");
  EXPECT_TRUE(set.paths().empty());
  EXPECT_EQ(set.active(), nullptr);

  Time timed_out = t0 + policy.punch_timeout;
  std::vector<Duration> backoffs;
  for (int round = 0; round < 7; ++round) {
    const Time due = retry_after(timed_out);
    ASSERT_NE(due, Time{}) << "no retry after round " << round;
    backoffs.push_back(due - timed_out);
    punch(sources());  // the owner punches again; nothing answers
    run_until(due + policy.punch_timeout);
    ASSERT_EQ(set.relay_reason(), "punching timed out");
    timed_out = due + policy.punch_timeout;
  }
  EXPECT_EQ(backoffs, (std::vector<Duration>{15s, 30s, 60s, 120s, 240s, 300s, 300s}));
}

// A confirmed path resets the backoff to its first value.
TEST_F(PathSetTest, ASuccessResetsTheBackoff) {
  punch(sources());
  run_until(t0 + policy.punch_timeout);
  ASSERT_TRUE(run_until(t0 + policy.punch_timeout + kFirstPunchBackoff).retry_due);
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 10ms));
  set.reset("idle");  // the session lapsed
  EXPECT_EQ(set.relay_reason(), "idle");
  EXPECT_TRUE(set.paths().empty());
  const Time start = now;
  punch(sources());
  run_until(start + policy.punch_timeout);
  ASSERT_EQ(set.relay_reason(), "punching timed out");
  EXPECT_EQ(retry_after(start + policy.punch_timeout) - (start + policy.punch_timeout),
            kFirstPunchBackoff);
}

// Punching ends at its deadline: no probe should leave then for a candidate about to be
// dropped (its ack could match nothing), and deadline() should then be the retry.
TEST_F(PathSetTest, NoProbeLeavesAtThePunchDeadline) {
  punch(sources());
  run_until(t0 + policy.punch_timeout);
  EXPECT_LT(fx.sent.back().at, t0 + policy.punch_timeout);
  EXPECT_EQ(ms(set.deadline()), ms(t0 + policy.punch_timeout + kFirstPunchBackoff));
}

// --- Probe sources -------------------------------------------------------------------------

// A probe from a source we did not know is a peer-reflexive candidate, probed at once.
TEST_F(PathSetTest, ProbeFromANewEndpointBecomesAReflexiveCandidate) {
  punch(sources());
  const Endpoint mapped = ep("203.0.113.7:49999");
  now = t0 + 10ms;
  EXPECT_EQ(set.on_probe(now, kPeerPublic), PathSet::ProbeSource::kKnown);
  EXPECT_EQ(set.on_probe(now, mapped), PathSet::ProbeSource::kNew);
  ASSERT_TRUE(find(mapped));
  EXPECT_EQ(find(mapped)->kind, PathKind::kReflexive);
  EXPECT_EQ(ms(set.deadline()), ms(now));
  run_until(now);
  ASSERT_EQ(fx.to(mapped).size(), 1u);
  EXPECT_EQ(fx.to(mapped)[0].at, now);
  EXPECT_EQ(set.on_probe(now, mapped), PathSet::ProbeSource::kKnown);
}

// On the relay after a round timed out, a probe from a new source (a NAT that remapped the
// peer after a collision or a reboot) is a move too: the owner punches it at once, not after
// the backoff.
TEST_F(PathSetTest, NewSourceWhileRelayedBetweenRoundsIsPunchedAtOnce) {
  punch(sources());
  run_until(t0 + policy.punch_timeout);
  ASSERT_FALSE(set.punching());
  ASSERT_EQ(set.active(), nullptr);
  const Endpoint remapped = ep("203.0.113.7:51234");
  now = t0 + policy.punch_timeout + 1s;
  EXPECT_EQ(set.on_probe(now, remapped), PathSet::ProbeSource::kMoved);
  EXPECT_EQ(set.on_probe(now, remapped), PathSet::ProbeSource::kKnown);
  punch(sources());  // what the owner does on kMoved
  ASSERT_EQ(fx.to(remapped).size(), 1u);
  EXPECT_EQ(fx.to(remapped)[0].at, now);
}

// Holding a direct path and not punching, a new source means the peer may have moved: kMoved,
// and the held path is checked by a single probe.
TEST_F(PathSetTest, NewSourceWhileHoldingADirectPathIsAMove) {
  punch(sources());
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  ASSERT_FALSE(set.punching());
  run_until(t0 + 3s);
  EXPECT_EQ(set.on_probe(now, ep("198.18.5.5:7000")), PathSet::ProbeSource::kMoved);
  EXPECT_EQ(ms(set.deadline()), ms(now));
  const Time moved = now;
  const std::size_t before = fx.to(kPeerPublic).size();
  EXPECT_TRUE(run_until(moved + kProbeTimeout).active_lost);  // the old path did not answer
  EXPECT_EQ(fx.to(kPeerPublic).size(), before + 1);
}

// Forced to the relay: a probe source is not recorded, an ack never makes a path active.
TEST_F(PathSetTest, ForcedRelayNeverPicksADirectPath) {
  punch(sources());
  set.set_force(Force::kRelay);
  EXPECT_TRUE(ack(kPeerPublic, 10ms));
  EXPECT_TRUE(set.paths()[0].confirmed);
  EXPECT_EQ(set.active(), nullptr);
  EXPECT_EQ(set.on_probe(now, ep("198.18.5.5:7000")), PathSet::ProbeSource::kKnown);
  EXPECT_EQ(set.paths().size(), 1u);
  run_until(now + 60s);
  EXPECT_EQ(set.active(), nullptr);
}

// --- deadline() ----------------------------------------------------------------------------

// deadline() is the earliest pending work: the next probe, an outstanding probe's timeout, the
// punch timeout or the retry, and Time::max() when nothing is pending.
TEST_F(PathSetTest, DeadlineIsTheEarliestPendingWork) {
  EXPECT_EQ(set.deadline(), Time::max());
  punch(sources());
  EXPECT_EQ(ms(set.deadline()),
            ms(t0 + kPunchFastInterval));  // next probe (before the 1 s timeout)
  // After the punch timeout: the retry. (One spurious wake-up comes first, for the probe that
  // left at the punch deadline itself; see NoProbeLeavesAtThePunchDeadline.)
  run_until(t0 + policy.punch_timeout);
  EXPECT_LE(set.deadline(), t0 + policy.punch_timeout + kFirstPunchBackoff);
  run_until(t0 + policy.punch_timeout + 1s);
  EXPECT_EQ(ms(set.deadline()), ms(t0 + policy.punch_timeout + kFirstPunchBackoff));
  // Idle on a confirmed path: the keepalive probe or the probe timeout, whichever is first.
  PathSet other(policy, log, 7);
  RecordingEffects fx2(now);
  other.start_punching(now, sources(), false, fx2);
  const Time sent = now;
  now += 10ms;
  ASSERT_TRUE(other.on_ack(now, fx2.last_id(kPeerPublic), kPeerPublic));
  other.tick(now, false, fx2);
  EXPECT_EQ(ms(other.deadline()),
            ms(sent + kPunchFastInterval));  // the punch schedule's next probe
  now = other.deadline();
  other.tick(now, false, fx2);
  EXPECT_EQ(fx2.sent.back().at, now);
  EXPECT_EQ(ms(other.deadline()), ms(now + kProbeTimeout));  // before the next keepalive (25 s)
  now += kProbeTimeout;
  other.tick(now, false, fx2);
  EXPECT_EQ(ms(other.deadline()), ms(sent + kPunchFastInterval + policy.keepalive));
}

// --- Counters (/metrics) -------------------------------------------------------------------

// A round that confirms a direct path counts as attempt and success, with its time to direct;
// a round that times out counts only as an attempt.
TEST_F(PathSetTest, CountsPunchRoundsAndTimeToDirect) {
  NodeCounters counters;
  policy.counters = &counters;
  punch(sources());
  EXPECT_EQ(counters.punch_attempts, 1u);
  now += 300ms;
  ASSERT_TRUE(ack(kPeerPublic, 20ms));
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(counters.punch_successes, 1u);
  ASSERT_EQ(counters.time_to_direct.count(), 1u);
  EXPECT_GT(counters.time_to_direct.sum(), 0.01);
  EXPECT_LT(counters.time_to_direct.sum(), 1.0);

  PathSet other{policy, log, 300};
  other.start_punching(now, sources(), false, fx);
  EXPECT_EQ(counters.punch_attempts, 2u);
  for (Time until = now + policy.punch_timeout + 1s; other.deadline() <= until;) {
    now = std::max(now, other.deadline());
    other.tick(now, false, fx);
  }
  EXPECT_EQ(other.active(), nullptr);
  EXPECT_EQ(counters.punch_successes, 1u);
  EXPECT_EQ(counters.time_to_direct.count(), 1u);
}


// --- router port mappings (kMapped) ------------------------------------------------------------

TEST_F(PathSetTest, ThePeersMappingIsACandidateOfItsOwnKind) {
  auto c = sources();
  c.peer_mapped = ep("11.250.42.7:7400");
  punch(c);
  ASSERT_FALSE(set.paths().empty());
  EXPECT_EQ(set.paths()[0].endpoint, *c.peer_mapped);
  EXPECT_EQ(set.paths()[0].kind, PathKind::kMapped);
  EXPECT_STREQ(to_string(PathKind::kMapped), "mapped");
  ASSERT_TRUE(ack(*c.peer_mapped, 20ms));
  ASSERT_NE(set.active(), nullptr);
  EXPECT_EQ(set.active()->kind, PathKind::kMapped);
}

TEST_F(PathSetTest, AMappingEndpointThatIsAlsoThePublicOneIsMapped) {
  auto c = sources();
  c.peer_mapped = kPeerPublic;
  punch(c);
  int n = 0;
  for (const auto& x : set.paths()) n += x.endpoint == kPeerPublic ? 1 : 0;
  EXPECT_EQ(n, 1);
  EXPECT_EQ(set.paths()[0].kind, PathKind::kMapped);
}

TEST_F(PathSetTest, BothSymmetricArePunchedWhenEitherHasAMapping) {
  auto c = sources();
  c.own_nat = {wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
  c.peer_nat = c.own_nat;
  c.peer_mapped = ep("11.250.42.7:7400");
  punch(c);
  EXPECT_TRUE(set.punching());

  PathSet ours(policy, log, 1);  // our own mapping: the peer will reach us; answer its probes
  c.peer_mapped.reset();
  c.own_mapped = true;
  ours.start_punching(now, c, false, fx);
  EXPECT_TRUE(ours.punching());
}

}  // namespace
}  // namespace p2p::core
