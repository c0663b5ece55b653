#include "daemon/core/tcp_punch.hpp"

#include <algorithm>

namespace p2p::core {

TcpPunch::TcpPunch(std::uint32_t id, Ipv4 peer, const wire::PunchToken& token,
                   TcpPunchTiming timing)
    : id_(id), peer_(peer), token_(token), timing_(timing) {
  for (std::uint8_t b : token_) jitter_state_ = (jitter_state_ << 8 | jitter_state_ >> 56) ^ b;
  jitter_state_ ^= std::uint64_t{peer_.value} * 0x9e3779b97f4a7c15ULL;
}

Duration TcpPunch::next_retry_interval() {
  // splitmix64: cheap, and only has to differ between the two sides.
  std::uint64_t z = (jitter_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const auto span = static_cast<std::uint64_t>(std::max<Duration::rep>(timing_.retry.count(), 1));
  return timing_.retry / 2 + Duration(static_cast<Duration::rep>(z % span));
}

void TcpPunch::start(Time now, TcpPunchEffects& fx, const Endpoint& assist) {
  if (state_ != State::kIdle) return;
  state_ = State::kWaitingForGo;
  started_ = now;
  give_up_ = now + timing_.go_timeout;
  deadline_ = give_up_;
  fx.punch_open(id_, assist, wire::encode_assist_hello(token_));
}

void TcpPunch::on_go(Time now, TcpPunchEffects& fx, const Endpoint& peer_endpoint) {
  if (state_ != State::kWaitingForGo) return;
  state_ = State::kConnecting;
  peer_endpoint_ = peer_endpoint;
  give_up_ = now + timing_.punch_timeout;
  connect(now, fx);
}

void TcpPunch::connect(Time now, TcpPunchEffects& fx) {
  ++attempts_;
  fx.punch_connect(id_, peer_endpoint_);
  next_retry_ = now + next_retry_interval();
  deadline_ = std::min(next_retry_, give_up_);
}

bool TcpPunch::on_established(Time now, TcpPunchEffects& fx, bool inbound) {
  // An accepted socket may complete before the Go when the peer's SYN outran it.
  if (state_ != State::kConnecting && state_ != State::kWaitingForGo) return false;
  state_ = State::kEstablished;
  inbound_ = inbound;
  done_ = now;
  deadline_ = Time::max();
  fx.punch_close(id_);
  return true;
}

void TcpPunch::on_refused(TcpPunchEffects& fx, std::string reason) {
  if (state_ == State::kWaitingForGo || state_ == State::kConnecting) fail(fx, std::move(reason));
}

void TcpPunch::on_tick(Time now, TcpPunchEffects& fx) {
  if (state_ != State::kWaitingForGo && state_ != State::kConnecting) return;
  if (now >= give_up_) {
    fail(fx, state_ == State::kWaitingForGo ? "no go from the coordinator"
                                            : "no TCP connection through the NATs");
    return;
  }
  if (state_ == State::kConnecting && now >= next_retry_) connect(now, fx);
}

void TcpPunch::fail(TcpPunchEffects& fx, std::string reason) {
  state_ = State::kFailed;
  failure_ = std::move(reason);
  deadline_ = Time::max();
  fx.punch_close(id_);
}

}  // namespace p2p::core
