// Node, part three: the IK handshakes with peers as the Node drives them: starting one,
// screening and answering initiations (crypto::HandshakeGuard through PeerHandshakes: padding,
// mac1, per-source buckets, cookies), cookie replies, and responses. Packet paths: node.cpp.
#include <vector>

#include "daemon/core/node.hpp"
#include "net/packet.hpp"

namespace p2p::core {

void Node::start_handshake(Time now, Peer& p) {
  std::vector<std::uint8_t> out;
  auto d = handshakes_.create_initiation(now, p, out);
  if (!d) {
    if (p.cert) ++drops_.handshake_failed;
    return;
  }
  ++counters_.handshakes_started;
  if (p.state != Peer::State::kConnected) p.state = Peer::State::kHandshaking;
  schedule(now + crypto::kRekeyTimeout);
  log_->debug("peer={} handshake initiation", p.name());
  send_initiation(now, p, *d);
}

void Node::send_initiation(Time now, Peer& p, PacketView d) {
  const Path* path = p.paths.active();
  if (p.tcp.stream != 0 && !p.tcp.authenticated && p.tcp.requester) {
    fx_.send_stream(p.tcp.stream, d.span());  // the handshake that authenticates the stream
  } else if (path && path->transport == Transport::kTcp) {
    fx_.send_stream(path->stream, d.span());
  } else if (path) {
    send_udp_via(path->socket, path->endpoint, d.span());
  } else if (relay_allowed(p)) {
    coord_.send_relayed(now, p.vip, d);
  } else {
    // No relay: try every candidate directly.
    if (p.observed) fx_.send_udp(*p.observed, d.span());
    for (const auto& e : p.local_endpoints) fx_.send_udp(e, d.span());
  }
}

void Node::on_handshake_init(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto init = wire::parse_handshake_init(d.span());
  if (!init || init->pattern != wire::Pattern::kIK) {
    ++drops_.malformed;
    return;
  }
  using Verdict = crypto::HandshakeGuard::Verdict;
  switch (handshakes_.screen(now, from, via_relay, d.span(), *init, guard_reply_)) {
    case Verdict::kAccept: break;
    case Verdict::kUnpadded:
      return crypto::count_dropped_init(*log_, now, drops_.handshake_unpadded, init_log_.unpadded,
                                        "unpadded");
    case Verdict::kBadMac1:
      return crypto::count_dropped_init(*log_, now, drops_.handshake_bad_mac1, init_log_.bad_mac1,
                                        "bad mac1");
    case Verdict::kRateLimited:
      return crypto::count_dropped_init(*log_, now, drops_.handshake_rate_limited,
                                        init_log_.rate_limited, "rate limited");
    case Verdict::kCookie:
      ++drops_.cookies_sent;
      reply_to(from, guard_reply_);
      return;
  }
  auto in = handshakes_.consume_initiation(*init);
  if (!in)
    return crypto::count_dropped_init(*log_, now, drops_.handshake_failed, init_log_.failed,
                                      in.error());
  const auto& cert = in->certificate();
  if (cert.vip.address == identity_.certificate.vip.address) {
    ++drops_.handshake_failed;
    return;
  }
  Peer* pp = peer_for(now, cert.vip.address);
  if (!pp) return;
  Peer& p = *pp;
  std::vector<std::uint8_t> out;
  auto resp = handshakes_.create_response(now, p, *in, out);
  if (!resp) {
    if (resp.error() == PeerHandshakes::Refusal::kFailed)
      return crypto::count_dropped_init(*log_, now, drops_.handshake_failed, init_log_.failed,
                                        "handshake failed");
    return crypto::count_dropped_init(*log_, now, drops_.handshake_replay, init_log_.replay,
                                      resp.error() == PeerHandshakes::Refusal::kReplay
                                          ? "replayed"
                                          : "certificate older than the peer's current one");
  }
  if (!p.cert || p.cert->public_key != cert.public_key) set_certificate(p, cert);
  // Never answer an unproven source with more than it sent (the initiator pads for this).
  if (!via_relay && resp->size() > d.size())
    return crypto::count_dropped_init(*log_, now, drops_.handshake_unpadded, init_log_.unpadded,
                                      "answer too large");
  on_session(now, p);
  if (via_relay) {
    coord_.send_relayed(now, p.vip, *resp);
  } else {
    reply_to(from, resp->span());
  }
  log_->info("peer={} vip={} session established (responder) via={}", p.name(), p.vip.to_string(),
             via_relay ? "relay" : from.to_string());
  // Without an introduction we do not know the peer's candidates yet: ask.
  if (!p.observed && registered()) send_lookup(now, p);
}

void Node::on_cookie_reply(Time now, bool via_relay, PacketView d) {
  auto r = wire::parse_cookie_reply(d.span());
  if (!r) {
    ++drops_.malformed;
    return;
  }
  bool coordinator = false;
  Peer* p = owner_of(r->receiver_index, coordinator);
  if (coordinator && !via_relay) coord_.on_cookie_reply(now, *r);
  if (!p) return;
  std::vector<std::uint8_t> out;
  if (auto again = handshakes_.consume_cookie(now, *p, *r, out)) send_initiation(now, *p, *again);
}

Peer* Node::owner_of(std::uint32_t index, bool& coordinator) {
  coordinator = false;
  auto owner = sessions_.find(index);
  if (!owner) {
    ++drops_.unknown_index;
    return nullptr;
  }
  coordinator = owner->coordinator;
  if (coordinator) return nullptr;
  return peers_.find(Ipv4{owner->vip});
}

void Node::on_handshake_resp(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto resp = wire::parse_handshake_resp(d.span());
  if (!resp) {
    ++drops_.malformed;
    return;
  }
  bool coordinator = false;
  Peer* owner = owner_of(resp->receiver_index, coordinator);
  if (coordinator && !via_relay) coord_.on_handshake_resp(now, *resp);
  if (!owner) return;
  Peer& p = *owner;
  if (!p.sessions.pending || p.sessions.pending->local_index != resp->receiver_index) {
    ++drops_.unknown_index;
    return;
  }
  if (auto ok = handshakes_.consume_response(now, p, *resp); !ok) {
    ++drops_.handshake_failed;
    log_->debug("peer={} handshake failed: {}", p.name(), ok.error());
    return;
  }
  on_session(now, p);
  log_->info("peer={} vip={} session established (initiator) via={}", p.name(), p.vip.to_string(),
             via_relay ? "relay" : from.to_string());
}

}  // namespace p2p::core
