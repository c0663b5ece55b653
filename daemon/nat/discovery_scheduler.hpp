// DiscoveryScheduler: when NAT discovery (nat::Discovery) runs, against which server and for
// whom. I/O-free: it is handed the current time on every input, sends probes through
// SchedulerEffects (the caller's ONE socket, shared with the node) and returns the deadline at
// which it wants on_tick(). No clock, no socket, no thread.
//
// Runs. The node's own discovery asks own_server() (mesh.yaml's discovery.server, else the
// coordinator in use); its report goes to the OwnReport callback (p2pvpnd hands its summary
// to core::Node::set_nat()). A netcheck names another server and runs for its callers only;
// its report, or why there is none, goes to each waiting request's Done callback. One run at a
// time; runs asked for meanwhile wait in a short queue:
//   request(now, server, done)  joins the running or queued run for the same server (nullopt:
//       the node's own), or queues one. The own run is queued at most once and never refused;
//       a run for another server is refused (kBusy) while kMaxQueued runs wait.
// The own run is also started, by the input named, when:
//   - on_tick(): `interval` has passed since the last own run started;
//   - on_network_changed(), on_public_endpoint_moved(): at once. A run under way that started
//     kFreshRunAge or more before measures a network that is gone (its mappings may straddle
//     the change): it starts over, its waiters still waiting, ahead of the queue. A younger one
//     already sees the new network (one change often shows up twice: as news of the network
//     and as a new public endpoint at the re-registration it causes);
//   - on_registered(): the last own run found UDP blocked (the coordinator was down or
//     unreachable when it ran) and the node is now registered; on_tick(): every
//     kBlockedRetry after an own run that found UDP blocked while the node was registered.
//
// Callbacks. on_stun() only feeds the run (it is called from inside core::Node::on_udp(), where
// the node must not be re-entered): a run it completes is finished by the next other input,
// and next_deadline() is meanwhile the instant it completed. Every other input first finishes
// a completed run (OwnReport, then the Done callbacks, then the next queued run starts), and
// request() and stop() may refuse through Done at once. Callbacks must not call back into the
// scheduler.
//
// Threading: none; one scheduler is driven from one thread.
#pragma once

#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/nat/nat_discovery.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::nat {

class SchedulerEffects : public Effects {
 public:
  // Effects::send(): probes, from the node's one socket.
  // The server of the node's own runs; nullopt: there is none (own runs are then skipped).
  virtual std::optional<Endpoint> own_server() = 0;
  // The socket's local endpoints as they are now (DiscoveryConfig::local_endpoints).
  virtual std::vector<Endpoint> local_endpoints() = 0;
};

struct SchedulerSettings {
  Duration interval = std::chrono::minutes(10);  // own runs, from one start to the next
  std::string software;                          // SOFTWARE in probes; empty = none
  Duration initial_rto = std::chrono::milliseconds(500);
  Duration test_timeout = std::chrono::milliseconds(3500);
};

class DiscoveryScheduler {
 public:
  static constexpr std::size_t kMaxQueued = 4;  // waiting runs (the own one included)
  static constexpr Duration kFreshRunAge = std::chrono::milliseconds(500);
  static constexpr Duration kBlockedRetry = std::chrono::seconds(30);
  // Refusals, as Done's error.
  static constexpr const char* kBusy =
      "busy: too many NAT discovery runs waiting, try again shortly";
  static constexpr const char* kNoServer = "no server to run NAT discovery against";
  static constexpr const char* kStopping = "daemon stopping";

  using Done = std::function<void(const Expected<Report, std::string>&)>;
  using OwnReport = std::function<void(Time now, const Report& report)>;

  // effects must outlive the scheduler. Nothing runs before the first request().
  DiscoveryScheduler(SchedulerSettings settings, SchedulerEffects& effects, RandomFill random,
                     OwnReport own_report, std::shared_ptr<spdlog::logger> log);
  ~DiscoveryScheduler();
  DiscoveryScheduler(const DiscoveryScheduler&) = delete;
  DiscoveryScheduler& operator=(const DiscoveryScheduler&) = delete;

  // A run against `server` (nullopt: the node's own); `done` (may be empty) gets its result.
  Time request(Time now, std::optional<Endpoint> server, Done done = nullptr);
  // Any STUN datagram received on the socket.
  Time on_stun(Time now, const Endpoint& from, std::span<const std::uint8_t> datagram);
  Time on_tick(Time now);
  // The host's network may have changed (interfaces, addresses, default route).
  Time on_network_changed(Time now);
  // The coordinator sees the node at another public endpoint.
  Time on_public_endpoint_moved(Time now);
  // The node's registration with the coordinator, whenever it changes.
  Time on_registered(Time now, bool registered);
  // Refuses every waiting request (kStopping) and drops every run; later inputs do nothing
  // (requests are refused with kStopping). Idempotent.
  void stop();

  Time next_deadline() const;
  // The last report of the node's own discovery.
  const std::optional<Report>& own_report() const { return own_report_; }
  // The server of the run under way (nullopt: none), and how many runs wait.
  std::optional<Endpoint> running_server() const;
  std::size_t queued() const { return queued_.size(); }

 private:
  struct Job {
    std::optional<Endpoint> server;  // nullopt: the node's own run
    std::vector<Done> waiters;
  };
  struct Running {
    Job job;
    std::unique_ptr<Discovery> discovery;
    Endpoint target;
    Time started{};
    Time completed{};  // done(), not yet finished: when on_stun() completed it
  };

  // Finishes a completed run and starts the own run when it is due.
  void step(Time now);
  void finish(Time now);
  void start_next(Time now);
  void restart_stale_run(Time now);
  bool own_pending() const;
  void enqueue(Time now, std::optional<Endpoint> server, Done done);

  SchedulerSettings settings_;
  SchedulerEffects& effects_;
  RandomFill random_;
  OwnReport own_report_callback_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<Running> running_;
  std::deque<Job> queued_;
  std::optional<Report> own_report_;
  std::optional<Time> own_started_;      // the last own run's start (or skip: no server)
  std::optional<Time> blocked_retry_at_;  // an own run is due then (UDP found blocked)
  bool registered_ = false;
  bool stopped_ = false;
};

}  // namespace p2p::nat
