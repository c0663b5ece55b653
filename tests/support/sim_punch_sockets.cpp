// SimNode's extra sockets for birthday punching (core::PunchSocketEffects).
#include "tests/support/sim_net.hpp"

namespace p2p::sim {

std::uint32_t SimNode::open_punch_socket() {
  if (punch_.size() >= max_extra_sockets) return 0;
  Endpoint at{socket_.address, 0};
  do at.port = next_punch_port_++;
  while (net_.hosts_.contains(at));
  const std::uint32_t id = next_punch_++;
  punch_[id] = at;
  auto r = net_.hosts_.at(socket_);
  r.punch_socket = id;
  net_.hosts_[at] = r;
  ++extra_sockets_opened;
  peak_extra_sockets = std::max(peak_extra_sockets, punch_.size());
  return id;
}

void SimNode::send_punch(std::uint32_t socket, const Endpoint& to,
                         std::span<const std::uint8_t> d) {
  if (auto it = punch_.find(socket); it != punch_.end()) net_.send(it->second, to, d);
}

void SimNode::close_punch_socket(std::uint32_t socket) {
  auto it = punch_.find(socket);
  if (it == punch_.end()) return;
  net_.hosts_.erase(it->second);
  punch_.erase(it);
}

void SimNode::on_punch_udp(Time now, std::uint32_t socket, const Endpoint& from,
                           PacketView datagram) {
  node_->on_punch_udp(now, socket, from, datagram);
  after_event(now);
}

}  // namespace p2p::sim
