// SimNet's coordinator TCP streams (the coordinator link's second carrier): what a node's
// CoordinatorStreams and the coordinator's TcpMainPort do, reduced to ordered, lossless frames
// with latency, connects that take a round trip, refusals and resets.
#include <algorithm>
#include <cstring>

#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

// How long a connect through a NAT that drops TCP takes to fail (the shell's connect timeout).
constexpr Duration kBlockedConnect = std::chrono::seconds(5);

}  // namespace

void SimNode::coordinator_stream_open(std::uint32_t slot, const Endpoint& to) {
  net_.stream_open(*this, slot, to);
}

void SimNode::coordinator_stream_send(std::uint32_t slot, std::span<const std::uint8_t> d) {
  net_.stream_send(*this, slot, d);
}

void SimNode::coordinator_stream_close(std::uint32_t slot) {
  net_.stream_close(*this, slot);
}

void SimNode::on_stream(Time now, std::uint32_t slot, bool open) {
  node_->on_coordinator_stream(now, slot, open);
  after_event(now);
}

void SimNode::on_stream_frame(Time now, std::uint32_t slot, PacketView frame) {
  node_->on_coordinator_frame(now, slot, frame);
  after_event(now);
}

void SimNet::set_tcp_blocked(int nat, bool blocked) {
  std::erase(tcp_blocked_, nat);
  if (blocked) tcp_blocked_.push_back(nat);
}

std::size_t SimNet::open_streams() const {
  return static_cast<std::size_t>(
      std::count_if(streams_.begin(), streams_.end(), [](const auto& x) { return x.second.open; }));
}

coord::ConnectionId SimNet::stream_of(const SimNode& node, std::uint32_t slot) const {
  for (const auto& [id, st] : streams_) {
    if (st.node == &node && st.slot == slot) return id;
  }
  return 0;
}

void SimNet::stream_open(SimNode& node, std::uint32_t slot, const Endpoint& to) {
  stream_close(node, slot);
  ++stream_connects;
  const int nat = hosts_.at(node.socket()).nat;
  const coord::ConnectionId id = next_stream_++;
  const Endpoint seen =
      nat < 0 ? Endpoint{node.socket().address, static_cast<std::uint16_t>(40000 + id % 20000)}
              : Endpoint{nat_public_ip(nat), static_cast<std::uint16_t>(40000 + id % 20000)};
  SimCoordinator* coord = nullptr;
  for (auto& c : coordinators_) {
    if (c->endpoint().address == to.address && c->tcp_port() == to.port) coord = c.get();
  }
  streams_[id] = Stream{&node, slot, coord, seen};
  const bool blocked =
      std::find(tcp_blocked_.begin(), tcp_blocked_.end(), nat) != tcp_blocked_.end();
  trace_.push_back(std::to_string(now_.time_since_epoch().count() / 1'000'000) + "ms " +
                   node.name() + " tcp connect " + to.to_string() +
                   (blocked ? " (TCP blocked)"
                    : coord ? ""
                            : " (refused)"));
  const bool fails = blocked || !coord;
  later(blocked ? kBlockedConnect : 2 * latency, [this, id, fails] {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    SimNode* n = it->second.node;
    const auto s = it->second.slot;
    if (fails) {
      streams_.erase(it);
    } else {
      it->second.open = true;
    }
    n->on_stream(now_, s, !fails);
  });
}

void SimNet::stream_send(SimNode& node, std::uint32_t slot, std::span<const std::uint8_t> d) {
  stream_deliver(stream_of(node, slot), d, true);
}

void SimNet::stream_close(SimNode& node, std::uint32_t slot) {
  const auto id = stream_of(node, slot);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  SimCoordinator* coord = it->second.coord;
  const bool was_open = it->second.open;
  streams_.erase(it);
  if (coord && was_open) later(latency, [coord, id] { coord->core().on_tcp_closed(id); });
}

void SimNet::stream_to_node(coord::ConnectionId id, std::span<const std::uint8_t> d) {
  stream_deliver(id, d, false);
}

void SimNet::stream_deliver(coord::ConnectionId id, std::span<const std::uint8_t> d,
                            bool to_coordinator) {
  auto it = streams_.find(id);
  if (it == streams_.end() || !it->second.open) {
    record(Endpoint{}, Endpoint{}, d, "dropped: no stream");
    return;
  }
  later(latency, [this, id, to_coordinator, frame = std::vector<std::uint8_t>(d.begin(), d.end())] {
    auto s = streams_.find(id);
    if (s == streams_.end()) return;  // closed meanwhile
    std::vector<std::uint8_t> buf(kBufferSize);
    std::memcpy(buf.data() + kHeadroom, frame.data(), frame.size());
    PacketView v(buf.data(), buf.size(), kHeadroom, frame.size());
    if (to_coordinator)
      s->second.coord->core().on_tcp(now_, id, s->second.seen_from, v);
    else
      s->second.node->on_stream_frame(now_, s->second.slot, v);
  });
}

void SimNet::reset_streams(const std::string& name) {
  auto n = nodes_.find(name);
  if (n == nodes_.end()) return;
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->second.node != n->second.get()) {
      ++it;
      continue;
    }
    const auto id = it->first;
    const auto slot = it->second.slot;
    SimNode* node = it->second.node;
    SimCoordinator* coord = it->second.coord;
    const bool was_open = it->second.open;
    it = streams_.erase(it);
    later(Duration{}, [this, node, slot] { node->on_stream(now_, slot, false); });
    if (coord && was_open) later(Duration{}, [coord, id] { coord->core().on_tcp_closed(id); });
  }
}

}  // namespace p2p::sim
