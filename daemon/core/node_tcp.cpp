// Node, TCP paths (issue 10): when to punch one, the punch through the coordinator
// (core::TcpPunch, tcp_punch.hpp), the peer handshake over the punched stream, and the stream
// as a path (PathSet, Transport::kTcp).
//
//   when     policy tcp: whenever the peer has a session and no direct path (the UDP punch is
//            skipped); policy auto: once a UDP punching round ended without a direct path;
//            never with policy udp, a forced relay, punching disabled, no coordinator assist
//            port, or a world without TCP (NodeEffects::tcp_punch()). With policy auto only the
//            side with the lower virtual IP asks, so that both do not punch at once; an offer
//            that crosses our own request is taken by the side with the higher address.
//   punch    TcpPunchRequest and the assist hello at once; the coordinator offers it to the
//            peer and sends both sides the Go (coordinator/core/tcp_punch_broker.hpp).
//   stream   the first socket to complete is handed over (on_punch_established); the requester
//            starts the IK handshake on it. Until a session is installed from a handshake
//            message that came on the stream, only handshake messages are taken from it (the
//            rest is a counted drop), and without one within kStreamAuthTimeout it is closed.
//   path     PathSet::add_stream: probed over the stream like any path. UDP is still retried
//            in the background (PathSet's backoff) and a confirmed UDP path takes over; the
//            session keys are the same whatever carries them, so a stream inside the tunnel
//            does not notice. The stream stays open beside it as the fallback.
//   failure  a failed punch, a closed stream or a TCP path whose probes go unanswered: the
//            relay (or a UDP path), and the next punch after a doubling backoff.
#include <algorithm>

#include "daemon/core/node.hpp"
#include "net/log_value.hpp"
#include "net/packet.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

constexpr Duration kFirstTcpBackoff = 5s;
constexpr Duration kMaxTcpBackoff = 300s;
constexpr Duration kStreamAuthTimeout = 5s;

long long millis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

TransportPolicy Node::transport_for(const Peer& p) const {
  for (const auto& pol : settings_.policies) {
    if (auto* v = std::get_if<Ipv4>(&pol.match); v && *v == p.vip) return pol.transport;
    if (auto* n = std::get_if<std::string>(&pol.match); n && p.cert && *n == p.cert->name)
      return pol.transport;
  }
  return TransportPolicy::kAuto;
}

Peer* Node::tcp_owner(std::uint32_t handle) {
  auto it = tcp_owners_.find(handle);
  return it == tcp_owners_.end() ? nullptr : peers_.find(it->second);
}

void Node::tcp_maybe_punch(Time now, Peer& p) {
  if (!settings_.tcp_assist || !fx_.tcp_punch() || !registered() || !p.cert) return;
  if (p.tcp.punch || p.tcp.stream != 0 || now < p.tcp.next_punch) return;
  if (!p.sessions.current || p.state == Peer::State::kRefused) return;
  if (p.paths.force() == Force::kRelay || !settings_.punch_enabled || p.paths.active()) return;
  const TransportPolicy policy = transport_for(p);
  if (policy == TransportPolicy::kUdp) return;
  // With UDP blocked on either side the UDP punch round cannot succeed: do not wait for it.
  if (policy == TransportPolicy::kAuto &&
      ((p.paths.punching() && !udp_blocked_with(p)) || identity_.certificate.vip.address > p.vip))
    return;
  wire::PunchToken token;
  fx_.fill_random(token);
  if (++tcp_requests_ == 0) ++tcp_requests_;
  if (!coord_.send(now, wire::TcpPunchRequest{tcp_requests_, p.vip, token})) return;
  tcp_start(now, p, true, tcp_requests_, token);
}

void Node::tcp_start(Time now, Peer& p, bool requester, std::uint32_t wire_id,
                     const wire::PunchToken& token) {
  if (++tcp_handles_ == 0) ++tcp_handles_;
  p.tcp.punch = std::make_unique<TcpPunch>(tcp_handles_, p.vip, token, TcpPunchTiming{});
  p.tcp.wire_id = wire_id;
  p.tcp.requester = requester;
  p.tcp.punch_started = now;
  tcp_owners_[tcp_handles_] = p.vip;
  log_->info("peer={} punching a tcp path ({})", p.name(), requester ? "asked" : "offered");
  const Endpoint assist{coord_.endpoint().address, *settings_.tcp_assist};
  p.tcp.punch->start(now, *fx_.tcp_punch(), assist);
  schedule(p.tcp.punch->deadline());
}

void Node::on_tcp_punch(Time now, const wire::ControlMessage& m) {
  TcpPunchEffects* fx = fx_.tcp_punch();
  if (auto* offer = std::get_if<wire::TcpPunchOffer>(&m)) {
    if (!fx || !settings_.tcp_assist || offer->from == identity_.certificate.vip.address) return;
    Peer* p = peer_for(now, offer->from);
    if (!p || p->state == Peer::State::kRefused || p->paths.force() == Force::kRelay ||
        transport_for(*p) == TransportPolicy::kUdp) {
      log_->debug("vip={} offered a tcp punch: declined", offer->from.to_string());
      return;
    }
    // Crossing requests: the lower address's stands.
    if (p->tcp.punch && p->tcp.requester && identity_.certificate.vip.address < p->vip) return;
    // The peer asks, so it has no TCP path to us: whatever we hold is stale.
    if (p->tcp.stream != 0) p->paths.remove_stream(now, p->tcp.stream);
    tcp_close(*p);
    tcp_start(now, *p, false, offer->punch_id, offer->token);
  } else if (auto* go = std::get_if<wire::TcpPunchGo>(&m)) {
    Peer* p = peers_.find(go->peer);
    if (!fx || !p || !p->tcp.punch || p->tcp.wire_id != go->punch_id) return;
    p->tcp.punch->on_go(now, *fx, go->peer_endpoint);
    schedule(p->tcp.punch->deadline());
  } else if (auto* failed = std::get_if<wire::TcpPunchFailed>(&m)) {
    std::vector<Ipv4> refused;
    peers_.for_each([&](Peer& p) {
      if (p.tcp.punch && p.tcp.wire_id == failed->punch_id) refused.push_back(p.vip);
    });
    for (Ipv4 vip : refused) {
      Peer& p = *peers_.find(vip);
      if (fx) p.tcp.punch->on_refused(*fx, failed->reason);
      log_->info("peer={} tcp punch refused by the coordinator: {}", p.name(),
                 log_value(failed->reason));
      tcp_drop(now, p, "tcp punch refused");
    }
  }
}

bool Node::on_punch_established(Time now, std::uint32_t punch, bool inbound,
                                const Endpoint& remote) {
  Peer* p = tcp_owner(punch);
  TcpPunchEffects* fx = fx_.tcp_punch();
  if (!fx || !p || !p->tcp.punch || p->tcp.punch->id() != punch) return false;
  if (!p->tcp.punch->on_established(now, *fx, inbound)) return false;
  log_->info("peer={} tcp punched remote={} {} after {}ms, {} connects, {} resets", p->name(),
             remote.to_string(), inbound ? "accepted" : "connected",
             millis(p->tcp.punch->time_to_path()), p->tcp.punch->attempts(),
             p->tcp.punch->resets());
  p->tcp.punch.reset();
  p->tcp.stream = punch;
  p->tcp.remote = remote;
  p->tcp.stream_since = now;
  p->tcp.authenticated = false;
  // A punched socket proves nothing about who is behind it: the peer handshake first.
  if (p->tcp.requester) start_handshake(now, *p);
  schedule(now + kStreamAuthTimeout);
  return true;
}

void Node::on_punch_failed(Time /*now*/, std::uint32_t punch) {
  Peer* p = tcp_owner(punch);
  if (p && p->tcp.punch && p->tcp.punch->id() == punch) p->tcp.punch->on_connect_failed();
}

void Node::on_stream(Time now, std::uint32_t stream, PacketView d) noexcept {
  try {
    Peer* p = tcp_owner(stream);
    if (!p || p->tcp.stream != stream || d.size() == 0) return;
    const auto kind = wire::classify(d.span());
    const bool handshake = kind == wire::DatagramKind::kHandshakeInit ||
                           kind == wire::DatagramKind::kHandshakeResp ||
                           kind == wire::DatagramKind::kCookieReply;
    if (kind == wire::DatagramKind::kStun || (!p->tcp.authenticated && !handshake)) {
      ++drops_.malformed;
      return;
    }
    in_stream_ = stream;
    on_datagram(now, p->tcp.remote, false, d);
    in_stream_ = 0;
    schedule(coord_.deadline());
  } catch (const std::exception& e) {
    in_stream_ = 0;
    ++drops_.internal_error;
    if (auto n = init_log_.internal.hit(now))
      log_->error("dropped {} datagrams on an internal error in the last 10s: {}", *n, e.what());
  } catch (...) {
    in_stream_ = 0;
    ++drops_.internal_error;
  }
}

void Node::on_stream_closed(Time now, std::uint32_t stream) {
  Peer* p = tcp_owner(stream);
  if (!p || p->tcp.stream != stream) {
    tcp_owners_.erase(stream);
    return;
  }
  log_->info("peer={} tcp stream closed", p->name());
  tcp_drop(now, *p, "tcp stream closed");
}

void Node::tcp_on_session(Time now, Peer& p) {
  if (in_stream_ == 0 || in_stream_ != p.tcp.stream || p.tcp.authenticated) return;
  p.tcp.authenticated = true;
  p.tcp.time_to_path = now - p.tcp.punch_started;
  p.tcp.backoff = {};
  p.paths.add_stream(now, p.tcp.stream, p.tcp.remote);
  log_->info("peer={} tcp path remote={} ready {}ms after the punch began", p.name(),
             p.tcp.remote.to_string(), millis(*p.tcp.time_to_path));
  schedule(p.paths.deadline());
}

void Node::tcp_tick(Time now, Peer& p) {
  if (auto& punch = p.tcp.punch) {
    if (TcpPunchEffects* fx = fx_.tcp_punch()) punch->on_tick(now, *fx);
    if (punch->state() == TcpPunch::State::kFailed) {
      log_->info("peer={} tcp punch failed: {}", p.name(), log_value(punch->failure()));
      tcp_drop(now, p, "tcp punch failed");
    } else {
      schedule(punch->deadline());
    }
  }
  if (p.tcp.stream != 0) {
    const Path* path = p.paths.tcp();
    if (!p.tcp.authenticated && now - p.tcp.stream_since >= kStreamAuthTimeout) {
      tcp_drop(now, p, "no handshake on the tcp stream");
    } else if (!p.tcp.authenticated) {
      schedule(p.tcp.stream_since + kStreamAuthTimeout);
    } else if (!path || !path->confirmed) {
      // Its probes went unanswered, or the peer's paths were reset (session lapsed, Goodbye).
      tcp_drop(now, p, path ? "tcp path lost" : "tcp path reset");
    }
  }
  tcp_maybe_punch(now, p);
  if (!p.tcp.punch && p.tcp.stream == 0 && now < p.tcp.next_punch && p.sessions.current)
    schedule(p.tcp.next_punch);
}

void Node::tcp_close(Peer& p) {
  if (p.tcp.punch) {
    if (TcpPunchEffects* fx = fx_.tcp_punch()) fx->punch_close(p.tcp.punch->id());
    tcp_owners_.erase(p.tcp.punch->id());
    p.tcp.punch.reset();
  }
  if (p.tcp.stream != 0) {
    fx_.close_stream(p.tcp.stream);
    tcp_owners_.erase(p.tcp.stream);
    p.tcp.stream = 0;
  }
  p.tcp.authenticated = false;
}

void Node::tcp_drop(Time now, Peer& p, const char* why) {
  if (p.tcp.stream != 0) p.paths.remove_stream(now, p.tcp.stream);
  tcp_close(p);
  p.tcp.backoff = p.tcp.backoff == Duration{}
                      ? kFirstTcpBackoff
                      : std::min<Duration>(p.tcp.backoff * 2, kMaxTcpBackoff);
  p.tcp.next_punch = now + p.tcp.backoff;
  log_->info("peer={} {}; next tcp punch in {}s", p.name(), why,
             std::chrono::duration_cast<std::chrono::seconds>(p.tcp.backoff).count());
  schedule(p.tcp.next_punch);
  schedule(p.paths.deadline());
}

void Node::reply_to(const Endpoint& to, std::span<const std::uint8_t> datagram) {
  if (in_stream_ != 0) {
    fx_.send_stream(in_stream_, datagram);
  } else {
    send_udp_via(rx_socket_, to, datagram);
  }
}

void Node::send_control_on_stream(Time now, Peer& p, const wire::ControlMessage& m,
                                  std::uint32_t stream) {
  if (!p.sessions.current) return;
  PacketView v = wire::encode_control_packet(scratch_, m);
  if (!p.sessions.current->seal(now, v)) return;
  fx_.send_stream(stream, v.span());
}

}  // namespace p2p::core
