#include "daemon/core/coordinator_set.hpp"

#include <algorithm>

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

constexpr Duration kLookupLifetime = 10s;
constexpr Duration kUnmeasured = 1h;  // sorts a coordinator without an RTT last

Duration rtt_or_unmeasured(const CoordinatorLink& l) {
  return l.rtt().value_or(kUnmeasured);
}

}  // namespace

CoordinatorSet::CoordinatorSet(const crypto::Identity& identity,
                               const std::vector<Endpoint>& coordinators, Duration keepalive,
                               const crypto::CertificateVerifier& verify, SessionTable& table,
                               NodeEffects& fx, CoordinatorEvents& events, spdlog::logger& log,
                               DropCounters& drops)
    : table_(table), events_(events), log_(log), drops_(drops) {
  CoordinatorEvents& self = *this;  // the links report here (a private base)
  for (std::size_t i = 0; i < coordinators.size(); ++i) {
    links_.push_back(std::make_unique<CoordinatorLink>(identity, coordinators[i],
                                                       static_cast<std::uint32_t>(i), keepalive,
                                                       verify, table, fx, self, log, drops));
  }
}

void CoordinatorSet::start(Time now) {
  for (auto& l : links_) l->start(now);
}

void CoordinatorSet::stop(Time now) {
  for (auto& l : links_) l->stop(now);
}

void CoordinatorSet::tick(Time now) {
  for (auto& l : links_) {
    if (l->deadline() <= now) l->tick(now);
  }
  std::erase_if(lookups_, [now](const Lookup& q) { return now >= q.expires; });
  choose_relay();
}

Time CoordinatorSet::deadline() const {
  Time t = Time::max();
  for (const auto& l : links_) t = std::min(t, l->deadline());
  return t;
}

void CoordinatorSet::set_local_endpoints(Time now, const std::vector<Endpoint>& endpoints) {
  local_endpoints_ = endpoints;
  for (auto& l : links_) l->set_local_endpoints(now, endpoints);
}

void CoordinatorSet::set_nat(Time now, wire::NatSummary nat) {
  nat_ = nat;
  for (auto& l : links_) l->set_nat(now, nat);
}

void CoordinatorSet::set_mapped(Time now, std::optional<Endpoint> mapped) {
  mapped_ = mapped;
  for (auto& l : links_) l->set_mapped(now, mapped);
}

void CoordinatorSet::network_changed(Time now, const std::vector<Endpoint>& endpoints) {
  local_endpoints_ = endpoints;
  for (auto& l : links_) l->network_changed(now, endpoints);
}

void CoordinatorSet::register_now(Time now) {
  for (auto& l : links_) l->register_now(now);
}

bool CoordinatorSet::send(Time now, const wire::ControlMessage& m) {
  int sent = 0;
  for (auto& l : links_) {
    if (l->registered() && l->send(now, m)) ++sent;
  }
  const auto* q = std::get_if<wire::PeerRequest>(&m);
  if (q && sent > 1) {
    if (lookups_.size() >= kMaxLookups) lookups_.erase(lookups_.begin());
    lookups_.push_back(Lookup{q->request_id, sent, false, now + kLookupLifetime});
  }
  return sent > 0;
}

bool CoordinatorSet::send_relayed(Time now, Ipv4 to, PacketView datagram) {
  if (relay_ >= links_.size()) return false;
  return links_[relay_]->send_relayed(now, to, datagram);
}

void CoordinatorSet::set_network_key(const crypto::PublicKey& ca_key) {
  for (auto& l : links_) l->set_network_key(ca_key);
}

CoordinatorLink* CoordinatorSet::link_for(std::uint32_t index) {
  auto owner = table_.find(index);
  if (!owner || !owner->coordinator || owner->vip >= links_.size()) return nullptr;
  return links_[owner->vip].get();
}

void CoordinatorSet::on_cookie_reply(Time now, const wire::CookieReply& r) {
  if (auto* l = link_for(r.receiver_index)) l->on_cookie_reply(now, r);
}

void CoordinatorSet::on_handshake_resp(Time now, const wire::HandshakeResp& resp) {
  if (auto* l = link_for(resp.receiver_index)) l->on_handshake_resp(now, resp);
  choose_relay();
}

void CoordinatorSet::on_data(Time now, const wire::DataHeader& h, PacketView body) {
  if (auto* l = link_for(h.receiver_index)) l->on_data(now, h, body);
  choose_relay();
}

void CoordinatorSet::on_relayed_frame(Time now, const wire::RelayFrame& f, PacketView frame) {
  if (auto* l = link_for(f.receiver_index)) l->on_relayed_frame(now, f, frame);
}

bool CoordinatorSet::registered() const {
  return std::any_of(links_.begin(), links_.end(), [](const auto& l) { return l->registered(); });
}

bool CoordinatorSet::has_session() const {
  return std::any_of(links_.begin(), links_.end(), [](const auto& l) { return l->has_session(); });
}

std::optional<Endpoint> CoordinatorSet::observed() const {
  if (const auto* r = relay(); r && r->observed()) return r->observed();
  for (const auto& l : links_) {
    if (l->registered() && l->observed()) return l->observed();
  }
  return links_.empty() ? std::nullopt : links_.front()->observed();
}

std::string CoordinatorSet::state_text() const {
  return links_.empty() ? "connecting" : shown().state_text();
}

std::vector<CoordinatorStatus> CoordinatorSet::status() const {
  std::vector<CoordinatorStatus> out;
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const auto& l = *links_[i];
    out.push_back(
        CoordinatorStatus{l.endpoint(), l.state_text(), l.rtt(), i == relay_, l.transport()});
  }
  return out;
}

void CoordinatorSet::choose_relay() {
  const CoordinatorLink* cur = relay();
  const bool keep = cur && cur->healthy();
  std::size_t best = SIZE_MAX;
  for (std::size_t i = 0; i < links_.size(); ++i) {
    if (!links_[i]->healthy()) continue;
    if (best == SIZE_MAX || rtt_or_unmeasured(*links_[i]) < rtt_or_unmeasured(*links_[best]))
      best = i;
  }
  if (best == SIZE_MAX) {
    // None healthy: keep a registered one that merely missed a Ping, rather than nothing.
    if (cur && cur->registered()) return;
    for (std::size_t i = 0; i < links_.size() && best == SIZE_MAX; ++i) {
      if (links_[i]->registered()) best = i;
    }
  } else if (keep && best != relay_) {
    const Duration now_rtt = rtt_or_unmeasured(*cur);
    const Duration margin = std::max<Duration>(2ms, now_rtt / 5);
    if (rtt_or_unmeasured(*links_[best]) + margin >= now_rtt) return;
  }
  if (best == relay_) return;
  relay_ = best;
  if (const auto* r = relay()) {
    log_.info("relay via coordinator={} rtt={}", r->endpoint().to_string(),
              r->rtt() ? std::to_string(*r->rtt() / 1us) + "us" : std::string("unmeasured"));
  } else if (cur) {
    log_.warn("no coordinator registered: relay unavailable");
  }
}

CoordinatorSet::Lookup* CoordinatorSet::lookup(std::uint32_t request_id) {
  for (auto& q : lookups_) {
    if (q.request_id == request_id) return &q;
  }
  return nullptr;
}

void CoordinatorSet::on_registered(Time now) {
  choose_relay();
  events_.on_registered(now);
}

void CoordinatorSet::on_introduce(Time now, const wire::Introduce& m) {
  if (Lookup* q = m.request_id != 0 ? lookup(m.request_id) : nullptr) {
    if (q->introduced) return;  // another coordinator answered first
    q->introduced = true;
  }
  events_.on_introduce(now, m);
}

void CoordinatorSet::on_peer_unknown(Time now, const wire::PeerUnknown& m) {
  if (Lookup* q = lookup(m.request_id)) {
    if (q->introduced || --q->unanswered > 0) return;
    std::erase_if(lookups_, [&](const Lookup& x) { return x.request_id == m.request_id; });
  }
  events_.on_peer_unknown(now, m);
}

void CoordinatorSet::on_relayed(Time now, const Endpoint& via, PacketView datagram) {
  events_.on_relayed(now, via, datagram);
}

void CoordinatorSet::on_revocation_chunk(Time now, const wire::RevocationChunk& m) {
  events_.on_revocation_chunk(now, m);
}

void CoordinatorSet::on_tcp_punch(Time now, const wire::ControlMessage& m) {
  events_.on_tcp_punch(now, m);
}

}  // namespace p2p::core

namespace p2p::core {

void CoordinatorSet::set_tcp_ports(const std::vector<std::optional<std::uint16_t>>& ports) {
  for (std::size_t i = 0; i < links_.size() && i < ports.size(); ++i)
    links_[i]->set_tcp_port(ports[i]);
}

void CoordinatorSet::on_stream(Time now, std::uint32_t slot, bool open) {
  if (slot >= links_.size()) return;
  links_[slot]->on_stream(now, open);
  choose_relay();
}

void CoordinatorSet::on_stream_frame(Time now, std::uint32_t slot, PacketView frame) {
  if (slot >= links_.size()) return;
  CoordinatorLink& l = *links_[slot];
  // Only what a coordinator sends, and only for this link's indices.
  auto take = [&](const auto& parsed, auto&& handle) {
    if (!parsed) {
      ++drops_.malformed;
    } else if (link_for(parsed->receiver_index) != &l) {
      ++drops_.unknown_index;
    } else {
      handle(*parsed);
    }
  };
  const auto d = frame.span();
  switch (wire::classify(d)) {
    case wire::DatagramKind::kHandshakeResp:
      take(wire::parse_handshake_resp(d), [&](const auto& r) { l.on_handshake_resp(now, r); });
      break;
    case wire::DatagramKind::kCookieReply:
      take(wire::parse_cookie_reply(d), [&](const auto& r) { l.on_cookie_reply(now, r); });
      break;
    case wire::DatagramKind::kData:
      take(wire::parse_data(d), [&](const auto& h) {
        l.on_data(now, h, frame.sub(wire::kDataHeaderSize, frame.size() - wire::kDataHeaderSize));
      });
      break;
    case wire::DatagramKind::kRelayed:
      take(wire::parse_relay(d), [&](const auto& f) { l.on_relayed_frame(now, f, frame); });
      break;
    default: ++drops_.malformed; break;
  }
  choose_relay();
}

}  // namespace p2p::core
