#include "daemon/nat/discovery_scheduler.hpp"

#include <algorithm>

#include "net/log_value.hpp"

namespace p2p::nat {

DiscoveryScheduler::DiscoveryScheduler(SchedulerSettings settings, SchedulerEffects& effects,
                                       RandomFill random, OwnReport own_report,
                                       std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      effects_(effects),
      random_(std::move(random)),
      own_report_callback_(std::move(own_report)),
      log_(std::move(log)) {}

DiscoveryScheduler::~DiscoveryScheduler() = default;

Time DiscoveryScheduler::next_deadline() const {
  Time next = Time::max();
  if (stopped_) return next;
  if (running_) {
    next = running_->discovery->done() ? running_->completed : running_->discovery->next_deadline();
  }
  if (!own_pending()) {
    if (own_started_) next = std::min(next, *own_started_ + settings_.interval);
    if (blocked_retry_at_) next = std::min(next, *blocked_retry_at_);
  }
  return next;
}

std::optional<Endpoint> DiscoveryScheduler::running_server() const {
  if (!running_) return std::nullopt;
  return running_->target;
}

bool DiscoveryScheduler::own_pending() const {
  if (running_ && !running_->job.server) return true;
  return std::any_of(queued_.begin(), queued_.end(), [](const Job& j) { return !j.server; });
}

Time DiscoveryScheduler::request(Time now, std::optional<Endpoint> server, Done done) {
  if (stopped_) {
    if (done) done(fail(std::string(kStopping)));
    return next_deadline();
  }
  step(now);
  enqueue(now, std::move(server), std::move(done));
  return next_deadline();
}

void DiscoveryScheduler::enqueue(Time now, std::optional<Endpoint> server, Done done) {
  auto join = [&](Job& job) {
    if (done) job.waiters.push_back(std::move(done));
  };
  if (running_ && running_->job.server == server) return join(running_->job);
  auto queued = std::find_if(queued_.begin(), queued_.end(),
                             [&](const Job& job) { return job.server == server; });
  if (queued == queued_.end()) {
    if (server && queued_.size() >= kMaxQueued) {
      if (done) done(fail(std::string(kBusy)));
      return;
    }
    queued = queued_.insert(queued_.end(), Job{server, {}});
  }
  join(*queued);
  start_next(now);
}

Time DiscoveryScheduler::on_stun(Time now, const Endpoint& from,
                                 std::span<const std::uint8_t> datagram) {
  if (stopped_ || !running_ || running_->discovery->done()) return next_deadline();
  running_->discovery->on_response(now, from, datagram);
  if (running_->discovery->done()) running_->completed = now;
  return next_deadline();
}

Time DiscoveryScheduler::on_tick(Time now) {
  if (stopped_) return next_deadline();
  if (running_ && !running_->discovery->done()) running_->discovery->on_tick(now);
  step(now);
  return next_deadline();
}

Time DiscoveryScheduler::on_network_changed(Time now) {
  if (stopped_) return next_deadline();
  step(now);
  restart_stale_run(now);
  enqueue(now, std::nullopt, nullptr);
  return next_deadline();
}

Time DiscoveryScheduler::on_public_endpoint_moved(Time now) {
  // A new public endpoint may mean another NAT: the same as a network change.
  return on_network_changed(now);
}

Time DiscoveryScheduler::on_registered(Time now, bool registered) {
  if (stopped_) return next_deadline();
  if (registered && !registered_ && own_report_ && own_report_->udp_blocked) {
    blocked_retry_at_ = now;
  } else if (!registered) {
    blocked_retry_at_.reset();
  }
  registered_ = registered;
  step(now);
  return next_deadline();
}

void DiscoveryScheduler::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::vector<Done> waiters;
  if (running_) waiters = std::move(running_->job.waiters);
  for (auto& job : queued_) {
    for (auto& done : job.waiters) waiters.push_back(std::move(done));
  }
  running_.reset();
  queued_.clear();
  for (auto& done : waiters) done(fail(std::string(kStopping)));
}

void DiscoveryScheduler::step(Time now) {
  if (running_ && running_->discovery->done()) finish(now);
  if (own_pending()) return;
  const bool periodic = own_started_ && now >= *own_started_ + settings_.interval;
  const bool blocked = blocked_retry_at_ && now >= *blocked_retry_at_;
  if (periodic || blocked) enqueue(now, std::nullopt, nullptr);
}

void DiscoveryScheduler::restart_stale_run(Time now) {
  if (!running_ || now - running_->started < kFreshRunAge) return;
  log_->debug("network changed during discovery against {}: starting it over",
              running_->target.to_string());
  queued_.push_front(std::move(running_->job));
  running_.reset();
}

void DiscoveryScheduler::start_next(Time now) {
  while (!running_ && !queued_.empty()) {
    Job job = std::move(queued_.front());
    queued_.pop_front();
    const auto target = job.server ? job.server : effects_.own_server();
    if (!job.server) {
      own_started_ = now;  // also when skipped: the next try is an interval away
      blocked_retry_at_.reset();
    }
    if (!target) {
      for (auto& done : job.waiters) done(fail(std::string(kNoServer)));
      continue;
    }
    DiscoveryConfig config;
    config.server = *target;
    config.local_endpoints = effects_.local_endpoints();
    config.software = settings_.software;
    config.initial_rto = settings_.initial_rto;
    config.test_timeout = settings_.test_timeout;
    log_->debug("discovery started against server={}{}", target->to_string(),
                job.server ? " (netcheck)" : "");
    running_.emplace(Running{std::move(job),
                             std::make_unique<Discovery>(std::move(config), effects_, random_),
                             *target, now, {}});
    running_->discovery->start(now);
  }
}

void DiscoveryScheduler::finish(Time now) {
  const Report report = running_->discovery->report();
  Job job = std::move(running_->job);
  running_.reset();
  const auto summary = summarize(report);
  if (report.udp_blocked) {
    log_->warn(
        "{}nat no answer from server={} (server down, wrong address, or UDP to it "
        "blocked)",
        job.server ? "netcheck: " : "", report.server.to_string());
  } else {
    log_->info("{}nat type={} server={} public={} mapping={} filtering={} allocation={}",
               job.server ? "netcheck: " : "", log_value(wire::to_string(report.type)),
               report.server.to_string(),
               report.public_endpoint ? report.public_endpoint->to_string() : "none",
               log_value(to_string(report.mapping)), log_value(to_string(report.filtering)),
               wire::to_string(summary.allocation));
  }
  if (!job.server) {
    own_report_ = report;
    if (report.udp_blocked && registered_) blocked_retry_at_ = now + kBlockedRetry;
    if (own_report_callback_) own_report_callback_(now, report);
  }
  for (auto& done : job.waiters) done(report);
  start_next(now);
}

}  // namespace p2p::nat
