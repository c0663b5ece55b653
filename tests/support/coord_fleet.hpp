// CoordFleet: one Coordinator core and any number of nodes talking to it, each node a
// CoordinatorLink as p2pvpnd runs it, wired back to back without delay or loss on a virtual
// clock that moves only when told. For the coordinator's registry and limit tests and for
// the 100,000-node benchmark (tests/bench/), which is why it can time the coordinator's
// on_udp() alone (thread CPU time) and forget a node's client side once it has registered.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "coordinator/core/coordinator.hpp"
#include "daemon/core/coordinator_link.hpp"
#include "daemon/core/session_table.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {

class CoordFleet;

// A node's side: its link to the coordinator and what the coordinator told it.
class FleetNode : public core::NodeEffects, public core::CoordinatorEvents {
 public:
  FleetNode(CoordFleet& fleet, Endpoint seen_as, crypto::Identity id);
  // NodeEffects
  void send_udp(const Endpoint& to, std::span<const std::uint8_t> d) override;
  void write_tun(std::span<const std::uint8_t>) override {}
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;
  // CoordinatorEvents
  void on_registered(Time) override { ++registered; }
  void on_introduce(Time, const wire::Introduce& m) override { introductions.push_back(m); }
  void on_peer_unknown(Time, const wire::PeerUnknown& m) override { unknown.push_back(m); }
  void on_relayed(Time, const Endpoint&, PacketView) override { ++relayed; }
  void on_tcp_punch(Time, const wire::ControlMessage& m) override { punch_messages.push_back(m); }
  // A datagram from the coordinator.
  void receive(Time now, std::span<const std::uint8_t> d);
  Ipv4 vip() const { return identity.certificate.vip.address; }

  CoordFleet& fleet;
  Endpoint seen_as;
  crypto::Identity identity;
  std::shared_ptr<spdlog::logger> log;
  core::DropCounters drops;
  core::SessionTable table{*this};
  core::CoordinatorLink link;
  int registered = 0, relayed = 0;
  std::vector<wire::Introduce> introductions;
  std::vector<wire::PeerUnknown> unknown;
  std::vector<wire::ControlMessage> punch_messages;  // TcpPunchOffer, TcpPunchGo, TcpPunchFailed
};

class CoordFleet : public coord::CoordinatorEffects {
 public:
  static constexpr UnixTime kUnixStart = 1'800'000'000;
  static inline const Endpoint kCoordinator{Ipv4{0xCB007114}, 7400};  // 203.0.113.20

  explicit CoordFleet(coord::CoordinatorSettings settings);
  coord::Coordinator& core() { return *core_; }
  Time now() const { return now_; }
  const TestCa& ca() const { return ca_; }
  const std::shared_ptr<spdlog::logger>& node_log() const { return node_log_; }

  // A node with a fresh certificate for `name` and virtual IP `vip` (/16), seen by the
  // coordinator at `seen_as`; not yet connected.
  FleetNode& add(const std::string& name, Ipv4 vip, Endpoint seen_as);
  FleetNode& add(crypto::Identity id, Endpoint seen_as);
  // start()s the node's link and delivers until nothing is in flight.
  void connect(FleetNode& n);
  // Forgets the node's side (the coordinator still knows it): the benchmark's memory.
  void forget(FleetNode& n);
  // Delivers everything in flight, and what that causes, until nothing is.
  void deliver();
  // Moves the clock, ticking the coordinator and every node whenever one is due.
  void advance(Duration d);

  // coord::CoordinatorEffects
  void send_udp(wire::stun::ServerSocket, const Endpoint& to,
                std::span<const std::uint8_t> d) override;
  // The fleet's nodes all use UDP: an answer over TCP is a test failure.
  void send_tcp(coord::ConnectionId, std::span<const std::uint8_t>) override {
    ADD_FAILURE() << "CoordFleet has no TCP connections";
  }
  void fill_random(std::span<std::uint8_t> out) override;
  std::uint64_t unix_nanos() override;

  void to_coordinator(const Endpoint& from, std::span<const std::uint8_t> d);

  // Thread CPU time spent inside the coordinator's on_udp() while `timing` is set.
  bool timing = false;
  std::chrono::nanoseconds coordinator_cpu{0};
  std::uint64_t coordinator_datagrams = 0;  // handed to on_udp() while timing
  std::uint64_t datagrams_to_nodes = 0;

 private:
  struct Datagram {
    Endpoint from, to;
    std::vector<std::uint8_t> data;
  };

  Time now_ = Time{} + std::chrono::seconds(1000);
  std::mt19937_64 rng_{42};
  TestCa ca_{kUnixStart};
  std::shared_ptr<spdlog::logger> node_log_;
  std::unique_ptr<coord::Coordinator> core_;
  std::map<Endpoint, std::unique_ptr<FleetNode>> nodes_;
  std::deque<Datagram> in_flight_;
  std::vector<std::uint8_t> buffer_;
};

// A logger that drops everything without formatting it.
std::shared_ptr<spdlog::logger> silent_logger(const std::string& name);

}  // namespace p2p::sim
