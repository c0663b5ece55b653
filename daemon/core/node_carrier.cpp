// The Node's side of the coordinator link's TCP carrier (coordinator_link.hpp): the shell's
// stream events in, and why a relayed peer is relayed when UDP is blocked.
#include "daemon/core/node.hpp"

namespace p2p::core {

void Node::on_coordinator_stream(Time now, std::uint32_t slot, bool open) {
  coord_.on_stream(now, slot, open);
  schedule(coord_.deadline());
}

void Node::on_coordinator_frame(Time now, std::uint32_t slot, PacketView frame) noexcept {
  // As on_udp: whatever a frame causes is at worst a counted drop.
  try {
    coord_.on_stream_frame(now, slot, frame);
    schedule(coord_.deadline());
  } catch (...) {
    ++drops_.internal_error;
  }
}

bool Node::coordinator_over_tcp() const {
  const CoordinatorLink* via = coord_.relay();
  return via && via->carrier() == CoordinatorLink::Carrier::kTcp;
}

void Node::watch_carrier(Time now) {
  const bool over_tcp = coordinator_over_tcp();
  if (coordinator_was_over_tcp_ && !over_tcp) {
    // UDP works from here again: peers on a TCP path or the relay need not wait out their
    // punch backoff (up to minutes) to move back to UDP.
    log_->info("UDP reaches the coordinator again: punching UDP to the peers not on it");
    peers_.for_each([&](Peer& p) {
      p.paths.retry_udp_soon(now);
      schedule(p.paths.deadline());
    });
  }
  coordinator_was_over_tcp_ = over_tcp;
}

bool Node::udp_blocked_with(const Peer& p) const {
  // Our coordinator answers only over TCP, or the peer found no answer to NAT discovery: no
  // UDP path could be punched, whatever the path set tried.
  return coordinator_over_tcp() || p.nat.type == wire::NatType::kUdpBlocked;
}

std::string Node::relay_reason(const Peer& p) const {
  return udp_blocked_with(p) ? "UDP blocked" : p.paths.relay_reason();
}

}  // namespace p2p::core
