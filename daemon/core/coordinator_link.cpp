#include "daemon/core/coordinator_link.hpp"

#include <algorithm>

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

constexpr Duration kCoordinatorRetry = 5s;  // XX handshake timeout
constexpr Duration kRegisterRetry = 2s;     // until RegisterOk
constexpr Duration kRefusedRetry = 60s;
constexpr Duration kPingInterval = 3s;
constexpr Duration kPingTimeout = 1s;
constexpr int kPingMisses = 3;

}  // namespace

CoordinatorLink::CoordinatorLink(const crypto::Identity& identity, Endpoint coordinator,
                                 std::uint32_t slot, Duration keepalive,
                                 crypto::CertificateVerifier verify, SessionTable& table,
                                 NodeEffects& fx, CoordinatorEvents& events, spdlog::logger& log,
                                 DropCounters& drops)
    : identity_(identity),
      keepalive_(keepalive),
      verify_(std::move(verify)),
      table_(table),
      fx_(fx),
      events_(events),
      log_(log),
      drops_(drops),
      endpoint_(coordinator),
      slot_(slot) {
  scratch_.reserve(2048);
}

std::string CoordinatorLink::state_text() const {
  switch (state_) {
    case State::kConnecting:
      if (unanswered_ >= kUnansweredWarning)
        return "connecting: no answer from " + endpoint_.to_string() + " to " +
               std::to_string(unanswered_) + " handshakes";
      return "connecting";
    case State::kRegistering: return "registering";
    case State::kRegistered: return "registered";
    case State::kRefused: return "refused: " + refused_;
  }
  return "?";
}

void CoordinatorLink::start(Time now) {
  next_attempt_ = now;
  handshake(now);
}

void CoordinatorLink::stop(Time now) {
  if (slots_.current) send(now, wire::Goodbye{});
  close_stream();
}

void CoordinatorLink::handshake(Time now) {
  const Carrier c = handshake_carrier(now);
  if (c == Carrier::kTcp && stream_ != Stream::kOpen) {
    // The stream's opening answers this (on_stream); until then, or on failure, wait.
    if (stream_ == Stream::kClosed && now >= stream_retry_) open_stream(now);
    next_attempt_ = std::max(now, stream_retry_) + kCoordinatorRetry;
    schedule(next_attempt_);
    return;
  }
  auto hs = crypto::AuthHandshake::initiator(crypto::AuthHandshake::Kind::kXX, identity_, verify_);
  auto msg = hs.write(fx_.unix_nanos());
  if (!msg) return;
  auto index = table_.allocate(SessionOwner{true, slot_});
  slots_.begin(table_, PendingHandshake{std::move(hs), index, now, now});
  // Padded to wire::kMinInitSize: the answer carries the coordinator's certificate.
  auto out = slots_.seal_initiation(now, wire::Pattern::kXX, *msg, 0, guard_keys_);
  next_attempt_ = now + kCoordinatorRetry;
  schedule(next_attempt_);
  pending_carrier_ = c;
  log_.debug("coordinator={} handshake sent over {}", endpoint_.to_string(),
             c == Carrier::kTcp ? "tcp" : "udp");
  transmit(c, out);
}

void CoordinatorLink::on_cookie_reply(Time now, const wire::CookieReply& r) {
  if (auto again = slots_.on_cookie_reply(now, r, guard_keys_)) {
    log_.debug("coordinator={} is under load; initiation sent again with its cookie",
               endpoint_.to_string());
    transmit(pending_carrier_, *again);
  }
}

void CoordinatorLink::send_register(Time now) {
  send(now, wire::Register{local_endpoints_, nat_, mapped_});
  next_register_ = now + (registered() ? interval_ : kRegisterRetry);
  schedule(next_register_);
}

void CoordinatorLink::register_now(Time now) {
  if (slots_.current) send_register(now);
}

void CoordinatorLink::set_local_endpoints(Time now, std::vector<Endpoint> endpoints) {
  if (endpoints == local_endpoints_) return;
  local_endpoints_ = std::move(endpoints);
  register_now(now);
}

void CoordinatorLink::set_nat(Time now, wire::NatSummary nat) {
  if (nat == nat_) return;
  nat_ = nat;
  register_now(now);
}

void CoordinatorLink::set_mapped(Time now, std::optional<Endpoint> mapped) {
  if (mapped == mapped_) return;
  mapped_ = mapped;
  register_now(now);
}

void CoordinatorLink::network_changed(Time now, std::vector<Endpoint> endpoints) {
  local_endpoints_ = std::move(endpoints);
  register_now(now);
}

bool CoordinatorLink::send(Time now, const wire::ControlMessage& m) {
  if (!slots_.current || (carrier_ == Carrier::kTcp && stream_ != Stream::kOpen)) return false;
  PacketView v = wire::encode_control_packet(scratch_, m);
  if (!slots_.current->seal(now, v)) return false;
  transmit(carrier_, v.span());
  return true;
}

bool CoordinatorLink::send_relayed(Time now, Ipv4 to, PacketView d) {
  if (!slots_.current || (carrier_ == Carrier::kTcp && stream_ != Stream::kOpen)) return false;
  if (!slots_.current->seal_relay(now, d, wire::PacketType::kRelay, to.value)) return false;
  transmit(carrier_, d.span());
  return true;
}

void CoordinatorLink::tick(Time now) {
  deadline_ = Time::max();
  if (slots_.expire(table_, now)) state_ = State::kConnecting;
  // Silence from a registered coordinator for three intervals: reconnect.
  if (state_ == State::kRegistered && now - last_received_ > 3 * interval_) {
    lost(now, "silent");
  }
  if (state_ == State::kRegistered) ping_tick(now);
  auto& cur = slots_.current;
  // kConnecting with a session: the coordinator went silent (restarted, or our mapping died):
  // the session may be dead on its side too, so start a new one.
  bool need_handshake =
      !cur || state_ == State::kConnecting || (cur->transport.should_rekey(now) && !slots_.pending);
  if (state_ == State::kRefused) need_handshake = now >= next_attempt_;
  if (slots_.pending && now >= next_attempt_) {
    if (!handshake_timed_out(now, pending_carrier_)) {
      slots_.abandon_pending(table_);  // a UDP probe beside a live TCP session: no answer
    } else {
      // The attempt timed out. A coordinator of another network (our mac1 is keyed by our
      // CA) drops our initiations unanswered, as it does all blind garbage: say what we know.
      if (++unanswered_ == kUnansweredWarning)
        log_.warn(
            "no answer from coordinator={} to {} handshakes: it is down or unreachable, UDP to "
            "it is blocked, or it serves another network (its CA is not our ca.crt)",
            endpoint_.to_string(), unanswered_);
      handshake(now);
    }
  } else if (need_handshake && !slots_.pending && now >= next_attempt_) {
    handshake(now);
  }
  if (cur && state_ != State::kRefused && now >= next_register_) send_register(now);
  if (slots_.pending) schedule(next_attempt_);
  if (cur) {
    schedule(next_register_);
    if (!slots_.pending) schedule(rekey_time(cur->transport));
  }
  if (state_ == State::kRegistered) schedule(last_received_ + 3 * interval_ + 1ms);
  if (state_ == State::kRefused) schedule(next_attempt_);
  carrier_tick(now);
}

void CoordinatorLink::on_handshake_resp(Time now, const wire::HandshakeResp& resp) {
  if (!slots_.pending || slots_.pending->local_index != resp.receiver_index) return;
  auto& hs = slots_.pending->handshake;
  if (auto r = hs.read(resp.noise); !r) {
    log_.error("coordinator={} handshake failed: {}", endpoint_.to_string(), r.error().reason);
    slots_.abandon_pending(table_);
    return;
  }
  auto msg3 = hs.write(fx_.unix_nanos());
  auto keys = msg3 ? hs.split() : decltype(hs.split())(p2p::fail(crypto::noise::Error::failed));
  if (!msg3 || !keys) {
    slots_.abandon_pending(table_);
    return;
  }
  std::vector<std::uint8_t> out;
  wire::build_handshake_final(out, resp.sender_index, *msg3);
  transmit(pending_carrier_, out);
  const Carrier was = carrier_;
  carrier_ = pending_carrier_;
  const auto local = slots_.pending->local_index;
  // A new session: its coordinator (perhaps restarted, perhaps older) proves itself anew.
  ping_id_ = 0;
  misses_ = 0;
  answers_pings_ = false;
  slots_.pending.reset();  // its index now names the session
  slots_.install(
      table_, crypto::Session{crypto::TransportSession(std::move(keys).value(), now, true), local,
                              resp.sender_index});
  last_received_ = now;
  if (state_ != State::kRegistered) state_ = State::kRegistering;
  if (unanswered_ >= kUnansweredWarning)
    log_.info("coordinator={} answers again", endpoint_.to_string());
  unanswered_ = 0;
  log_.debug("coordinator={} session established", endpoint_.to_string());
  installed(now, was);
  send_register(now);
}

void CoordinatorLink::on_data(Time now, const wire::DataHeader& h, PacketView body) {
  auto n = slots_.open(now, h, body.span());
  if (!n) {
    if (n.error() == SessionSlots::OpenError::kFailed) ++drops_.decrypt_failed;
    return;
  }
  on_message(now, body.sub(0, *n));
}

void CoordinatorLink::on_relayed_frame(Time now, const wire::RelayFrame& f, PacketView frame) {
  if (!slots_.open_relay(now, f, frame.span())) {
    ++drops_.decrypt_failed;
    return;
  }
  last_received_ = now;
  events_.on_relayed(now, endpoint_, frame.sub(wire::kRelayHeaderSize, f.inner.size()));
}

void CoordinatorLink::on_message(Time now, PacketView plain) {
  last_received_ = now;
  if (plain.size() == 0) return;  // keepalive
  auto m = wire::decode_control(plain.span());
  if (!m) {
    ++drops_.malformed;
    log_.warn("coordinator={} sent a malformed control message", endpoint_.to_string());
    return;
  }
  if (auto* ok = std::get_if<wire::RegisterOk>(&*m)) {
    bool first = state_ != State::kRegistered;
    const std::optional<Endpoint> was = observed_;
    // Seen over another carrier is another socket, not a move of ours.
    bool moved = was && *was != ok->observed && observed_carrier_ == carrier_;
    observed_carrier_ = carrier_;
    if (carrier_ == Carrier::kTcp) stream_backoff_ = kStreamBackoffMin;
    state_ = State::kRegistered;
    observed_ = ok->observed;
    if (first) next_ping_ = now;  // measure the RTT at once
    interval_ = std::clamp<Duration>(std::chrono::seconds(ok->interval_seconds), 1s, keepalive_);
    next_register_ = now + interval_;
    schedule(next_register_);
    if (first || moved)
      log_.info("registered coordinator={} public={}", endpoint_.to_string(),
                ok->observed.to_string());
    if (first) schedule(next_ping_);
    if (moved) fx_.public_endpoint_moved(*was, ok->observed);
    events_.on_registered(now);
  } else if (auto* r = std::get_if<wire::Refused>(&*m)) {
    state_ = State::kRefused;
    refused_ = r->reason;
    // The session is useless now; try again from scratch later.
    if (slots_.current) table_.release(slots_.current->local_index);
    slots_.current.reset();
    next_attempt_ = now + kRefusedRetry;
    schedule(next_attempt_);
    log_.error("coordinator={} refused us: {}", endpoint_.to_string(), r->reason);
  } else if (auto* in = std::get_if<wire::Introduce>(&*m)) {
    events_.on_introduce(now, *in);
  } else if (auto* u = std::get_if<wire::PeerUnknown>(&*m)) {
    events_.on_peer_unknown(now, *u);
  } else if (auto* c = std::get_if<wire::RevocationChunk>(&*m)) {
    events_.on_revocation_chunk(now, *c);
  } else if (auto* pong = std::get_if<wire::Pong>(&*m)) {
    on_pong(now, *pong);
  } else if (std::holds_alternative<wire::TcpPunchOffer>(*m) ||
             std::holds_alternative<wire::TcpPunchGo>(*m) ||
             std::holds_alternative<wire::TcpPunchFailed>(*m)) {
    events_.on_tcp_punch(now, *m);
  } else {
    log_.debug("coordinator sent unexpected {}", wire::control_name(*m));
  }
}

void CoordinatorLink::lost(Time now, const char* why) {
  log_.warn("coordinator={} {} for {}s: reconnecting", endpoint_.to_string(), why,
            std::chrono::duration_cast<std::chrono::seconds>(now - last_received_).count());
  state_ = State::kConnecting;
  next_attempt_ = now;
  ping_id_ = 0;
  misses_ = 0;
  srtt_.reset();
  // A TCP connection that carries nothing any more may be dead without a reset: a new one.
  if (carrier_ == Carrier::kTcp && stream_ != Stream::kClosed) {
    close_stream();
    stream_retry_ = now;
  }
}

void CoordinatorLink::ping_tick(Time now) {
  if (ping_id_ != 0 && now >= ping_sent_ + kPingTimeout) {
    ping_id_ = 0;
    ++misses_;
    log_.debug("coordinator={} ping {} unanswered", endpoint_.to_string(), misses_);
    if (answers_pings_ && misses_ >= kPingMisses) {
      lost(now, "answers no ping");
      return;
    }
    next_ping_ = now;  // probe again at once: a loss or the coordinator gone?
  }
  if (ping_id_ == 0 && now >= next_ping_) {
    ping_id_ = next_ping_id_++;
    if (ping_id_ == 0) ping_id_ = next_ping_id_++;
    ping_sent_ = now;
    next_ping_ = now + kPingInterval;
    send(now, wire::Ping{ping_id_});
  }
  schedule(ping_id_ != 0 ? ping_sent_ + kPingTimeout : next_ping_);
}

void CoordinatorLink::on_pong(Time now, const wire::Pong& p) {
  if (p.id != ping_id_ || ping_id_ == 0) return;  // late, or not ours
  const Duration rtt = now - ping_sent_;
  srtt_ = srtt_ ? (*srtt_ * 7 + rtt) / 8 : rtt;
  ping_id_ = 0;
  misses_ = 0;
  answers_pings_ = true;
  schedule(next_ping_);
}

}  // namespace p2p::core
