// CoordinatorLink's carriers: UDP, and a TCP stream to the coordinator's main port (see the
// top of coordinator_link.hpp).
#include <algorithm>

#include "daemon/core/coordinator_link.hpp"

namespace p2p::core {

std::optional<Endpoint> CoordinatorLink::tcp_endpoint() const {
  if (!tcp_port_) return std::nullopt;
  return Endpoint{endpoint_.address, *tcp_port_};
}

void CoordinatorLink::transmit(Carrier c, std::span<const std::uint8_t> datagram) {
  if (c == Carrier::kUdp) {
    fx_.send_udp(endpoint_, datagram);
  } else if (stream_ == Stream::kOpen) {
    fx_.coordinator_stream_send(slot_, datagram);
  }
}

CoordinatorLink::Carrier CoordinatorLink::handshake_carrier(Time now) {
  if (!tcp_port_) return Carrier::kUdp;
  const bool on_tcp = carrier_ == Carrier::kTcp && registered();
  // UDP first; after kUdpAttemptsBeforeTcp unanswered, or while registered over TCP, TCP
  // with one UDP attempt every kUdpProbeInterval.
  if (!on_tcp && udp_unanswered_ < kUdpAttemptsBeforeTcp) return Carrier::kUdp;
  if (now >= next_udp_probe_) {
    next_udp_probe_ = now + kUdpProbeInterval;
    return Carrier::kUdp;
  }
  return Carrier::kTcp;
}

bool CoordinatorLink::handshake_timed_out(Time now, Carrier c) {
  if (c == Carrier::kTcp || !tcp_port_) return true;
  if (++udp_unanswered_ == kUdpAttemptsBeforeTcp) {
    next_udp_probe_ = now + kUdpProbeInterval;
    log_.warn("coordinator={}: no answer over UDP to {} handshakes; trying TCP {}",
              endpoint_.to_string(), udp_unanswered_, tcp_endpoint()->to_string());
  }
  // A probe beside a session on TCP that still answers: stay there, say nothing more.
  return !(carrier_ == Carrier::kTcp && registered());
}

bool CoordinatorLink::wants_stream() const {
  if (!tcp_port_ || state_ == State::kRefused) return false;
  return (carrier_ == Carrier::kTcp && slots_.current) || udp_unanswered_ >= kUdpAttemptsBeforeTcp;
}

void CoordinatorLink::open_stream(Time now) {
  stream_ = Stream::kOpening;
  stream_since_ = now;
  ++stream_opens_;
  schedule(now + kStreamOpenTimeout);
  log_.debug("coordinator={} opening TCP {}", endpoint_.to_string(), tcp_endpoint()->to_string());
  fx_.coordinator_stream_open(slot_, *tcp_endpoint());
}

void CoordinatorLink::close_stream() {
  if (stream_ == Stream::kClosed) return;
  stream_ = Stream::kClosed;
  fx_.coordinator_stream_close(slot_);
}

void CoordinatorLink::on_stream(Time now, bool open) {
  if (open) {
    if (stream_ != Stream::kOpening) return;  // not the stream we asked for (closed since)
    stream_ = Stream::kOpen;
    log_.info("coordinator={} TCP {} connected", endpoint_.to_string(),
              tcp_endpoint()->to_string());
    if (registered()) {
      if (carrier_ == Carrier::kTcp) send_register(now);  // the session goes on over it
      return;
    }
    if (slots_.pending) slots_.abandon_pending(table_);  // UDP had its chance: TCP now
    handshake(now);
    return;
  }
  if (stream_ == Stream::kClosed) return;
  stream_ = Stream::kClosed;
  log_.warn("coordinator={} TCP {} closed or unreachable: again in {}ms", endpoint_.to_string(),
            tcp_endpoint()->to_string(), stream_backoff_ / std::chrono::milliseconds(1));
  back_off(now);
  if (slots_.pending && pending_carrier_ == Carrier::kTcp) {
    slots_.abandon_pending(table_);
    next_attempt_ = stream_retry_;
  }
  carrier_tick(now);
}

void CoordinatorLink::back_off(Time now) {
  stream_retry_ = now + stream_backoff_;
  stream_backoff_ = std::min(2 * stream_backoff_, kStreamBackoffMax);
}

void CoordinatorLink::installed(Time now, Carrier was) {
  if (carrier_ == Carrier::kUdp) {
    udp_unanswered_ = 0;
    if (was == Carrier::kTcp)
      log_.info("coordinator={} answers over UDP again: leaving TCP", endpoint_.to_string());
    close_stream();
    stream_backoff_ = kStreamBackoffMin;
  } else if (was == Carrier::kUdp) {
    log_.info("coordinator={} session over TCP {} (UDP gets no answer)", endpoint_.to_string(),
              tcp_endpoint()->to_string());
    next_udp_probe_ = std::max(next_udp_probe_, now + kUdpProbeInterval);
  }
}

void CoordinatorLink::carrier_tick(Time now) {
  if (stream_ == Stream::kOpening && now >= stream_since_ + kStreamOpenTimeout) {
    log_.warn("coordinator={} TCP {}: no connection within {}s", endpoint_.to_string(),
              tcp_endpoint()->to_string(), kStreamOpenTimeout / std::chrono::seconds(1));
    close_stream();
    back_off(now);
  }
  if (stream_ == Stream::kOpening) schedule(stream_since_ + kStreamOpenTimeout);
  if (!wants_stream()) return;
  if (stream_ == Stream::kClosed) {
    if (now >= stream_retry_) {
      open_stream(now);
    } else {
      schedule(stream_retry_);
    }
  }
  // Registered over TCP: a UDP handshake now and then, to move back when UDP answers.
  if (carrier_ == Carrier::kTcp && registered() && !slots_.pending) {
    if (now >= next_udp_probe_)
      handshake(now);
    else
      schedule(next_udp_probe_);
  }
}

}  // namespace p2p::core
