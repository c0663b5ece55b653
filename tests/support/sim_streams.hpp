// SimStreams: TCP punching and peer streams for SimNodes, on SimNet's timeline: what the
// Node-level TCP path tests need (tests/unit/tcp_path_sim_test.cpp). Coarser than SimTcp
// (sim_tcp.hpp, which checks the SYN exchange itself through NAT models):
// - a punch port appears at one public endpoint per punch (the node's NAT address, a fresh
//   port); its assist hello reaches the coordinator's core one latency later;
// - a connect reaches the peer's punch port one latency later and completes the simultaneous
//   open if the peer's punch already connected towards it (each NAT has then seen its own
//   SYN); an earlier SYN is dropped, or with `rst` answered by a RST (on_punch_failed, and
//   the attempt is dead: a later SYN from the peer finds nothing until the node reconnects);
// - delay_syns(node, d) holds that node's SYNs back by d, so that the other side's SYN
//   arrives first (the recipe's "many NATs drop this SYN");
// - both ends of an open are told as connected; established streams carry frames in order
//   with the network's latency until a side closes them or kill() resets them all.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "tests/support/sim_net.hpp"

namespace p2p::sim {

class SimStreams {
 public:
  SimStreams(SimNet& net, SimCoordinator& coordinator);
  ~SimStreams();
  // Gives `node` TCP; its punch ports appear at `public_address`.
  void attach(SimNode& node, Ipv4 public_address);

  // Holds every SYN `node` sends back by `d` before it leaves (and opens its NAT's hole).
  void delay_syns(SimNode& node, Duration d) { syn_delay_[&node] = d; }
  bool rst = false;      // an unsolicited SYN is answered with a RST (else dropped)
  bool blocked = false;  // no SYN gets through at all
  // Resets every established stream (both ends see it close).
  void kill();
  std::size_t open_streams() const { return streams_.size() / 2; }
  std::uint64_t frames = 0, syns = 0, resets = 0;

 private:
  class Port;
  using Key = std::pair<SimNode*, std::uint32_t>;
  struct Punch {
    Endpoint pub;
    std::optional<Endpoint> connected_to;
    bool closed = false;
  };
  void open(SimNode& n, std::uint32_t punch, Ipv4 address, const Endpoint& assist,
            const wire::AssistHello& hello);
  void connect(SimNode& n, std::uint32_t punch, const Endpoint& to);
  void depart(Key from, const Endpoint& to);
  void arrive(Key from, Endpoint to);
  void establish(Key a, Key b);
  void send(SimNode& n, std::uint32_t stream, std::span<const std::uint8_t> d);
  void close(SimNode& n, std::uint32_t stream);
  void closed_at(Key k);

  SimNet& net_;
  SimCoordinator& coord_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::map<Key, Punch> punches_;
  std::map<Key, Key> streams_;  // each direction
  std::map<SimNode*, Duration> syn_delay_;
  std::uint16_t next_port_ = 40000;
};

}  // namespace p2p::sim
