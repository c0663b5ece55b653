#include "daemon/core/node.hpp"

#include <algorithm>
#include <cstring>

#include "net/packet.hpp"
#include "net/stun.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;
using wire::ControlMessage;

constexpr Duration kCoordinatorRetry = 5s;        // XX handshake timeout
constexpr int kCoordinatorFailover = 3;           // failed attempts before the next one
constexpr Duration kRegisterRetry = 2s;           // until RegisterOk
constexpr Duration kRefusedRetry = 60s;
constexpr Duration kRequestRetry = 2s;            // PeerRequest without an answer
constexpr int kRequestAttempts = 5;
constexpr Duration kHandshakeGiveUp = 90s;        // WireGuard's REKEY_ATTEMPT_TIME
constexpr Duration kPunchFastInterval = 250ms;    // probes while punching, first 2 s
constexpr Duration kPunchSlowInterval = 1s;
constexpr Duration kProbeTimeout = 1s;
constexpr int kProbesToDeclareDead = 3;
constexpr Duration kActiveProbeInterval = 2s;     // on the active path while traffic flows
constexpr Duration kTrafficRecent = 5s;
constexpr Duration kIdleAfter = 180s;             // no traffic: let sessions lapse
constexpr Duration kMaxPunchBackoff = 300s;
constexpr Duration kPingTimeout = 2s;
constexpr Duration kPassiveKeepalive = crypto::kKeepaliveTimeout;
constexpr Duration kUnansweredTimeout = crypto::kKeepaliveTimeout + crypto::kRekeyTimeout;
constexpr std::size_t kMaxCandidates = 24;
constexpr int kPredictedPorts = 16;

std::optional<Ipv4> ipv4_dst(std::span<const std::uint8_t> p) {
  if (p.size() < 20 || (p[0] >> 4) != 4) return std::nullopt;
  return Ipv4{std::uint32_t{p[16]} << 24 | std::uint32_t{p[17]} << 16 |
              std::uint32_t{p[18]} << 8 | p[19]};
}
std::optional<Ipv4> ipv4_src(std::span<const std::uint8_t> p) {
  if (p.size() < 20 || (p[0] >> 4) != 4) return std::nullopt;
  return Ipv4{std::uint32_t{p[12]} << 24 | std::uint32_t{p[13]} << 16 |
              std::uint32_t{p[14]} << 8 | p[15]};
}
// A well-formed IPv4 header whose total length fits the packet; returns that length.
std::optional<std::size_t> ipv4_length(std::span<const std::uint8_t> p) {
  if (p.size() < 20 || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5) return std::nullopt;
  std::size_t total = std::size_t{p[2]} << 8 | p[3];
  if (total < 20 || total > p.size()) return std::nullopt;
  return total;
}

int kind_rank(PathKind k) { return k == PathKind::kLan ? 0 : 1; }

// When this side renews a session: the initiator after kRekeyAfterTime, the responder (which
// only renews if the initiator did not) at the point TransportSession::should_rekey names.
Time rekey_time(const crypto::TransportSession& s) {
  return s.created() + (s.is_initiator() ? crypto::kRekeyAfterTime
                                         : crypto::kRejectAfterTime - crypto::kKeepaliveTimeout -
                                               crypto::kRekeyTimeout);
}

}  // namespace

const char* to_string(PathKind k) {
  switch (k) {
    case PathKind::kLan: return "lan";
    case PathKind::kPublic: return "public";
    case PathKind::kReflexive: return "reflexive";
    case PathKind::kPredicted: return "predicted";
  }
  return "?";
}

struct Node::CoordinatorLink {
  enum class State { kConnecting, kRegistering, kRegistered, kRefused };
  std::size_t which = 0;
  Endpoint endpoint;
  State state = State::kConnecting;
  std::optional<PendingHandshake> pending;
  std::optional<Session> current;
  std::optional<Session> previous;
  std::optional<Endpoint> observed;
  Duration interval = 25s;
  Time next_register{};
  Time next_attempt{};
  Time last_received{};
  int failures = 0;
  std::string refused;
};

Node::Node(crypto::Identity identity, crypto::CaCertificate ca, NodeSettings settings,
           NodeEffects& effects, std::shared_ptr<spdlog::logger> log)
    : identity_(std::move(identity)),
      ca_(std::move(ca)),
      settings_(std::move(settings)),
      fx_(effects),
      log_(std::move(log)),
      mesh_{identity_.certificate.vip.network(), identity_.certificate.vip.length},
      broadcast_{mesh_.network().value |
                 (mesh_.length == 0 ? ~0u : mesh_.length >= 32 ? 0u : ~(~0u << (32 - mesh_.length)))},
      coord_(std::make_unique<CoordinatorLink>()),
      queue_buffer_(kBufferSize) {
  scratch_.reserve(2048);
}

Node::~Node() = default;

// ---------------------------------------------------------------------------------------
// Coordinator link

bool Node::registered() const { return coord_->state == CoordinatorLink::State::kRegistered; }

std::optional<Endpoint> Node::coordinator() const {
  if (settings_.coordinators.empty()) return std::nullopt;
  return coord_->endpoint;
}

void Node::start(Time now) {
  if (settings_.coordinators.empty()) return;
  coord_->endpoint = settings_.coordinators[0];
  coord_->next_attempt = now;
  coordinator_handshake(now);
}

void Node::stop(Time now) {
  if (coord_->current) send_to_coordinator(now, wire::Goodbye{});
}

void Node::coordinator_handshake(Time now) {
  auto& c = *coord_;
  if (c.pending) drop_index(c.pending->local_index);
  auto hs = crypto::AuthHandshake::initiator(
      crypto::AuthHandshake::Kind::kXX, identity_,
      [this](const crypto::Certificate& cert) { return verify_peer(cert, crypto::Role::coordinator); });
  auto msg = hs.write(fx_.unix_nanos());
  if (!msg) return;
  auto index = new_index(SessionRef{true, 0});
  std::vector<std::uint8_t> out;
  wire::build_handshake_init(out, wire::Pattern::kXX, index, *msg);
  Time first = c.pending ? c.pending->first_try : now;
  c.pending.emplace(PendingHandshake{std::move(hs), index, now, first});
  c.next_attempt = now + kCoordinatorRetry;
  schedule(c.next_attempt);
  log_->debug("coordinator={} handshake sent", c.endpoint.to_string());
  fx_.send_udp(c.endpoint, out);
}

void Node::send_register(Time now) {
  wire::Register r{local_endpoints_, nat_};
  send_to_coordinator(now, r);
  coord_->next_register = now + (registered() ? coord_->interval : kRegisterRetry);
  schedule(coord_->next_register);
}

void Node::send_to_coordinator(Time now, const ControlMessage& m) {
  auto& c = *coord_;
  if (!c.current) return;
  scratch_.assign(wire::kDataHeaderSize, 0);
  wire::encode_control(scratch_, m);
  std::size_t len = scratch_.size() - wire::kDataHeaderSize;
  scratch_.resize(scratch_.size() + wire::kTagSize);
  auto body = std::span(scratch_).subspan(wire::kDataHeaderSize);
  auto ctr = c.current->transport.encrypt(now, body, len);
  if (!ctr) return;
  wire::write_data_header(scratch_.data(), c.current->remote_index, *ctr);
  fx_.send_udp(c.endpoint, scratch_);
}

void Node::send_relayed(Time now, Ipv4 to, PacketView d) {
  auto& c = *coord_;
  if (!c.current || !d.push_front(wire::kRelayHeaderSize)) return;
  wire::write_relay_header(d.data(), wire::ControlType::kRelay, to);
  auto ctr = c.current->transport.encrypt(now, d.span_with_tailroom(), d.size());
  if (!ctr) return;
  d.resize(d.size() + wire::kTagSize);
  if (!d.push_front(wire::kDataHeaderSize)) return;
  wire::write_data_header(d.data(), c.current->remote_index, *ctr);
  fx_.send_udp(c.endpoint, d.span());
}

void Node::coordinator_tick(Time now) {
  auto& c = *coord_;
  if (settings_.coordinators.empty()) return;
  using S = CoordinatorLink::State;
  if (c.current && c.current->transport.is_expired(now)) {
    drop_index(c.current->local_index);
    c.current.reset();
    c.state = S::kConnecting;
  }
  if (c.previous && c.previous->transport.is_expired(now)) {
    drop_index(c.previous->local_index);
    c.previous.reset();
  }
  // Silence from a registered coordinator for three intervals: reconnect.
  if (c.state == S::kRegistered && now - c.last_received > 3 * c.interval) {
    log_->warn("coordinator={} silent for {}s, reconnecting", c.endpoint.to_string(),
               std::chrono::duration_cast<std::chrono::seconds>(now - c.last_received).count());
    c.state = S::kConnecting;
    c.next_attempt = now;
  }
  bool need_handshake = !c.current || (c.current->transport.should_rekey(now) && !c.pending);
  if (c.state == S::kRefused) need_handshake = now >= c.next_attempt;
  if (c.pending && now >= c.next_attempt) {
    // The attempt timed out.
    if (++c.failures >= kCoordinatorFailover && settings_.coordinators.size() > 1) {
      c.which = (c.which + 1) % settings_.coordinators.size();
      c.endpoint = settings_.coordinators[c.which];
      c.failures = 0;
      log_->warn("trying coordinator={}", c.endpoint.to_string());
    }
    coordinator_handshake(now);
  } else if (need_handshake && !c.pending && now >= c.next_attempt) {
    coordinator_handshake(now);
  }
  if (c.current && c.state != S::kRefused && now >= c.next_register) send_register(now);
  if (c.pending) schedule(c.next_attempt);
  if (c.current) {
    schedule(c.next_register);
    if (!c.pending) schedule(rekey_time(c.current->transport));
  }
  if (c.state == S::kRegistered) schedule(c.last_received + 3 * c.interval + 1ms);
  if (c.state == S::kRefused) schedule(c.next_attempt);
}

void Node::on_coordinator_message(Time now, PacketView plain) {
  auto& c = *coord_;
  c.last_received = now;
  if (plain.size() == 0) return;  // keepalive
  if (plain.data()[0] == static_cast<std::uint8_t>(wire::ControlType::kRelayed)) {
    if (plain.size() <= wire::kRelayHeaderSize) { ++drops_.malformed; return; }
    on_peer_datagram(now, c.endpoint, true,
                     plain.sub(wire::kRelayHeaderSize, plain.size() - wire::kRelayHeaderSize));
    return;
  }
  auto m = wire::decode_control(plain.span());
  if (!m) {
    ++drops_.malformed;
    log_->warn("coordinator={} sent a malformed control message", c.endpoint.to_string());
    return;
  }
  if (auto* ok = std::get_if<wire::RegisterOk>(&*m)) {
    bool first = c.state != CoordinatorLink::State::kRegistered;
    const std::optional<Endpoint> was = c.observed;
    bool moved = was && *was != ok->observed;
    c.state = CoordinatorLink::State::kRegistered;
    c.failures = 0;
    c.observed = ok->observed;
    c.interval = std::clamp<Duration>(std::chrono::seconds(ok->interval_seconds), 1s,
                                      settings_.keepalive);
    c.next_register = now + c.interval;
    schedule(c.next_register);
    if (first || moved)
      log_->info("registered coordinator={} public={}", c.endpoint.to_string(),
                 ok->observed.to_string());
    if (moved) fx_.public_endpoint_moved(*was, ok->observed);
    for (auto& [vip, p] : peers_) {
      if (p->state == Peer::State::kRequesting && p->request_attempts == 0) request_peer(now, *p);
    }
  } else if (auto* r = std::get_if<wire::Refused>(&*m)) {
    c.state = CoordinatorLink::State::kRefused;
    c.refused = r->reason;
    // The session is useless now; try again from scratch later.
    if (c.current) drop_index(c.current->local_index);
    c.current.reset();
    c.next_attempt = now + kRefusedRetry;
    schedule(c.next_attempt);
    log_->error("coordinator={} refused us: {}", c.endpoint.to_string(), r->reason);
  } else if (auto* in = std::get_if<wire::Introduce>(&*m)) {
    on_introduce(now, *in);
  } else if (auto* u = std::get_if<wire::PeerUnknown>(&*m)) {
    for (auto it = peers_.begin(); it != peers_.end(); ++it) {
      if (it->second->request_id == u->request_id && !it->second->cert) {
        log_->warn("vip={} unknown to the coordinator: {}", Ipv4{it->first}.to_string(),
                   u->reason);
        it->second->state = Peer::State::kUnreachable;
        it->second->relay_reason = "unknown to the coordinator";
        drops_.queue_full += it->second->queue.size();
        it->second->queue.clear();
        break;
      }
    }
  } else {
    log_->debug("coordinator sent unexpected {}", wire::control_name(*m));
  }
}

// ---------------------------------------------------------------------------------------
// Peers: lookup, introduction, handshakes

Peer& Node::peer_for(Ipv4 vip) {
  auto& slot = peers_[vip.value];
  if (!slot) {
    slot = std::make_unique<Peer>();
    slot->vip = vip;
    for (const auto& pol : settings_.policies) {
      if (auto* v = std::get_if<Ipv4>(&pol.match); v && *v == vip) slot->force = pol.force;
    }
  }
  return *slot;
}

Peer* Node::find_peer(const std::variant<Ipv4, std::string>& target) {
  if (auto* v = std::get_if<Ipv4>(&target)) {
    auto it = peers_.find(v->value);
    return it == peers_.end() ? nullptr : it->second.get();
  }
  for (auto& [vip, p] : peers_) {
    if (p->cert && p->cert->name == std::get<std::string>(target)) return p.get();
  }
  return nullptr;
}

Force Node::policy_for(const crypto::Certificate& cert) const {
  for (const auto& pol : settings_.policies) {
    if (auto* v = std::get_if<Ipv4>(&pol.match); v && *v == cert.vip.address) return pol.force;
    if (auto* n = std::get_if<std::string>(&pol.match); n && *n == cert.name) return pol.force;
  }
  return Force::kAuto;
}

Expected<void, crypto::CertError> Node::verify_peer(const crypto::Certificate& cert,
                                                    crypto::Role role) const {
  auto now = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  return crypto::verify(cert, ca_, now, crypto::VerifyPolicy{role, settings_.revoked});
}

void Node::request_peer(Time now, Peer& p) {
  p.state = Peer::State::kRequesting;
  p.request_sent = now;
  if (!registered()) {
    p.request_attempts = 0;  // sent once RegisterOk arrives
    return;
  }
  ++p.request_attempts;
  p.request_id = next_request_id_++;
  send_to_coordinator(now, wire::PeerRequest{p.request_id, p.vip});
  schedule(now + kRequestRetry);
}

void Node::connect(Time now, std::variant<Ipv4, std::string> target) {
  if (Peer* p = find_peer(target)) {
    if (!p->current && !p->pending && p->cert) start_handshake(now, *p);
    return;
  }
  if (auto* v = std::get_if<Ipv4>(&target)) {
    request_peer(now, peer_for(*v));
  } else if (registered()) {
    send_to_coordinator(now, wire::PeerRequest{next_request_id_++, std::get<std::string>(target)});
  }
}

void Node::on_introduce(Time now, const wire::Introduce& m) {
  auto cert = crypto::decode_certificate(m.certificate);
  if (!cert) {
    ++drops_.malformed;
    log_->warn("coordinator introduced a malformed certificate: {}", cert.error().message);
    return;
  }
  if (auto ok = verify_peer(*cert, crypto::Role::node); !ok) {
    log_->warn("peer={} refused: {}", cert->name, ok.error().message);
    return;
  }
  if (cert->vip.address == identity_.certificate.vip.address) return;
  Peer& p = peer_for(cert->vip.address);
  bool new_key = p.cert && p.cert->public_key != cert->public_key;
  p.cert = std::move(*cert);
  p.force = policy_for(*p.cert);
  p.observed = m.observed;
  p.local_endpoints = m.local_endpoints;
  p.nat = m.nat;
  log_->info("peer={} vip={} introduced public={} nat={}", p.name(), p.vip.to_string(),
             m.observed.to_string(), wire::to_string(m.nat.type));
  if (new_key) {
    p.current.reset();
    p.previous.reset();
  }
  if (p.current && !p.current->transport.is_expired(now)) {
    // Already connected, yet the other side asked for an introduction: it has no direct path
    // (it lost ours, or its network changed). Ours may be just as dead without our knowing
    // (idle paths are probed only every keepalive): check it at once, and punch the fresh
    // candidates beside it.
    check_paths_now(now, p);
    start_punching(now, p);
    return;
  }
  if (m.initiate || !p.queue.empty()) {
    if (!p.pending) start_handshake(now, p);
  } else {
    p.state = Peer::State::kHandshaking;  // the other side initiates
  }
}

void Node::start_handshake(Time now, Peer& p) {
  if (!p.cert) return;
  Time first = p.pending ? p.pending->first_try : now;
  if (p.pending) drop_index(p.pending->local_index);
  auto hs = crypto::AuthHandshake::initiator(
      crypto::AuthHandshake::Kind::kIK, identity_,
      [this](const crypto::Certificate& c) { return verify_peer(c, crypto::Role::node); },
      p.cert->public_key);
  auto msg = hs.write(fx_.unix_nanos());
  if (!msg) {
    ++drops_.handshake_failed;
    return;
  }
  auto index = new_index(SessionRef{false, p.vip.value});
  p.pending.emplace(PendingHandshake{std::move(hs), index, now, first});
  if (p.state != Peer::State::kConnected) p.state = Peer::State::kHandshaking;
  schedule(now + crypto::kRekeyTimeout);

  std::vector<std::uint8_t> out(kHeadroom);
  std::vector<std::uint8_t> body;
  wire::build_handshake_init(body, wire::Pattern::kIK, index, *msg);
  out.insert(out.end(), body.begin(), body.end());
  out.resize(out.size() + kTailroom);
  PacketView d(out.data(), out.size(), kHeadroom, body.size());
  log_->debug("peer={} handshake initiation", p.name());
  bool relay = settings_.relay_allowed && p.force != Force::kDirect && registered();
  if (const Path* path = p.active_path()) {
    fx_.send_udp(path->endpoint, d.span());
  } else if (relay) {
    send_relayed(now, p.vip, d);
  } else {
    // No relay: try every candidate directly.
    if (p.observed) fx_.send_udp(*p.observed, d.span());
    for (const auto& e : p.local_endpoints) fx_.send_udp(e, d.span());
  }
}

void Node::on_peer_datagram(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto type = wire::packet_type(d.span());
  if (!type) {
    ++drops_.malformed;
    return;
  }
  switch (*type) {
    case wire::PacketType::kHandshakeInit: on_handshake_init(now, from, via_relay, d); break;
    case wire::PacketType::kHandshakeResp: on_handshake_resp(now, from, via_relay, d); break;
    case wire::PacketType::kData: on_data(now, from, via_relay, d); break;
    case wire::PacketType::kHandshakeFinal: ++drops_.malformed; break;
  }
}

void Node::on_handshake_init(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto init = wire::parse_handshake_init(d.span());
  if (!init || init->pattern != wire::Pattern::kIK) {
    ++drops_.malformed;
    return;
  }
  auto hs = crypto::AuthHandshake::responder(
      crypto::AuthHandshake::Kind::kIK, identity_,
      [this](const crypto::Certificate& c) { return verify_peer(c, crypto::Role::node); });
  if (auto r = hs.read(init->noise); !r) {
    ++drops_.handshake_failed;
    log_->warn("handshake from endpoint={} refused: {}", from.to_string(), r.error().reason);
    return;
  }
  const auto& cert = *hs.peer_certificate();
  if (cert.vip.address == identity_.certificate.vip.address) {
    ++drops_.handshake_failed;
    return;
  }
  Peer& p = peer_for(cert.vip.address);
  if (!p.cert || p.cert->public_key != cert.public_key) {
    if (p.cert) p.last_init_timestamp = 0;  // a re-issued key: its clock starts afresh
    p.cert = cert;
    p.force = policy_for(cert);
  }
  auto ts = hs.initiator_timestamp().value_or(0);
  if (ts <= p.last_init_timestamp) {
    ++drops_.handshake_failed;
    log_->warn("peer={} replayed handshake initiation dropped", p.name());
    return;
  }
  auto msg = hs.write(fx_.unix_nanos());
  auto keys = msg ? hs.split() : decltype(hs.split())(p2p::fail(crypto::noise::Error::failed));
  if (!msg || !keys) {
    ++drops_.handshake_failed;
    return;
  }
  p.last_init_timestamp = ts;
  auto index = new_index(SessionRef{false, p.vip.value});
  install_session(now, p, crypto::TransportSession(std::move(keys).value(), now, false), index,
                  init->sender_index);

  std::vector<std::uint8_t> out(kHeadroom);
  std::vector<std::uint8_t> body;
  wire::build_handshake_resp(body, index, init->sender_index, *msg);
  out.insert(out.end(), body.begin(), body.end());
  out.resize(out.size() + kTailroom);
  PacketView resp(out.data(), out.size(), kHeadroom, body.size());
  if (via_relay) {
    send_relayed(now, p.vip, resp);
  } else {
    fx_.send_udp(from, resp.span());
  }
  log_->info("peer={} vip={} session established (responder) via={}", p.name(),
             p.vip.to_string(), via_relay ? "relay" : from.to_string());
  // Without an introduction we do not know the peer's candidates yet: ask.
  if (!p.observed && registered()) {
    p.request_id = next_request_id_++;
    send_to_coordinator(now, wire::PeerRequest{p.request_id, p.vip});
  }
}

void Node::on_handshake_resp(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto resp = wire::parse_handshake_resp(d.span());
  if (!resp) {
    ++drops_.malformed;
    return;
  }
  auto it = index_.find(resp->receiver_index);
  if (it == index_.end()) {
    ++drops_.unknown_index;
    return;
  }
  if (it->second.coordinator) {
    // XX message 2 from the coordinator.
    auto& c = *coord_;
    if (!c.pending || c.pending->local_index != resp->receiver_index || via_relay) return;
    auto& hs = c.pending->handshake;
    if (auto r = hs.read(resp->noise); !r) {
      log_->error("coordinator={} handshake failed: {}", c.endpoint.to_string(), r.error().reason);
      drop_index(c.pending->local_index);
      c.pending.reset();
      return;
    }
    auto msg3 = hs.write(fx_.unix_nanos());
    auto keys = msg3 ? hs.split() : decltype(hs.split())(p2p::fail(crypto::noise::Error::failed));
    if (!msg3 || !keys) {
      drop_index(c.pending->local_index);
      c.pending.reset();
      return;
    }
    std::vector<std::uint8_t> out;
    wire::build_handshake_final(out, resp->sender_index, *msg3);
    fx_.send_udp(c.endpoint, out);
    if (c.previous) drop_index(c.previous->local_index);
    c.previous = std::move(c.current);
    c.current.emplace(Session{crypto::TransportSession(std::move(keys).value(), now, true),
                              c.pending->local_index, resp->sender_index});
    c.pending.reset();
    c.last_received = now;
    if (c.state != CoordinatorLink::State::kRegistered) c.state = CoordinatorLink::State::kRegistering;
    log_->debug("coordinator={} session established", c.endpoint.to_string());
    send_register(now);
    return;
  }
  auto pit = peers_.find(it->second.vip);
  if (pit == peers_.end()) return;
  Peer& p = *pit->second;
  if (!p.pending || p.pending->local_index != resp->receiver_index) {
    ++drops_.unknown_index;
    return;
  }
  auto& hs = p.pending->handshake;
  auto ok = hs.read(resp->noise);
  auto keys = ok ? hs.split() : decltype(hs.split())(p2p::fail(crypto::noise::Error::failed));
  if (!ok || !keys) {
    ++drops_.handshake_failed;
    log_->warn("peer={} handshake failed: {}", p.name(),
               ok ? "split failed" : ok.error().reason);
    return;
  }
  auto index = p.pending->local_index;
  p.pending.reset();
  install_session(now, p, crypto::TransportSession(std::move(keys).value(), now, true), index,
                  resp->sender_index);
  log_->info("peer={} vip={} session established (initiator) via={}", p.name(),
             p.vip.to_string(), via_relay ? "relay" : from.to_string());
}

void Node::install_session(Time now, Peer& p, crypto::TransportSession ts, std::uint32_t local,
                           std::uint32_t remote) {
  if (p.previous) drop_index(p.previous->local_index);
  p.previous = std::move(p.current);
  p.current.emplace(Session{std::move(ts), local, remote});
  p.state = Peer::State::kConnected;
  p.last_handshake = now;
  p.last_received = now;
  if (p.last_data_activity == Time{}) p.last_data_activity = now;
  flush_queue(now, p);
  if (p.active < 0 && !p.punching) start_punching(now, p);
  schedule(now + crypto::kRekeyAfterTime);
}

void Node::flush_queue(Time now, Peer& p) {
  while (!p.queue.empty()) {
    auto pkt = std::move(p.queue.front());
    p.queue.pop_front();
    std::memcpy(queue_buffer_.data() + kHeadroom, pkt.data(), pkt.size());
    PacketView v(queue_buffer_.data(), queue_buffer_.size(), kHeadroom, pkt.size());
    send_to_peer(now, p, v);
  }
}

// ---------------------------------------------------------------------------------------
// Data path

void Node::on_tun(Time now, PacketView packet) {
  auto dst = ipv4_dst(packet.span());
  if (!dst || !mesh_.contains(*dst) || *dst == identity_.certificate.vip.address ||
      *dst == broadcast_ || *dst == mesh_.network()) {
    ++drops_.no_route;
    return;
  }
  auto it = peers_.find(dst->value);
  Peer* p = it == peers_.end() ? nullptr : it->second.get();
  if (!p) {
    p = &peer_for(*dst);
    request_peer(now, *p);
  }
  p->last_data_activity = now;
  if (p->current && !p->current->transport.is_expired(now) && send_to_peer(now, *p, packet)) return;
  // No usable session: queue, and make sure something is under way.
  if (p->queue.size() >= settings_.max_queued_packets) {
    p->queue.pop_front();
    ++drops_.queue_full;
  }
  p->queue.emplace_back(packet.data(), packet.data() + packet.size());
  if (p->state == Peer::State::kUnreachable) request_peer(now, *p);
  if (!p->pending && p->cert && p->state != Peer::State::kRequesting) start_handshake(now, *p);
}

bool Node::send_to_peer(Time now, Peer& p, PacketView packet, bool is_probe_or_keepalive) {
  if (!p.current) return false;
  auto& s = *p.current;
  if (s.transport.should_rekey(now) && !p.pending) start_handshake(now, p);
  std::size_t len = packet.size();
  auto ctr = s.transport.encrypt(now, packet.span_with_tailroom(), len);
  if (!ctr) return false;
  packet.resize(len + wire::kTagSize);
  packet.push_front(wire::kDataHeaderSize);
  wire::write_data_header(packet.data(), s.remote_index, *ctr);
  if (!is_probe_or_keepalive) {
    p.bytes_out += len;
    ++p.packets_out;
    if (!p.unanswered_since) {
      p.unanswered_since = now;
      schedule(now + kUnansweredTimeout);
    }
  }
  p.last_sent = now;
  p.keepalive_due.reset();
  send_datagram_to_peer(now, p, packet, p.active_path());
  return true;
}

void Node::send_datagram_to_peer(Time now, Peer& p, PacketView d, const Path* direct) {
  if (direct) {
    fx_.send_udp(direct->endpoint, d.span());
  } else if (settings_.relay_allowed && p.force != Force::kDirect && registered()) {
    send_relayed(now, p.vip, d);
  } else if (p.observed) {
    fx_.send_udp(*p.observed, d.span());
  }
}

void Node::on_udp(Time now, const Endpoint& from, PacketView packet) {
  auto d = packet.span();
  if (d.empty()) return;
  if (wire::stun::is_stun(d)) {
    if (stun_sink_) stun_sink_(now, from, d);
    return;
  }
  auto type = wire::packet_type(d);
  if (!type) {
    ++drops_.malformed;
    return;
  }
  if (*type == wire::PacketType::kData) {
    on_data(now, from, false, packet);
  } else if (*type == wire::PacketType::kHandshakeResp) {
    on_handshake_resp(now, from, false, packet);
  } else if (*type == wire::PacketType::kHandshakeInit) {
    on_handshake_init(now, from, false, packet);
  } else {
    ++drops_.malformed;
  }
}

void Node::on_data(Time now, const Endpoint& from, bool via_relay, PacketView d) {
  auto h = wire::parse_data(d.span());
  if (!h) {
    ++drops_.malformed;
    return;
  }
  auto it = index_.find(h->receiver_index);
  if (it == index_.end()) {
    ++drops_.unknown_index;
    return;
  }
  PacketView body = d.sub(wire::kDataHeaderSize, d.size() - wire::kDataHeaderSize);
  auto decrypt = [&](std::optional<Session>& s) -> std::optional<std::size_t> {
    if (!s || s->local_index != h->receiver_index) return std::nullopt;
    auto n = s->transport.decrypt(now, h->counter, body.span());
    if (!n) {
      ++drops_.decrypt_failed;
      return std::size_t{~0u};
    }
    return *n;
  };
  if (it->second.coordinator) {
    auto& c = *coord_;
    if (via_relay) return;
    auto n = decrypt(c.current);
    if (!n) n = decrypt(c.previous);
    if (!n || *n == ~0u) return;
    on_coordinator_message(now, body.sub(0, *n));
    return;
  }
  auto pit = peers_.find(it->second.vip);
  if (pit == peers_.end()) return;
  Peer& p = *pit->second;
  auto n = decrypt(p.current);
  if (!n) n = decrypt(p.previous);
  if (!n || *n == ~0u) return;
  p.last_received = now;
  p.unanswered_since.reset();
  on_peer_plaintext(now, p, from, via_relay, body.sub(0, *n));
}

void Node::on_peer_plaintext(Time now, Peer& p, const Endpoint& from, bool via_relay,
                             PacketView plain) {
  if (plain.size() == 0) return;  // keepalive
  std::uint8_t version = plain.data()[0] >> 4;
  if (version == 4) {
    auto len = ipv4_length(plain.span());
    auto src = ipv4_src(plain.span());
    auto dst = ipv4_dst(plain.span());
    if (!len) {
      ++drops_.malformed;
      return;
    }
    if (*src != p.vip || *dst != identity_.certificate.vip.address) {
      ++drops_.bad_source;
      log_->debug("peer={} sent a packet from {} to {}: dropped", p.name(), src->to_string(),
                  dst->to_string());
      return;
    }
    p.bytes_in += *len;
    ++p.packets_in;
    p.last_data_activity = now;
    if (!p.keepalive_due) {
      p.keepalive_due = now + kPassiveKeepalive;
      schedule(*p.keepalive_due);
    }
    fx_.write_tun(plain.span().first(*len));
    return;
  }
  if (version == 6) {
    ++drops_.no_route;  // IPv6 inside the mesh is not routed yet
    return;
  }
  auto m = wire::decode_control(plain.span());
  if (!m) {
    ++drops_.malformed;
    return;
  }
  if (auto* probe = std::get_if<wire::PathProbe>(&*m)) {
    if (!via_relay) {
      bool known = std::any_of(p.paths.begin(), p.paths.end(),
                               [&](const Path& x) { return x.endpoint == from; });
      const std::size_t held = p.paths.size();
      if (!known && p.force != Force::kRelay) add_candidate(p, from, PathKind::kReflexive);
      if (p.paths.size() > held) {
        p.paths.back().next_probe = now;
        schedule(now);
        // A probe from an endpoint we did not know: the peer may have moved (another
        // network, a NAT that remapped it). Check the paths we hold now, and probe the new
        // one beside them, rather than wait for the old ones to time out one by one.
        if (!p.punching && p.active >= 0) {
          check_paths_now(now, p);
          start_punching(now, p);
        }
      }
    }
    // Answer the way it came: to its source, or back through the relay.
    send_control_to_peer(now, p, wire::PathProbeAck{probe->probe_id, from},
                         via_relay ? std::nullopt : std::optional<Endpoint>(from));
    return;
  }
  if (auto* ack = std::get_if<wire::PathProbeAck>(&*m)) {
    if (ack->probe_id == p.ping_probe && p.ping_probe != 0) {
      auto rtt = now - p.ping_sent;
      p.ping_probe = 0;
      if (p.ping_done) {
        auto done = std::move(p.ping_done);
        p.ping_done = nullptr;
        done(rtt, via_relay ? "relay" : "direct " + from.to_string());
      }
      return;
    }
    for (auto& path : p.paths) {
      if (path.probe_id == ack->probe_id && ack->probe_id != 0 && path.endpoint == from) {
        path.probe_id = 0;
        path.rtt = now - path.probe_sent;
        path.last_ack = now;
        path.unanswered = 0;
        if (!path.confirmed) {
          path.confirmed = true;
          log_->debug("peer={} path={} confirmed rtt={}us", p.name(), from.to_string(),
                      std::chrono::duration_cast<std::chrono::microseconds>(*path.rtt).count());
        }
        choose_path(now, p);
        return;
      }
    }
    return;
  }
  log_->debug("peer={} sent unexpected {}", p.name(), wire::control_name(*m));
}

void Node::send_control_to_peer(Time now, Peer& p, const ControlMessage& m,
                                std::optional<Endpoint> to) {
  if (!p.current) return;
  scratch_.assign(kHeadroom, 0);
  wire::encode_control(scratch_, m);
  std::size_t len = scratch_.size() - kHeadroom;
  scratch_.resize(scratch_.size() + kTailroom);
  PacketView v(scratch_.data(), scratch_.size(), kHeadroom, len);
  auto ctr = p.current->transport.encrypt(now, v.span_with_tailroom(), len);
  if (!ctr) return;
  v.resize(len + wire::kTagSize);
  v.push_front(wire::kDataHeaderSize);
  wire::write_data_header(v.data(), p.current->remote_index, *ctr);
  if (to) {
    fx_.send_udp(*to, v.span());
  } else {
    send_relayed(now, p.vip, v);
  }
}

// ---------------------------------------------------------------------------------------
// Paths: punching, liveness, choice

void Node::add_candidate(Peer& p, const Endpoint& ep, PathKind kind) {
  if (p.paths.size() >= kMaxCandidates) return;
  for (const auto& x : p.paths) {
    if (x.endpoint == ep) return;
  }
  Path path;
  path.endpoint = ep;
  path.kind = kind;
  p.paths.push_back(path);
}

void Node::start_punching(Time now, Peer& p) {
  if (p.force == Force::kRelay) {
    p.relay_reason = "forced";
    return;
  }
  if (!settings_.punch_enabled && p.force != Force::kDirect) {
    p.relay_reason = "punching disabled";
    return;
  }
  if (nat_.type == wire::NatType::kSymmetric && p.nat.type == wire::NatType::kSymmetric &&
      p.force != Force::kDirect) {
    p.relay_reason = "both symmetric";
    return;
  }
  // Candidates: the peer's public endpoint; its LAN endpoints when we share a public address
  // (the same NAT) or the coordinator has not told us ours; for a symmetric peer with
  // sequential allocation, a bounded set of predicted ports.
  if (p.observed) add_candidate(p, *p.observed, PathKind::kPublic);
  auto own_public = coord_->observed;
  bool same_nat = !own_public || !p.observed || own_public->address == p.observed->address;
  if (same_nat) {
    for (const auto& e : p.local_endpoints) add_candidate(p, e, PathKind::kLan);
  }
  if (settings_.port_prediction && p.observed && p.nat.type == wire::NatType::kSymmetric &&
      p.nat.allocation == wire::PortAllocation::kSequential && p.nat.port_step != 0) {
    for (int k = 1; k <= kPredictedPorts; ++k) {
      int port = p.observed->port + k * p.nat.port_step;
      if (port <= 0 || port > 65535) break;
      add_candidate(p, Endpoint{p.observed->address, static_cast<std::uint16_t>(port)},
                    PathKind::kPredicted);
    }
  }
  if (p.paths.empty()) {
    p.relay_reason = "no candidates";
    return;
  }
  p.punching = true;
  p.punch_deadline = now + settings_.punch_timeout;
  p.relay_reason = "punching";
  for (auto& path : p.paths) {
    if (!path.confirmed) path.next_probe = now;
  }
  log_->debug("peer={} punching {} candidates", p.name(), p.paths.size());
  path_tick(now, p);
}

void Node::choose_path(Time /*now*/, Peer& p) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(p.paths.size()); ++i) {
    const auto& x = p.paths[i];
    if (!x.confirmed) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const auto& b = p.paths[best];
    if (kind_rank(x.kind) < kind_rank(b.kind) ||
        (kind_rank(x.kind) == kind_rank(b.kind) && x.rtt.value_or(1h) < b.rtt.value_or(1h)))
      best = i;
  }
  if (p.force == Force::kRelay) best = -1;
  if (best != p.active) {
    const char* was = p.active >= 0 ? "direct" : "relay";
    p.active = best;
    if (best >= 0) {
      log_->info("peer={} path=direct endpoint={} kind={} (was {})", p.name(),
                 p.paths[best].endpoint.to_string(), to_string(p.paths[best].kind), was);
      p.relay_reason.clear();
      p.punch_backoff = std::chrono::seconds(15);
    } else {
      log_->info("peer={} path=relay reason={}", p.name(), p.relay_reason);
    }
  }
  // The best kind is confirmed: stop spraying the remaining candidates.
  if (best >= 0 && p.punching) {
    bool lan_pending = std::any_of(p.paths.begin(), p.paths.end(), [](const Path& x) {
      return x.kind == PathKind::kLan && !x.confirmed;
    });
    if (p.paths[best].kind == PathKind::kLan || !lan_pending) {
      p.punching = false;
      Endpoint chosen = p.paths[best].endpoint;
      std::erase_if(p.paths, [&](const Path& x) {
        return !x.confirmed && x.kind == PathKind::kPredicted;
      });
      // Indices moved: point at the chosen path again.
      for (int i = 0; i < static_cast<int>(p.paths.size()); ++i) {
        if (p.paths[i].endpoint == chosen) p.active = i;
      }
    }
  }
}

void Node::path_tick(Time now, Peer& p) {
  if (!p.current) return;
  bool traffic = now - p.last_data_activity < kTrafficRecent;
  bool changed = false;
  for (int i = 0; i < static_cast<int>(p.paths.size()); ++i) {
    auto& path = p.paths[i];
    if (path.probe_id != 0 && now - path.probe_sent >= kProbeTimeout) {
      path.probe_id = 0;
      if (++path.unanswered >= kProbesToDeclareDead && path.confirmed) {
        path.confirmed = false;
        changed = true;
        if (i == p.active) {
          p.relay_reason = "direct path lost";
          log_->warn("peer={} direct path endpoint={} lost", p.name(), path.endpoint.to_string());
          p.next_punch_retry = now + 1s;
          // Our NAT may have dropped every mapping (a router restart, conntrack -F): refresh
          // the one the coordinator relays through now rather than at the next interval.
          if (coord_->current && registered()) send_register(now);
        }
      }
    }
    bool probe = false;
    Duration interval{};
    if (path.confirmed) {
      interval = (i == p.active && traffic) ? kActiveProbeInterval : settings_.keepalive;
      // Data is flowing on a path not heard from recently: check it now.
      if (i == p.active && traffic && path.probe_id == 0 && path.last_ack &&
          now - *path.last_ack > kActiveProbeInterval + kProbeTimeout)
        path.next_probe = std::min(path.next_probe, now);
      probe = now >= path.next_probe;
    } else if (p.punching) {
      bool early = now - (p.punch_deadline - settings_.punch_timeout) < 2s;
      interval = early ? kPunchFastInterval : kPunchSlowInterval;
      probe = now >= path.next_probe;
    }
    if (probe && path.probe_id == 0) {
      path.probe_id = random_u64() | 1;
      path.probe_sent = now;
      path.next_probe = now + interval;
      send_control_to_peer(now, p, wire::PathProbe{path.probe_id, path.endpoint}, path.endpoint);
    } else if (probe) {
      path.next_probe = now + interval;
    }
    if (path.confirmed || p.punching) schedule(path.next_probe);
    if (path.probe_id != 0) schedule(path.probe_sent + kProbeTimeout);
  }
  if (changed) choose_path(now, p);
  if (p.punching && now >= p.punch_deadline) {
    p.punching = false;
    if (p.active < 0) {
      p.relay_reason = "punching timed out";
      p.next_punch_retry = now + p.punch_backoff;
      p.punch_backoff = std::min<Duration>(p.punch_backoff * 2, kMaxPunchBackoff);
      log_->info("peer={} punching timed out, relaying; next try in {}s", p.name(),
                 std::chrono::duration_cast<std::chrono::seconds>(p.next_punch_retry - now).count());
      std::erase_if(p.paths, [](const Path& x) { return !x.confirmed; });
      p.active = -1;
      choose_path(now, p);
    }
  }
  if (p.punching) schedule(p.punch_deadline);
  if (!p.punching && p.active < 0 && now >= p.next_punch_retry) {
    p.next_punch_retry = Time::max();
    if (registered()) {
      // Mappings may have moved since the last introduction: ask for fresh candidates, and
      // the coordinator's Introduce starts both sides punching at the same moment.
      p.request_id = next_request_id_++;
      send_to_coordinator(now, wire::PeerRequest{p.request_id, p.vip});
    } else {
      start_punching(now, p);
    }
  }
  if (!p.punching && p.active < 0 && p.next_punch_retry != Time::max())
    schedule(p.next_punch_retry);
}

void Node::peer_tick(Time now, Peer& p) {
  if (p.state == Peer::State::kRequesting && !p.cert && registered()) {
    if (now - p.request_sent >= kRequestRetry) {
      if (p.request_attempts >= kRequestAttempts) {
        p.state = Peer::State::kUnreachable;
        p.relay_reason = "no answer from the coordinator";
        drops_.queue_full += p.queue.size();
        p.queue.clear();
      } else {
        request_peer(now, p);
      }
    }
    schedule(p.request_sent + kRequestRetry);
  }
  if (p.pending) {
    if (now - p.pending->first_try >= kHandshakeGiveUp) {
      log_->warn("peer={} unreachable: no handshake answer for {}s", p.name(),
                 std::chrono::duration_cast<std::chrono::seconds>(kHandshakeGiveUp).count());
      drop_index(p.pending->local_index);
      p.pending.reset();
      if (!p.current) p.state = Peer::State::kUnreachable;
      drops_.queue_full += p.queue.size();
      p.queue.clear();
    } else if (now - p.pending->started >= crypto::kRekeyTimeout) {
      start_handshake(now, p);
    } else {
      schedule(p.pending->started + crypto::kRekeyTimeout);
    }
  }
  for (auto* s : {&p.previous, &p.current}) {
    if (*s && (*s)->transport.is_expired(now)) {
      drop_index((*s)->local_index);
      s->reset();
    }
  }
  if (p.current) {
    bool active = now - p.last_data_activity < kIdleAfter;
    if (active && p.current->transport.should_rekey(now) && !p.pending) start_handshake(now, p);
    // Idle peers let the session lapse (the next packet starts over); active ones rekey.
    if (active && !p.pending) schedule(rekey_time(p.current->transport));
    schedule(p.current->transport.created() + crypto::kRejectAfterTime);
    if (p.unanswered_since && !p.pending) {
      if (now - *p.unanswered_since >= kUnansweredTimeout) {
        log_->info("peer={} silent for {}s while we send: new handshake", p.name(),
                   std::chrono::duration_cast<std::chrono::seconds>(kUnansweredTimeout).count());
        p.unanswered_since.reset();
        start_handshake(now, p);
      } else {
        schedule(*p.unanswered_since + kUnansweredTimeout);
      }
    }
    // Passive keepalive: the peer sends us data but we have nothing to say back.
    if (p.keepalive_due && now >= *p.keepalive_due) {
      std::vector<std::uint8_t> buf(kHeadroom + kTailroom);
      send_to_peer(now, p, PacketView(buf.data(), buf.size(), kHeadroom, 0), true);
    } else if (p.keepalive_due) {
      schedule(*p.keepalive_due);
    }
    path_tick(now, p);
  } else if (p.state == Peer::State::kConnected) {
    p.state = Peer::State::kHandshaking;
    p.active = -1;
    p.paths.clear();
    p.punching = false;
    p.relay_reason = "idle";
    if (now - p.last_data_activity < kIdleAfter && !p.pending) start_handshake(now, p);
  }
  if (p.ping_probe != 0 && now - p.ping_sent >= kPingTimeout) {
    p.ping_probe = 0;
    if (p.ping_done) {
      auto done = std::move(p.ping_done);
      p.ping_done = nullptr;
      done(std::nullopt, "timeout");
    }
  } else if (p.ping_probe != 0) {
    schedule(p.ping_sent + kPingTimeout);
  }
}

void Node::on_tick(Time now) {
  deadline_ = Time::max();
  coordinator_tick(now);
  for (auto& [vip, p] : peers_) peer_tick(now, *p);
}

// ---------------------------------------------------------------------------------------
// Control-plane requests from the shell

void Node::set_local_endpoints(Time now, std::vector<Endpoint> endpoints) {
  if (endpoints == local_endpoints_) return;
  local_endpoints_ = std::move(endpoints);
  if (coord_->current) send_register(now);
}

void Node::set_nat(Time now, wire::NatSummary nat) {
  if (nat == nat_) return;
  nat_ = nat;
  if (coord_->current) send_register(now);
}

void Node::network_changed(Time now, std::vector<Endpoint> endpoints) {
  local_endpoints_ = std::move(endpoints);
  if (coord_->current) send_register(now);
  for (auto& [vip, p] : peers_) check_paths_now(now, *p);
}

void Node::check_paths_now(Time now, Peer& p) {
  for (auto& path : p.paths) {
    if (!path.confirmed) continue;
    // One probe decides: unanswered, the path is dead (traffic falls back to the relay and
    // punching starts over); answered, nothing changes.
    path.unanswered = std::max(path.unanswered, kProbesToDeclareDead - 1);
    path.next_probe = now;
  }
  schedule(now);
}

void Node::set_stun_sink(StunSink sink) { stun_sink_ = std::move(sink); }

void Node::ping(Time now, std::variant<Ipv4, std::string> target, PingDone done) {
  Peer* p = find_peer(target);
  if (!p || !p->current) {
    done(std::nullopt, "not connected");
    return;
  }
  if (p->ping_done) p->ping_done(std::nullopt, "superseded");
  p->ping_probe = random_u64() | 1;
  p->ping_sent = now;
  p->ping_done = std::move(done);
  schedule(now + kPingTimeout);
  const Path* path = p->active_path();
  wire::PathProbe probe{p->ping_probe, path ? path->endpoint : Endpoint{}};
  send_control_to_peer(now, *p, probe,
                       path ? std::optional<Endpoint>(path->endpoint) : std::nullopt);
}

NodeStatus Node::status(Time now) const {
  NodeStatus s;
  s.name = identity_.certificate.name;
  s.vip = identity_.certificate.vip;
  s.public_endpoint = coord_->observed;
  s.local_endpoints = local_endpoints_;
  s.nat = nat_;
  if (!settings_.coordinators.empty()) s.coordinator = coord_->endpoint;
  switch (coord_->state) {
    case CoordinatorLink::State::kConnecting: s.coordinator_state = "connecting"; break;
    case CoordinatorLink::State::kRegistering: s.coordinator_state = "registering"; break;
    case CoordinatorLink::State::kRegistered: s.coordinator_state = "registered"; break;
    case CoordinatorLink::State::kRefused: s.coordinator_state = "refused: " + coord_->refused; break;
  }
  s.drops = drops_;
  for (const auto& [vip, pp] : peers_) {
    const Peer& p = *pp;
    PeerStatus ps;
    ps.name = p.name();
    ps.vip = p.vip;
    switch (p.state) {
      case Peer::State::kRequesting: ps.state = "requesting"; break;
      case Peer::State::kHandshaking: ps.state = "handshaking"; break;
      case Peer::State::kConnected: ps.state = "connected"; break;
      case Peer::State::kUnreachable: ps.state = "unreachable"; break;
    }
    if (const Path* a = p.active_path()) {
      ps.path = "direct";
      ps.endpoint = a->endpoint;
      ps.rtt = a->rtt;
    } else if (p.current) {
      ps.path = "relay";
      ps.endpoint = coord_->endpoint;
      ps.relay_reason = p.relay_reason;
    } else {
      ps.path = "none";
      ps.relay_reason = p.relay_reason;
    }
    if (p.last_handshake) ps.since_handshake = now - *p.last_handshake;
    ps.bytes_in = p.bytes_in;
    ps.bytes_out = p.bytes_out;
    ps.packets_in = p.packets_in;
    ps.packets_out = p.packets_out;
    ps.nat = p.nat;
    for (const auto& x : p.paths) {
      ps.candidates.push_back(PathStatus{x.endpoint, to_string(x.kind), x.confirmed, x.rtt});
    }
    s.peers.push_back(std::move(ps));
  }
  return s;
}

// ---------------------------------------------------------------------------------------

std::uint64_t Node::random_u64() {
  std::uint64_t v = 0;
  fx_.fill_random(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
  return v;
}

std::uint32_t Node::new_index(SessionRef ref) {
  for (;;) {
    auto v = static_cast<std::uint32_t>(random_u64());
    if (v != 0 && index_.emplace(v, ref).second) return v;
  }
}

void Node::drop_index(std::uint32_t index) { index_.erase(index); }

}  // namespace p2p::core
