// nat::DiscoveryScheduler alone, on a virtual clock: which run starts when, against which
// server, and who gets its report. Probes are recorded, not delivered; a test answers the ones
// it wants (with the client's own endpoint as the mapped address, so one answer completes a
// run: no NAT, no RFC 5780) and leaves the others to time out. Probes are never retransmitted
// here, so each one recorded is the start of a run.
#include "daemon/nat/discovery_scheduler.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <map>

namespace p2p::nat {
namespace {

using namespace std::chrono_literals;

Endpoint ep(std::string_view s) {
  return *Endpoint::parse(s);
}

const Endpoint kOwnServer = ep("203.0.113.10:7400");
const Endpoint kLocal = ep("192.168.1.10:41000");
const Endpoint kS1 = ep("198.51.100.1:3478"), kS2 = ep("198.51.100.2:3478"),
               kS3 = ep("198.51.100.3:3478"), kS4 = ep("198.51.100.4:3478"),
               kS5 = ep("198.51.100.5:3478"), kS6 = ep("198.51.100.6:3478");
constexpr Time kT0 = Time{} + 1h;
constexpr Duration kInterval = 10min;
constexpr Duration kTestTimeout = 3500ms;  // SchedulerSettings' default: UDP blocked after it

struct Probe {
  Time at;
  Endpoint to;
  wire::stun::Message request;
};

// What a Done callback was handed.
struct Outcome {
  std::optional<Report> report;
  std::string error;
};

class Harness : public SchedulerEffects {
 public:
  explicit Harness(Duration interval = kInterval)
      : scheduler(
            // No retransmissions: every probe recorded is a run's first (test I times out).
            SchedulerSettings{.interval = interval, .software = "test", .initial_rto = 1min},
            *this,
            [this](std::span<std::uint8_t> out) {
              for (auto& b : out) b = static_cast<std::uint8_t>(++ids_);
            },
            [this](Time at, const Report& r) { own.emplace_back(at, r); },
            std::make_shared<spdlog::logger>("nat",
                                             std::make_shared<spdlog::sinks::null_sink_mt>())) {}

  // SchedulerEffects
  void send(const Endpoint& to, std::span<const std::uint8_t> datagram) override {
    auto m = wire::stun::parse(datagram);
    EXPECT_TRUE(m.has_value());
    probes.push_back({now, to, m ? *m : wire::stun::Message{}});
  }
  std::optional<Endpoint> own_server() override { return own_server_; }
  std::vector<Endpoint> local_endpoints() override { return {kLocal}; }

  // The virtual clock: every deadline up to `t` is honoured, as p2pvpnd's timer does.
  // A deadline that on_tick() leaves in the past fails the test (p2pvpnd would spin).
  void advance_to(Time t) {
    for (Time d = scheduler.next_deadline(); d <= t; d = scheduler.next_deadline()) {
      const bool again = d <= now && ticked_at_ == now;
      now = std::max(now, d);
      ASSERT_FALSE(again) << "on_tick() left its deadline in the past";
      ticked_at_ = now;
      scheduler.on_tick(now);
    }
    now = std::max(now, t);
  }
  void advance(Duration d) { advance_to(now + d); }

  // Answers probe i now, as its server would, then honours what is due (as after_event()).
  void answer(std::size_t i) {
    ASSERT_LT(i, probes.size());
    wire::stun::Message m;
    m.cls = wire::stun::MessageClass::kSuccess;
    m.transaction_id = probes[i].request.transaction_id;
    m.xor_mapped_address = kLocal;
    scheduler.on_stun(now, probes[i].to, wire::stun::encode(m));
    advance_to(now);
  }
  // Answers the last probe sent, which must have gone to `server`.
  void answer_last(const Endpoint& server) {
    ASSERT_FALSE(probes.empty());
    EXPECT_EQ(probes.back().to, server);
    answer(probes.size() - 1);
  }

  // A Done that records into outcomes[name].
  DiscoveryScheduler::Done record(const std::string& name) {
    return [this, name](const Expected<Report, std::string>& r) {
      Outcome& o = outcomes[name];
      EXPECT_FALSE(o.report || !o.error.empty()) << name << " answered twice";
      if (r) o.report = *r;
      else o.error = r.error();
    };
  }

  std::vector<Endpoint> probe_targets() const {
    std::vector<Endpoint> out;
    for (const auto& p : probes) out.push_back(p.to);
    return out;
  }

  Time now = kT0;
  std::optional<Endpoint> own_server_ = kOwnServer;
  std::vector<Probe> probes;
  std::vector<std::pair<Time, Report>> own;  // own reports, with when they came
  std::map<std::string, Outcome> outcomes;
  DiscoveryScheduler scheduler;

 private:
  std::uint8_t ids_ = 0;
  Time ticked_at_{};
};

TEST(DiscoveryScheduler, OwnReportAndWaitersComeOutsideOnStun) {
  Harness h;
  h.scheduler.request(h.now, std::nullopt, h.record("netcheck"));
  ASSERT_EQ(h.probe_targets(), std::vector<Endpoint>{kOwnServer});
  EXPECT_EQ(h.probes[0].request.software, "test");
  h.advance(20ms);
  // The answer completes the run, but on_stun() (called from inside the Node) reports nothing:
  // the run is finished at its deadline, which is now.
  wire::stun::Message m;
  m.cls = wire::stun::MessageClass::kSuccess;
  m.transaction_id = h.probes[0].request.transaction_id;
  m.xor_mapped_address = kLocal;
  EXPECT_EQ(h.scheduler.on_stun(h.now, kOwnServer, wire::stun::encode(m)), h.now);
  EXPECT_TRUE(h.own.empty());
  EXPECT_TRUE(h.outcomes.empty());
  h.scheduler.on_tick(h.now);
  ASSERT_EQ(h.own.size(), 1u);
  EXPECT_EQ(h.own[0].first, kT0 + 20ms);
  EXPECT_EQ(h.own[0].second.server, kOwnServer);
  EXPECT_EQ(h.own[0].second.public_endpoint, kLocal);
  EXPECT_EQ(h.scheduler.own_report()->public_endpoint, kLocal);
  ASSERT_TRUE(h.outcomes["netcheck"].report);
  EXPECT_EQ(h.outcomes["netcheck"].report->server, kOwnServer);
  EXPECT_EQ(h.scheduler.running_server(), std::nullopt);
}

TEST(DiscoveryScheduler, OwnRunRepeatsExactlyEveryIntervalFromItsStart) {
  Harness h;
  h.scheduler.request(h.now, std::nullopt);
  h.advance(40ms);
  h.answer_last(kOwnServer);
  ASSERT_EQ(h.own.size(), 1u);
  EXPECT_EQ(h.scheduler.next_deadline(), kT0 + kInterval);
  // A netcheck against another server in between does not move the schedule.
  h.advance_to(kT0 + 5min);
  h.scheduler.request(h.now, kS1, h.record("s1"));
  h.advance(30ms);
  h.answer_last(kS1);
  ASSERT_EQ(h.probes.size(), 2u);
  h.advance_to(kT0 + kInterval - 1ns);
  EXPECT_EQ(h.probes.size(), 2u);
  h.advance_to(kT0 + kInterval);
  ASSERT_EQ(h.probes.size(), 3u);
  EXPECT_EQ(h.probes[2].to, kOwnServer);
  EXPECT_EQ(h.probes[2].at, kT0 + kInterval);
  // The next one is an interval after this start, even though it finishes later.
  h.advance(300ms);
  h.answer_last(kOwnServer);
  EXPECT_EQ(h.own.size(), 2u);
  EXPECT_EQ(h.scheduler.next_deadline(), kT0 + 2 * kInterval);
  h.advance_to(kT0 + 2 * kInterval);
  ASSERT_EQ(h.probes.size(), 4u);
  EXPECT_EQ(h.probes[3].at, kT0 + 2 * kInterval);
}

TEST(DiscoveryScheduler, OneRunAtATimeQueuedJoinedOrRefusedBusy) {
  Harness h;
  h.scheduler.request(h.now, kS1, h.record("s1"));
  EXPECT_EQ(h.scheduler.running_server(), kS1);
  // Four more servers wait; a fifth is refused at once, a sixth too.
  h.scheduler.request(h.now, kS2, h.record("s2"));
  h.scheduler.request(h.now, kS3, h.record("s3"));
  h.scheduler.request(h.now, kS4, h.record("s4"));
  h.scheduler.request(h.now, kS5, h.record("s5"));
  EXPECT_EQ(h.scheduler.queued(), DiscoveryScheduler::kMaxQueued);
  h.scheduler.request(h.now, kS6, h.record("s6"));
  EXPECT_EQ(h.outcomes["s6"].error, DiscoveryScheduler::kBusy);
  EXPECT_FALSE(h.outcomes["s6"].report);
  // The node's own run is never refused; asking again for a queued or running run joins it.
  h.scheduler.request(h.now, std::nullopt, h.record("own"));
  h.scheduler.request(h.now, std::nullopt, h.record("own again"));
  h.scheduler.request(h.now, kS2, h.record("s2 again"));
  h.scheduler.request(h.now, kS1, h.record("s1 again"));
  EXPECT_EQ(h.scheduler.queued(), DiscoveryScheduler::kMaxQueued + 1);
  EXPECT_EQ(h.probe_targets(), std::vector<Endpoint>{kS1});  // nothing else started yet

  // Each run starts when the one before it finishes, in the order asked.
  for (const auto& server : {kS1, kS2, kS3, kS4, kS5, kOwnServer}) {
    EXPECT_EQ(h.scheduler.running_server(), server);
    h.advance(25ms);
    h.answer_last(server);
  }
  EXPECT_EQ(h.probe_targets(),
            (std::vector<Endpoint>{kS1, kS2, kS3, kS4, kS5, kOwnServer}));  // one run each
  EXPECT_EQ(h.scheduler.running_server(), std::nullopt);
  const std::map<std::string, Endpoint> expected = {
      {"s1", kS1},  {"s1 again", kS1}, {"s2", kS2},          {"s2 again", kS2},
      {"s3", kS3},  {"s4", kS4},       {"s5", kS5},          {"own", kOwnServer},
      {"own again", kOwnServer}};
  for (const auto& [name, server] : expected) {
    ASSERT_TRUE(h.outcomes[name].report) << name << ": " << h.outcomes[name].error;
    EXPECT_EQ(h.outcomes[name].report->server, server) << name;
  }
  // Only the node's own run reached the node.
  ASSERT_EQ(h.own.size(), 1u);
  EXPECT_EQ(h.own[0].second.server, kOwnServer);
}

TEST(DiscoveryScheduler, ANetworkChangeStartsAnOlderRunOverAheadOfTheQueue) {
  Harness h;
  h.scheduler.request(h.now, kS1, h.record("s1"));
  h.scheduler.request(h.now, kS2, h.record("s2"));
  // A change within kFreshRunAge of the start: the run already sees the new network.
  h.advance(DiscoveryScheduler::kFreshRunAge - 1ms);
  h.scheduler.on_network_changed(h.now);
  EXPECT_EQ(h.probes.size(), 1u);
  EXPECT_EQ(h.scheduler.running_server(), kS1);
  // One that comes later overtakes it: it starts over at once (same waiter), then the own run
  // (queued by the change) waits behind the queue as it was.
  h.advance(1s);
  const Time changed = h.now;
  h.scheduler.on_network_changed(h.now);
  ASSERT_EQ(h.probes.size(), 2u);
  EXPECT_EQ(h.probes[1].to, kS1);
  EXPECT_EQ(h.probes[1].at, changed);
  EXPECT_NE(h.probes[1].request.transaction_id, h.probes[0].request.transaction_id);
  // An answer to the overtaken probe counts for nothing.
  h.answer(0);
  EXPECT_TRUE(h.outcomes.empty());
  EXPECT_EQ(h.scheduler.running_server(), kS1);
  h.answer(1);
  ASSERT_TRUE(h.outcomes["s1"].report);
  h.advance(10ms);
  h.answer_last(kS2);
  ASSERT_TRUE(h.outcomes["s2"].report);
  h.advance(10ms);
  h.answer_last(kOwnServer);
  ASSERT_EQ(h.own.size(), 1u);
  EXPECT_EQ(h.probe_targets(), (std::vector<Endpoint>{kS1, kS1, kS2, kOwnServer}));
}

TEST(DiscoveryScheduler, ANetworkChangeOrAMovedPublicEndpointRerunsTheOwnRunAtOnce) {
  using Input = Time (DiscoveryScheduler::*)(Time);
  for (Input change :
       {&DiscoveryScheduler::on_network_changed, &DiscoveryScheduler::on_public_endpoint_moved}) {
    SCOPED_TRACE(change == &DiscoveryScheduler::on_network_changed ? "network changed"
                                                                    : "public endpoint moved");
    Harness h;
    h.scheduler.request(h.now, std::nullopt);
    h.advance(20ms);
    h.answer_last(kOwnServer);
    h.advance_to(kT0 + 3min);
    EXPECT_EQ(h.probes.size(), 1u);
    (h.scheduler.*change)(h.now);
    ASSERT_EQ(h.probes.size(), 2u);
    EXPECT_EQ(h.probes[1].to, kOwnServer);
    EXPECT_EQ(h.probes[1].at, kT0 + 3min);
    // Again during that run, older than kFreshRunAge: it starts over, it does not run twice.
    h.advance(2s);
    (h.scheduler.*change)(h.now);
    ASSERT_EQ(h.probes.size(), 3u);
    EXPECT_EQ(h.probes[2].at, kT0 + 3min + 2s);
    EXPECT_EQ(h.scheduler.queued(), 0u);
    h.answer(2);
    ASSERT_EQ(h.own.size(), 2u);
    EXPECT_EQ(h.own[1].first, kT0 + 3min + 2s);
    // The interval counts from the last start.
    EXPECT_EQ(h.scheduler.next_deadline(), kT0 + 3min + 2s + kInterval);
  }
}

TEST(DiscoveryScheduler, UdpFoundBlockedIsRerunOnceRegistered) {
  Harness h;
  h.scheduler.request(h.now, std::nullopt);
  h.advance(kTestTimeout);  // no answer: UDP blocked
  ASSERT_EQ(h.own.size(), 1u);
  EXPECT_TRUE(h.own[0].second.udp_blocked);
  const std::size_t probes_blocked = h.probes.size();  // test I and its retransmissions
  // Nothing more until the node registers (or the interval passes).
  EXPECT_EQ(h.scheduler.next_deadline(), kT0 + kInterval);
  h.advance_to(kT0 + 20s);
  EXPECT_EQ(h.probes.size(), probes_blocked);
  h.scheduler.on_registered(h.now, true);
  ASSERT_EQ(h.probes.size(), probes_blocked + 1);
  EXPECT_EQ(h.probes.back().at, kT0 + 20s);
  EXPECT_EQ(h.probes.back().to, kOwnServer);
  h.advance(30ms);
  h.answer_last(kOwnServer);
  ASSERT_EQ(h.own.size(), 2u);
  EXPECT_FALSE(h.own[1].second.udp_blocked);
  // Registering again after a report that found UDP open changes nothing.
  h.scheduler.on_registered(h.now, false);
  h.scheduler.on_registered(h.now, true);
  EXPECT_EQ(h.probes.size(), probes_blocked + 1);
}

TEST(DiscoveryScheduler, UdpFoundBlockedWhileRegisteredIsRetriedEveryThirtySeconds) {
  Harness h;
  h.scheduler.on_registered(h.now, true);
  h.scheduler.request(h.now, std::nullopt);
  h.advance(kTestTimeout);
  ASSERT_EQ(h.own.size(), 1u);
  ASSERT_TRUE(h.own[0].second.udp_blocked);
  const std::size_t probes_blocked = h.probes.size();
  EXPECT_EQ(h.scheduler.next_deadline(), kT0 + kTestTimeout + DiscoveryScheduler::kBlockedRetry);
  h.advance_to(kT0 + kTestTimeout + DiscoveryScheduler::kBlockedRetry - 1ns);
  EXPECT_EQ(h.probes.size(), probes_blocked);
  h.advance_to(kT0 + kTestTimeout + DiscoveryScheduler::kBlockedRetry);
  ASSERT_EQ(h.probes.size(), probes_blocked + 1);
  // Not registered any more: no retries, only the interval.
  h.scheduler.on_registered(h.now, false);
  h.advance(kTestTimeout);
  ASSERT_EQ(h.own.size(), 2u);
  EXPECT_EQ(h.scheduler.next_deadline(),
            kT0 + kTestTimeout + DiscoveryScheduler::kBlockedRetry + kInterval);
}

TEST(DiscoveryScheduler, WithoutAServerTheOwnRunIsRefusedAndTriedAnIntervalLater) {
  Harness h;
  h.own_server_ = std::nullopt;
  h.scheduler.request(h.now, std::nullopt, h.record("own"));
  EXPECT_EQ(h.outcomes["own"].error, DiscoveryScheduler::kNoServer);
  EXPECT_TRUE(h.probes.empty());
  EXPECT_EQ(h.scheduler.next_deadline(), kT0 + kInterval);  // not a busy loop
  h.own_server_ = kOwnServer;
  h.advance_to(kT0 + kInterval);
  EXPECT_EQ(h.probe_targets(), std::vector<Endpoint>{kOwnServer});
}

TEST(DiscoveryScheduler, StopRefusesEveryWaiterAndEverythingAfter) {
  Harness h;
  h.scheduler.request(h.now, kS1, h.record("s1"));
  h.scheduler.request(h.now, std::nullopt, h.record("own"));
  h.scheduler.stop();
  EXPECT_EQ(h.outcomes["s1"].error, DiscoveryScheduler::kStopping);
  EXPECT_EQ(h.outcomes["own"].error, DiscoveryScheduler::kStopping);
  EXPECT_EQ(h.scheduler.next_deadline(), Time::max());
  h.scheduler.request(h.now, kS2, h.record("s2"));
  EXPECT_EQ(h.outcomes["s2"].error, DiscoveryScheduler::kStopping);
  h.scheduler.on_network_changed(h.now);
  EXPECT_EQ(h.probe_targets(), std::vector<Endpoint>{kS1});
  EXPECT_TRUE(h.own.empty());
}

}  // namespace
}  // namespace p2p::nat
