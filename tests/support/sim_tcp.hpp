// SimTcp: TCP at the level of SYN, SYN-ACK, ACK and RST through NAT models, on a virtual
// clock - enough to test hole punching by simultaneous open without root or sleeping.
// (The data-carrying TCP model is tcpa's; this one stops once a connection is established.)
//
// - Hosts: public (the coordinator's assist port) or behind a NAT. A host has listeners and
//   connections keyed by (local port, remote endpoint), and behaves as Linux does: a SYN for a
//   connection in SYN_SENT is a simultaneous open (SYN-ACK back, both sides end established
//   as *connected*); a SYN for a listening port opens an accepted connection; a SYN for
//   nothing is answered with a RST; a RST kills a half-open connection. SYNs are retransmitted
//   after 1 s and 3 s, as the kernel's initial RTO does.
// - NATs: mapping and filtering as sim_net's NatModel (Behaviour), port preservation when
//   free, and what an unsolicited inbound SYN gets: silently dropped or answered with a RST.
// - Latency: `lan` between a host and its NAT, `wan` between public addresses.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/ip.hpp"
#include "net/time.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {

enum class Unsolicited { kDrop, kRst };

struct TcpNatModel {
  Behaviour mapping = Behaviour::kIndependent;
  Behaviour filtering = Behaviour::kAddressAndPort;
  Unsolicited unsolicited = Unsolicited::kDrop;

  static TcpNatModel port_restricted(Unsolicited u = Unsolicited::kDrop) {
    return {Behaviour::kIndependent, Behaviour::kAddressAndPort, u};
  }
  static TcpNatModel full_cone() { return {Behaviour::kIndependent, Behaviour::kIndependent}; }
  static TcpNatModel symmetric(Unsolicited u = Unsolicited::kDrop) {
    return {Behaviour::kAddressAndPort, Behaviour::kAddressAndPort, u};
  }
};

class SimTcp {
 public:
  using HostId = int;
  struct Events {
    // A connection completed: `inbound` when it was accepted on a listener.
    std::function<void(HostId, std::uint16_t local_port, const Endpoint& remote, bool inbound)>
        established;
    // A connect this host made was reset or given up.
    std::function<void(HostId, std::uint16_t local_port, const Endpoint& remote)> failed;
  };

  Duration lan = std::chrono::milliseconds(1);
  Duration wan = std::chrono::milliseconds(20);
  Events events;

  HostId add_public_host(Ipv4 address);
  // A NAT with public address `public_address`; returns the id hosts behind it name.
  int add_nat(Ipv4 public_address, TcpNatModel model);
  HostId add_host_behind(int nat, Ipv4 private_address);
  Ipv4 address(HostId h) const;

  void listen(HostId h, std::uint16_t port);
  void connect(HostId h, std::uint16_t local_port, const Endpoint& to);
  // Closes every connection and listener on the port, without sending anything (a closed
  // SYN_SENT socket just stops).
  void close_port(HostId h, std::uint16_t port);
  // Closes one connection (pending or not), silently.
  void close(HostId h, std::uint16_t port, const Endpoint& remote);

  Time now() const { return now_; }
  // Runs `fn` at `at` on the same timeline.
  void at(Time at, std::function<void()> fn);
  // Runs events until `done()` or `until`; true when done() became true.
  bool run_until(Time until, const std::function<bool()>& done);

  std::uint64_t syns_dropped = 0, rsts_from_nats = 0;
  std::vector<std::string> trace;

 private:
  enum Flags : std::uint8_t { kSyn = 1, kAck = 2, kRst = 4 };
  struct Segment {
    Endpoint from, to;
    std::uint8_t flags;
  };
  enum class ConnState { kSynSent, kSynReceived, kEstablished };
  struct Conn {
    ConnState state;
    bool inbound;
    int syns_sent = 1;
  };
  struct Host {
    Ipv4 address;
    int nat = -1;
    std::map<std::uint16_t, bool> listening;
    std::map<std::pair<std::uint16_t, Endpoint>, Conn> conns;
  };
  struct Mapping {
    Endpoint inside;
    std::vector<Endpoint> allowed;  // destinations it sent to (the filter)
  };
  struct Nat {
    Ipv4 public_address;
    TcpNatModel model;
    std::map<std::uint16_t, Mapping> by_public_port;
    std::uint16_t next_port = 61000;
  };

  void send_from_host(HostId h, const Segment& s);
  void deliver_public(const Segment& s);  // arrives at a public address
  void at_host(HostId h, const Segment& s);
  void at_nat_outbound(int nat, Segment s);
  void retransmit(HostId h, std::uint16_t port, Endpoint remote, int nth);
  std::optional<HostId> host_at(Ipv4 a) const;

  Time now_ = Time{} + std::chrono::seconds(1000);
  std::multimap<Time, std::function<void()>> queue_;
  std::vector<Host> hosts_;
  std::vector<Nat> nats_;
};

}  // namespace p2p::sim
