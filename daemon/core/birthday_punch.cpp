#include "daemon/core/birthday_punch.hpp"

#include <algorithm>

namespace p2p::core {
namespace {

constexpr int kLowestPort = 1024;  // what NATs allocate from (Linux: 1024..65535)

}  // namespace

bool BirthdayPunch::can_start(Time now) const {
  return settings_.enabled && settings_.max_probes > 0 && settings_.probes_per_second > 0 &&
         !running_ && now >= not_before_;
}

bool BirthdayPunch::owns(std::uint32_t socket) const {
  return running_ && socket != 0 &&
         std::find(sockets_.begin(), sockets_.end(), socket) != sockets_.end();
}

void BirthdayPunch::start(Time now, Ipv4 peer, Role role, const Endpoint& target,
                          BirthdayEffects& fx) {
  if (!can_start(now)) return;
  running_ = true;
  peer_ = peer;
  role_ = role;
  target_ = target;
  started_ = now;
  next_ = now;
  end_ = Time::max();
  sent_ = 0;
  sockets_exhausted_ = false;
  sockets_.clear();
  probed_.reset();
  ++counters_.attempts;
  tick(now, fx);
}

void BirthdayPunch::tick(Time now, BirthdayEffects& fx) {
  if (!running_) return;
  const Duration interval = std::chrono::duration_cast<Duration>(std::chrono::seconds(1)) /
                            std::max(1, settings_.probes_per_second);
  for (int burst = 0; burst < kBurst && sent_ < settings_.max_probes && next_ <= now; ++burst) {
    send_one(now, fx);
    if (!running_) return;  // no socket could be opened
    next_ += interval;
  }
  // A tick far behind does not leave a debt to send in one go later.
  if (next_ + interval * kBurst < now) next_ = now;
  if (sent_ >= settings_.max_probes && end_ == Time::max()) end_ = now + kLinger;
  if (now >= end_) fail(now, fx);
}

void BirthdayPunch::send_one(Time now, BirthdayEffects& fx) {
  if (role_ == Role::kPorts) {
    fx.send_probe(0, Endpoint{target_.address, fresh_port(fx)});
  } else {
    // The first `sockets` probes each open a socket (a fresh mapping); later ones go round them.
    std::uint32_t socket = 0;
    if (!sockets_exhausted_ && static_cast<int>(sockets_.size()) < settings_.sockets) {
      socket = fx.open_socket();
      if (socket != 0) {
        sockets_.push_back(socket);
        ++counters_.sockets_opened;
      } else {
        sockets_exhausted_ = true;
      }
    }
    if (socket == 0) {
      if (sockets_.empty()) return fail(now, fx);
      socket = sockets_[static_cast<std::size_t>(sent_) % sockets_.size()];
    }
    fx.send_probe(socket, target_);
  }
  ++sent_;
  ++counters_.probes;
}

std::uint16_t BirthdayPunch::fresh_port(BirthdayEffects& fx) {
  constexpr int span = 65536 - kLowestPort;
  int port = kLowestPort + static_cast<int>(fx.random() % span);
  // At most max_probes (config: <= 8192) of 64512 ports are taken: walk to the next free one.
  for (int i = 0; i < span && probed_.test(static_cast<std::size_t>(port)); ++i)
    port = port + 1 > 65535 ? kLowestPort : port + 1;
  probed_.set(static_cast<std::size_t>(port));
  return static_cast<std::uint16_t>(port);
}

std::optional<std::uint32_t> BirthdayPunch::hit(Time now, Ipv4 peer, std::uint32_t socket,
                                                BirthdayEffects& fx) {
  if (!running_ || peer != peer_) return std::nullopt;
  ++counters_.successes;
  backoff_ = kFirstBackoff;
  not_before_ = now + kLinger;
  const bool ours = owns(socket);
  finish(fx, ours ? std::optional<std::uint32_t>(socket) : std::nullopt);
  return ours ? std::optional<std::uint32_t>(socket) : std::nullopt;
}

void BirthdayPunch::cancel(Ipv4 peer, BirthdayEffects& fx) {
  if (!running_ || peer != peer_) return;
  finish(fx, std::nullopt);
}

void BirthdayPunch::finish(BirthdayEffects& fx, std::optional<std::uint32_t> keep) {
  for (auto s : sockets_) {
    if (s != keep) fx.close_socket(s);
  }
  sockets_.clear();
  running_ = false;
}

void BirthdayPunch::fail(Time now, BirthdayEffects& fx) {
  finish(fx, std::nullopt);
  not_before_ = now + backoff_;
  backoff_ = std::min<Duration>(backoff_ * 2, kMaxBackoff);
}

}  // namespace p2p::core
