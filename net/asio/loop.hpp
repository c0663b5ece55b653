// Glue between a core and the io_context: the one timer that follows a core's next deadline,
// and a readability watch on a file descriptor someone else owns (the TUN device).
//
// Both are for a single-threaded io_context. Their handlers capture `this`: destroy them only
// once the io_context has stopped running or after cancelling them (the destructors cancel).
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdint>
#include <functional>

#include "net/time.hpp"

namespace p2p::io {

// A steady_timer armed to a deadline that calls `on_expiry` when it passes. arm() with the
// deadline already armed does nothing (no system call), so a shell can call it after every
// batch; Time::max() disarms. A wait superseded by a newer arm() never calls `on_expiry`.
class DeadlineTimer {
 public:
  DeadlineTimer(boost::asio::io_context& io, std::function<void()> on_expiry)
      : timer_(io), on_expiry_(std::move(on_expiry)) {}
  ~DeadlineTimer() { timer_.cancel(); }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  void arm(Time deadline) {
    if (deadline == armed_) return;
    armed_ = deadline;
    ++generation_;
    if (deadline == Time::max()) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(deadline);
    timer_.async_wait([this, gen = generation_](const boost::system::error_code& ec) {
      if (ec || gen != generation_) return;
      armed_ = Time::max();
      on_expiry_();
    });
  }
  Time armed() const { return armed_; }

 private:
  boost::asio::steady_timer timer_;
  std::function<void()> on_expiry_;
  Time armed_ = Time::max();
  std::uint64_t generation_ = 0;
};

// Waits for readability of an fd it does not own: the descriptor is released, never closed,
// when the watch is destroyed (an Asio stream_descriptor would otherwise close the TUN fd).
class FdWatch {
 public:
  FdWatch(boost::asio::io_context& io, int fd) : descriptor_(io, fd) {}
  ~FdWatch() { release(); }
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  template <class Handler>
  void async_wait_readable(Handler&& handler) {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           std::forward<Handler>(handler));
  }
  // Cancels the pending wait and lets go of the fd; idempotent.
  void release() {
    if (descriptor_.is_open()) (void)descriptor_.release();
  }

 private:
  boost::asio::posix::stream_descriptor descriptor_;
};

// Runs `io` with `shell` started until SIGINT or SIGTERM, then stops the shell (which says
// goodbye, closes its TUN and control socket) and returns. SIGHUP calls shell.reload() (which
// logs what it applied or why it refused) and goes on. Shared by both binaries' main().
template <class Shell>
void run_until_signalled(boost::asio::io_context& io, Shell& shell, spdlog::logger& log) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log.info("signal {}: shutting down", signo);
    shell.stop();
    io.stop();
  });
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        log.info("signal SIGHUP: reloading the configuration");
        (void)shell.reload();
        hangup.async_wait(on_hangup);
      };
  hangup.async_wait(on_hangup);
  shell.start();
  io.run();
}

}  // namespace p2p::io
