#include "tests/support/sim_streams.hpp"

#include <cstring>

namespace p2p::sim {

class SimStreams::Port final : public SimNodeTcp {
 public:
  Port(SimStreams& s, SimNode& n, Ipv4 address) : s_(s), n_(n), address_(address) {}
  void punch_open(std::uint32_t punch, const Endpoint& assist,
                  const wire::AssistHello& hello) override {
    s_.open(n_, punch, address_, assist, hello);
  }
  void punch_connect(std::uint32_t punch, const Endpoint& to) override {
    s_.connect(n_, punch, to);
  }
  void punch_close(std::uint32_t punch) override {
    if (auto it = s_.punches_.find({&n_, punch}); it != s_.punches_.end()) it->second.closed = true;
  }
  void send_stream(std::uint32_t stream, std::span<const std::uint8_t> d) override {
    s_.send(n_, stream, d);
  }
  void close_stream(std::uint32_t stream) override { s_.close(n_, stream); }

 private:
  SimStreams& s_;
  SimNode& n_;
  Ipv4 address_;
};

SimStreams::SimStreams(SimNet& net, SimCoordinator& coordinator) : net_(net), coord_(coordinator) {}

SimStreams::~SimStreams() = default;

void SimStreams::attach(SimNode& node, Ipv4 public_address) {
  ports_.push_back(std::make_unique<Port>(*this, node, public_address));
  node.set_tcp(ports_.back().get());
}

void SimStreams::open(SimNode& n, std::uint32_t punch, Ipv4 address, const Endpoint& /*assist*/,
                      const wire::AssistHello& hello) {
  const Endpoint pub{address, next_port_++};
  punches_[{&n, punch}] = Punch{pub, std::nullopt, false};
  net_.at(net_.now() + net_.latency,
          [this, pub, hello] { coord_.core().on_assist(net_.now(), pub, hello); });
}

void SimStreams::connect(SimNode& n, std::uint32_t punch, const Endpoint& to) {
  const Key from{&n, punch};
  if (auto d = syn_delay_.find(&n); d != syn_delay_.end() && d->second > Duration::zero()) {
    net_.at(net_.now() + d->second, [this, from, to] { depart(from, to); });
    return;
  }
  depart(from, to);
}

void SimStreams::depart(Key from, const Endpoint& to) {
  auto it = punches_.find(from);
  if (it == punches_.end() || it->second.closed) return;
  it->second.connected_to = to;
  ++syns;
  net_.at(net_.now() + net_.latency, [this, from, to] { arrive(from, to); });
}

void SimStreams::arrive(Key from, Endpoint to) {
  auto p = punches_.find(from);
  if (p == punches_.end() || p->second.closed || blocked) return;
  for (auto& [key, q] : punches_) {
    if (q.pub != to || q.closed) continue;
    if (q.connected_to == p->second.pub) return establish(from, key);
    break;
  }
  if (!rst) return;  // dropped by the peer's NAT
  ++resets;
  p->second.connected_to.reset();  // the RST kills the attempt (and its conntrack entry)
  net_.at(net_.now() + net_.latency,
          [this, from] { from.first->node().on_punch_failed(net_.now(), from.second); });
}

void SimStreams::establish(Key a, Key b) {
  const Endpoint pa = punches_[a].pub, pb = punches_[b].pub;
  // Both ends are open before either node hears of it: a node starts its handshake at once.
  streams_[a] = b;
  streams_[b] = a;
  const bool ok_a = a.first->node().on_punch_established(net_.now(), a.second, false, pb);
  const bool ok_b = b.first->node().on_punch_established(net_.now(), b.second, false, pa);
  if (!ok_a) close(*a.first, a.second);
  if (ok_a && !ok_b) close(*b.first, b.second);
}

void SimStreams::send(SimNode& n, std::uint32_t stream, std::span<const std::uint8_t> d) {
  auto it = streams_.find({&n, stream});
  if (it == streams_.end()) return;
  ++frames;
  const Key to = it->second;
  std::vector<std::uint8_t> data(d.begin(), d.end());
  net_.at(net_.now() + net_.latency, [this, to, data = std::move(data)] {
    if (!streams_.contains(to)) return;  // reset meanwhile
    std::vector<std::uint8_t> buf(kBufferSize);
    std::memcpy(buf.data() + kHeadroom, data.data(), data.size());
    to.first->node().on_stream(net_.now(), to.second,
                               PacketView(buf.data(), buf.size(), kHeadroom, data.size()));
  });
}

void SimStreams::close(SimNode& n, std::uint32_t stream) {
  auto it = streams_.find({&n, stream});
  if (it == streams_.end()) return;
  const Key peer = it->second;
  streams_.erase(it);
  streams_.erase(peer);
  net_.at(net_.now() + net_.latency, [this, peer] { closed_at(peer); });
}

void SimStreams::closed_at(Key k) {
  k.first->node().on_stream_closed(net_.now(), k.second);
}

void SimStreams::kill() {
  std::vector<Key> ends;
  for (const auto& [key, peer] : streams_) ends.push_back(key);
  streams_.clear();
  for (Key k : ends) net_.at(net_.now(), [this, k] { closed_at(k); });
}

}  // namespace p2p::sim
