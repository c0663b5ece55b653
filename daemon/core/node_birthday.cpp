// The Node's side of birthday punching (birthday_punch.hpp): when a punching round's plan is
// kBirthday, one attempt runs beside the plain candidates; its probes are PathProbes sealed in
// the peer's session, sent from the extra sockets (the symmetric side) or to random ports (the
// cone side). Datagrams on an extra socket come in through on_punch_udp() and are handled as
// any other, with rx_socket_ naming the socket so that answers leave from it and a path found
// there is that socket's. The first authenticated datagram from the peer that arrives
// directly ends the attempt; an extra socket it came on is adopted by the peer
// (Peer::punch_socket) and closed once no path of the peer uses it.
#include "daemon/core/birthday_punch.hpp"
#include "daemon/core/node.hpp"
#include "net/packet.hpp"

namespace p2p::core {

class Node::BirthdaySender final : public BirthdayEffects {
 public:
  BirthdaySender(Node& node, Time now, Peer* peer) : node_(node), now_(now), peer_(peer) {}
  std::uint32_t open_socket() override {
    auto* s = node_.fx_.punch_sockets();
    return s ? s->open_punch_socket() : 0;
  }
  void close_socket(std::uint32_t socket) override {
    if (auto* s = node_.fx_.punch_sockets()) s->close_punch_socket(socket);
  }
  void send_probe(std::uint32_t socket, const Endpoint& to) override {
    if (!peer_) return;
    node_.send_control_to_peer(now_, *peer_, wire::PathProbe{peer_->paths.next_probe_id(), to}, to,
                               socket);
  }
  std::uint64_t random() override { return node_.fx_.random_u64(); }

 private:
  Node& node_;
  Time now_;
  Peer* peer_;
};

void Node::on_punch_udp(Time now, std::uint32_t socket, const Endpoint& from,
                        PacketView packet) noexcept {
  // Only peers answer on these sockets; NAT discovery and the coordinator use the node's own.
  if (socket != 0 && wire::classify(packet.span()) == wire::DatagramKind::kStun) {
    ++drops_.malformed;
    return;
  }
  rx_socket_ = socket;
  on_udp(now, from, packet);
  rx_socket_ = 0;
}

void Node::send_udp_via(std::uint32_t socket, const Endpoint& to, std::span<const std::uint8_t> d) {
  if (socket == 0) return fx_.send_udp(to, d);
  if (auto* s = fx_.punch_sockets()) s->send_punch(socket, to, d);
}

void Node::start_birthday(Time now, Peer& p) {
  const auto own = coord_.observed();
  if (!own || !p.observed || p.paths.active() || !birthday_.can_start(now)) return;
  const bool symmetric = coord_.nat().type == wire::NatType::kSymmetric;
  if (symmetric && !fx_.punch_sockets()) return;  // no extra sockets here
  const auto role = symmetric ? BirthdayPunch::Role::kSockets : BirthdayPunch::Role::kPorts;
  const auto& s = birthday_.settings();
  log_->info("peer={} birthday punch: {} to {} (at most {} probes, {}/s)", p.name(),
             symmetric ? std::to_string(s.sockets) + " sockets" : std::string("random ports"),
             symmetric ? p.observed->to_string() : to_string(p.observed->address), s.max_probes,
             s.probes_per_second);
  BirthdaySender fx(*this, now, &p);
  birthday_.start(now, p.vip, role, *p.observed, fx);
  schedule(birthday_.deadline());
}

void Node::birthday_on_direct(Time now, Peer& p, const Endpoint& from) {
  if (birthday_.peer() != p.vip) return;
  BirthdaySender fx(*this, now, &p);
  const auto sent = birthday_.counters().probes;
  auto won = birthday_.hit(now, p.vip, rx_socket_, fx);
  log_->info("peer={} birthday punch hit: {} answered{} ({} probes sent in all)", p.name(),
             from.to_string(), won ? " on an extra socket (adopted)" : "", sent);
  if (!won) return;
  if (p.punch_socket != 0 && p.punch_socket != *won) release_punch_socket(p, true);
  p.punch_socket = *won;
  if (auto* s = fx_.punch_sockets()) s->adopt_punch_socket(*won);
  // An ack proves the way as well as a probe: make it the socket's path.
  if (p.paths.on_probe(now, from, *won) == PathSet::ProbeSource::kMoved) start_punching(now, p);
}

void Node::birthday_tick(Time now) {
  const auto vip = birthday_.peer();
  if (!vip) return;
  Peer* p = peers_.find(*vip);
  BirthdaySender fx(*this, now, p);
  birthday_.tick(now, fx);
  if (!birthday_.running()) {
    log_->info(
        "peer={} birthday punch found nothing; none before {}s from now",
        p ? p->name() : vip->to_string(),
        std::chrono::duration_cast<std::chrono::seconds>(birthday_.not_before() - now).count());
  }
  schedule(birthday_.deadline());
}

void Node::release_punch_socket(Peer& p, bool all) {
  if (all && birthday_.peer() == p.vip) {
    BirthdaySender fx(*this, Time{}, nullptr);
    birthday_.cancel(p.vip, fx);
  }
  if (p.punch_socket == 0 || (!all && p.paths.uses_socket(p.punch_socket))) return;
  if (auto* s = fx_.punch_sockets()) s->close_punch_socket(p.punch_socket);
  p.punch_socket = 0;
}

}  // namespace p2p::core
