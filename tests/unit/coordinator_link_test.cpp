// core::CoordinatorSet and its CoordinatorLinks against the real coordinator core
// (coord::Coordinator), wired back to back in one process on a virtual clock: the XX handshake
// and registration, re-registration at the coordinator's interval, reconnecting after silence,
// registering with several coordinators at once, the relay's choice by RTT and its failover,
// detecting a restarted coordinator, merged lookups, refusal and its retry, the relay's wrapping.
//
// The wiring is instantaneous (zero latency) unless a coordinator is given a one-way `delay`:
// everything else is delivered at the same virtual instant, until nothing is left in flight. A
// coordinator can be silenced (it neither receives nor answers), made to drop its Pongs (as an
// older coordinator that does not answer Pings), or restarted (a fresh core: every session
// forgotten). Every datagram is logged with its time for the asserts.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "coordinator/core/coordinator.hpp"
#include "daemon/core/coordinator_set.hpp"
#include "net/packet.hpp"
#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::core {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

using sim::ep;
using sim::ip;

constexpr UnixTime kUnixStart = 1'800'000'000;
// A Ping or Pong in its Data datagram: what tests tell apart from Registers by size.
constexpr std::size_t kPingSize = wire::kDataHeaderSize + 5 + 16;
const Time kT0 = Time{} + 1000s;

std::shared_ptr<spdlog::logger> null_logger(const std::string& name) {
  return std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_st>());
}

struct Datagram {
  Time at;
  Time deliver;
  Endpoint from;
  Endpoint to;
  Bytes data;
  coord::ConnectionId tcp = 0;  // carried by this main-port connection, 0: UDP
  wire::DatagramKind kind() const { return wire::classify(data); }
};

class Wire;

// A coordinator core on a public endpoint.
class CoordHost : public coord::CoordinatorEffects {
 public:
  CoordHost(Wire& net, Endpoint at, crypto::Identity id, const crypto::CaCertificate& ca,
            coord::CoordinatorSettings settings);
  void send_udp(coord::ServerSocket, const Endpoint& to, std::span<const std::uint8_t> d) override;
  void send_tcp(coord::ConnectionId c, std::span<const std::uint8_t> d) override;
  void fill_random(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
  }
  std::uint64_t unix_nanos() override;

  // A fresh core with the same settings: it has forgotten every node.
  void restart(crypto::Identity id);

  Wire& net;
  Endpoint endpoint;
  bool silent = false;      // neither receives nor sends
  bool drop_pongs = false;  // answers no Ping (its Pongs are lost)
  Duration delay{};         // one way, each direction
  const crypto::CaCertificate& ca;
  coord::CoordinatorSettings settings;
  std::unique_ptr<coord::Coordinator> core;

 private:
  std::mt19937_64 rng_{99};
};

// A node's CoordinatorLink with everything it needs; `seen_as` is its public endpoint (behind
// a NAT: the coordinator sees that, not its interface address).
class NodeHost : public NodeEffects, public CoordinatorEvents {
 public:
  NodeHost(Wire& net, Endpoint seen_as, crypto::Identity id, const crypto::CaCertificate& ca,
           std::vector<Endpoint> coordinators);
  // NodeEffects
  void send_udp(const Endpoint& to, std::span<const std::uint8_t> d) override;
  void write_tun(std::span<const std::uint8_t>) override {}
  void fill_random(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
  }
  std::uint64_t unix_nanos() override;
  // CoordinatorEvents
  void on_registered(Time) override { ++registered_events; }
  void on_introduce(Time, const wire::Introduce& m) override { introduced.push_back(m); }
  void on_peer_unknown(Time, const wire::PeerUnknown& m) override { unknown.push_back(m); }
  void on_relayed(Time, const Endpoint& via, PacketView d) override {
    relayed.emplace_back(d.span().begin(), d.span().end());
    relayed_via.push_back(via);
  }
  // What the Node does with a datagram from the coordinator's endpoint.
  void receive(Time now, Bytes d);

  Wire& net;
  Endpoint seen_as;
  crypto::Identity identity;
  const crypto::CaCertificate& ca;
  std::shared_ptr<spdlog::logger> log = null_logger("link");
  DropCounters drops;
  SessionTable table{*this};
  CoordinatorSet link;
  int registered_events = 0;
  std::vector<Bytes> relayed;
  coord::ConnectionId tcp = 0;  // non-zero: the node reaches the coordinator over TCP
  std::vector<Endpoint> relayed_via;
  std::vector<wire::Introduce> introduced;
  std::vector<wire::PeerUnknown> unknown;

 private:
  std::mt19937_64 rng_{7};
};

// Moves datagrams between the hosts and drives their timers.
class Wire {
 public:
  Time now = kT0;
  std::vector<Datagram> log;
  std::vector<std::unique_ptr<CoordHost>> coords;
  std::vector<std::unique_ptr<NodeHost>> nodes;

  void send(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d,
            coord::ConnectionId tcp = 0) {
    Duration delay{};
    for (auto& c : coords) {
      if (c->endpoint == from || c->endpoint == to) delay += c->delay;
    }
    log.push_back({now, now + delay, from, to, Bytes(d.begin(), d.end()), tcp});
    in_flight_.push_back(log.back());
  }

  // Delivers everything in flight due at `now` (and what that provokes).
  void pump() {
    for (int guard = 0;; ++guard) {
      ASSERT_LT(guard, 10000) << "ping-pong at one instant";
      auto due = std::find_if(in_flight_.begin(), in_flight_.end(),
                              [&](const Datagram& x) { return x.deliver <= now; });
      if (due == in_flight_.end()) break;
      Datagram d = std::move(*due);
      in_flight_.erase(due);
      for (auto& c : coords) {
        if (c->endpoint == d.to && !c->silent) {
          Bytes buf(kHeadroom + d.data.size() + kTailroom);
          std::copy(d.data.begin(), d.data.end(), buf.begin() + kHeadroom);
          PacketView v(buf.data(), buf.size(), kHeadroom, d.data.size());
          if (d.tcp != 0) {
            c->core->on_tcp(now, d.tcp, d.from, v);
          } else {
            c->core->on_udp(now, coord::ServerSocket::kPrimary, d.from, v);
          }
        }
      }
      for (auto& n : nodes) {
        if (n->seen_as == d.to && n->tcp == d.tcp) n->receive(now, d.data);
      }
    }
  }

  // Runs every timer due until `until` (inclusive), delivering as it goes.
  void run_until(Time until) {
    pump();
    for (int guard = 0; guard < 100000; ++guard) {
      Time next = Time::max();
      for (auto& n : nodes) next = std::min(next, n->link.deadline());
      for (auto& c : coords) next = std::min(next, c->core->next_deadline());
      for (auto& d : in_flight_) next = std::min(next, d.deliver);
      if (next > until) break;
      now = std::max(now, next);
      for (auto& n : nodes) {
        if (n->link.deadline() <= now) n->link.tick(now);
      }
      for (auto& c : coords) {
        if (c->core->next_deadline() <= now) c->core->on_tick(now);
      }
      pump();
    }
    now = std::max(now, until);
  }
  void run_for(Duration d) { run_until(now + d); }

  // Datagrams of `kind` sent to `to` at or after `since`.
  std::vector<Datagram> sent(const Endpoint& to, wire::DatagramKind kind, Time since = {}) const {
    std::vector<Datagram> out;
    for (const auto& d : log) {
      if (d.to == to && d.kind() == kind && d.at >= since) out.push_back(d);
    }
    return out;
  }

  // Data datagrams to `to` larger than a Ping (Registers, requests, relayed) since `since`.
  std::vector<Datagram> registers(const Endpoint& to, Time since) const {
    std::vector<Datagram> out;
    for (const auto& d : sent(to, wire::DatagramKind::kData, since)) {
      if (d.data.size() > kPingSize) out.push_back(d);
    }
    return out;
  }

  UnixTime unix_now() const {
    return kUnixStart + std::chrono::duration_cast<std::chrono::seconds>(now - kT0).count();
  }

 private:
  std::vector<Datagram> in_flight_;
};

CoordHost::CoordHost(Wire& w, Endpoint at, crypto::Identity id, const crypto::CaCertificate& ca_,
                     coord::CoordinatorSettings s)
    : net(w), endpoint(at), ca(ca_), settings(std::move(s)) {
  restart(std::move(id));
}

void CoordHost::restart(crypto::Identity id) {
  core = std::make_unique<coord::Coordinator>(std::move(id), ca, settings, std::nullopt, *this,
                                              null_logger("coordinator"));
}

void CoordHost::send_udp(coord::ServerSocket, const Endpoint& to, std::span<const std::uint8_t> d) {
  // A Pong is the only 37-byte Data a coordinator sends (16 header + 5 + 16 tag).
  if (drop_pongs && wire::classify(d) == wire::DatagramKind::kData && d.size() == kPingSize) return;
  if (!silent) net.send(endpoint, to, d);
}

void CoordHost::send_tcp(coord::ConnectionId c, std::span<const std::uint8_t> d) {
  for (auto& n : net.nodes) {
    if (!silent && n->tcp == c) net.send(endpoint, n->seen_as, d, c);
  }
}

std::uint64_t CoordHost::unix_nanos() {
  return static_cast<std::uint64_t>(net.unix_now()) * 1'000'000'000ull;
}

NodeHost::NodeHost(Wire& w, Endpoint seen, crypto::Identity id, const crypto::CaCertificate& ca_,
                   std::vector<Endpoint> coordinators)
    : net(w),
      seen_as(seen),
      identity(std::move(id)),
      ca(ca_),
      link(
          identity, std::move(coordinators), 25s,
          [this](const crypto::Certificate& c) {
            return crypto::verify(c, ca, net.unix_now(),
                                  crypto::VerifyPolicy{crypto::Role::coordinator, {}});
          },
          table, *this, *this, *log, drops) {
  link.set_network_key(ca.public_key);
}

void NodeHost::send_udp(const Endpoint& to, std::span<const std::uint8_t> d) {
  net.send(seen_as, to, d, tcp);
}

std::uint64_t NodeHost::unix_nanos() {
  return static_cast<std::uint64_t>(net.unix_now()) * 1'000'000'000ull +
         static_cast<std::uint64_t>((net.now - kT0) % 1s / 1ns);
}

void NodeHost::receive(Time now, Bytes d) {
  // As the shell hands it over: in a buffer with headroom and tailroom.
  Bytes buf(kHeadroom + d.size() + kTailroom);
  std::copy(d.begin(), d.end(), buf.begin() + kHeadroom);
  PacketView v(buf.data(), buf.size(), kHeadroom, d.size());
  switch (wire::classify(d)) {
    case wire::DatagramKind::kHandshakeResp: {
      auto r = wire::parse_handshake_resp(d);
      auto owner = r ? table.find(r->receiver_index) : std::nullopt;
      if (owner && owner->coordinator) link.on_handshake_resp(now, *r);
      break;
    }
    case wire::DatagramKind::kData: {
      auto h = wire::parse_data(v.span());
      auto owner = h ? table.find(h->receiver_index) : std::nullopt;
      if (!owner || !owner->coordinator) break;
      link.on_data(now, *h, v.sub(wire::kDataHeaderSize, v.size() - wire::kDataHeaderSize));
      break;
    }
    case wire::DatagramKind::kRelayed: {
      auto f = wire::parse_relay(v.span());
      auto owner = f ? table.find(f->receiver_index) : std::nullopt;
      if (!owner || !owner->coordinator) break;
      link.on_relayed_frame(now, *f, v);
      break;
    }
    case wire::DatagramKind::kCookieReply: {
      auto r = wire::parse_cookie_reply(d);
      if (r) link.on_cookie_reply(now, *r);
      break;
    }
    default: break;
  }
}

const Endpoint kCoordA = ep("203.0.113.10:7400");
const Endpoint kCoordB = ep("203.0.113.20:7400");
const Endpoint kNode1 = ep("198.51.100.2:40001");  // as the coordinator sees it
const Endpoint kNode2 = ep("198.51.100.3:40002");

class CoordinatorLinkTest : public ::testing::Test {
 protected:
  Wire net;
  sim::TestCa ca{kUnixStart};
  coord::CoordinatorSettings settings;

  CoordinatorLinkTest() { settings.register_interval = 10s; }

  CoordHost& coordinator(Endpoint at, const char* name = "coord") {
    net.coords.push_back(std::make_unique<CoordHost>(
        net, at, ca.issue(name, "10.77.0.1/24", crypto::Role::coordinator), ca.cert, settings));
    return *net.coords.back();
  }
  NodeHost& node(Endpoint seen_as, const char* name, const char* vip,
                 std::vector<Endpoint> coordinators = {kCoordA}) {
    return node_with(seen_as, ca.issue(name, vip), std::move(coordinators));
  }
  NodeHost& node_with(Endpoint seen_as, crypto::Identity id,
                      std::vector<Endpoint> coordinators = {kCoordA}) {
    net.nodes.push_back(
        std::make_unique<NodeHost>(net, seen_as, std::move(id), ca.cert, std::move(coordinators)));
    return *net.nodes.back();
  }
  // Coordinators A and B (one-way delays da, db) and nodes n1, n2 listing both, started at
  // kT0 and run for `run`.
  std::tuple<CoordHost&, CoordHost&, NodeHost&, NodeHost&> two_by_two(Duration da, Duration db,
                                                                      Duration run) {
    auto& a = coordinator(kCoordA, "coord-a");
    auto& b = coordinator(kCoordB, "coord-b");
    a.delay = da;
    b.delay = db;
    auto& n1 = node(kNode1, "n1", "10.77.0.2/24", {kCoordA, kCoordB});
    auto& n2 = node(kNode2, "n2", "10.77.0.3/24", {kCoordA, kCoordB});
    n1.link.start(kT0);
    n2.link.start(kT0);
    net.run_until(kT0 + run);
    return {a, b, n1, n2};
  }
  std::string trace() const {
    std::string s;
    for (const auto& d : net.log) {
      s += std::to_string((d.at - kT0) / 1ms) + "ms " + d.from.to_string() + " -> " +
           d.to.to_string() + " kind=" + std::to_string(static_cast<int>(d.kind())) + " " +
           std::to_string(d.data.size()) + "B\n";
    }
    return s;
  }
};

// start() sends an XX initiation to the first coordinator; once the exchange completes the
// link is registered and observed() is the endpoint the coordinator saw (not the interface).
TEST_F(CoordinatorLinkTest, StartHandshakesAndRegisters) {
  coordinator(kCoordA);
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.set_local_endpoints(net.now, {ep("192.168.1.2:5000")});
  EXPECT_EQ(n.link.state_text(), "connecting");
  n.link.start(net.now);
  ASSERT_EQ(net.log.size(), 1u);  // nothing delivered yet
  EXPECT_EQ(net.log[0].to, kCoordA);
  EXPECT_EQ(net.log[0].kind(), wire::DatagramKind::kHandshakeInit);
  auto init = wire::parse_handshake_init(net.log[0].data);
  ASSERT_TRUE(init);
  EXPECT_EQ(init->pattern, wire::Pattern::kXX);
  EXPECT_EQ(n.table.find(init->sender_index), (SessionOwner{true, 0}));

  net.pump();
  EXPECT_TRUE(n.link.registered()) << trace();
  EXPECT_EQ(n.link.state_text(), "registered");
  EXPECT_EQ(n.registered_events, 1);
  ASSERT_TRUE(n.link.observed());
  EXPECT_EQ(*n.link.observed(), kNode1);
  EXPECT_EQ(n.link.endpoint(), kCoordA);
  // The coordinator has the node, with what it registered.
  auto st = net.coords[0]->core->status(net.now);
  ASSERT_EQ(st.nodes.size(), 1u);
  EXPECT_EQ(st.nodes[0].name, "n1");
  EXPECT_EQ(st.nodes[0].observed, kNode1);
  EXPECT_EQ(st.nodes[0].local_endpoints, std::vector<Endpoint>{ep("192.168.1.2:5000")});
  // Message 3 followed the response, then the Register.
  EXPECT_EQ(net.sent(kCoordA, wire::DatagramKind::kHandshakeFinal).size(), 1u);
  EXPECT_EQ(net.sent(kCoordA, wire::DatagramKind::kData).size(), 1u);
}

// Registered, the link registers again every interval the coordinator gave (10 s here).
TEST_F(CoordinatorLinkTest, ReRegistersAtTheInterval) {
  coordinator(kCoordA);
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.start(net.now);
  net.pump();
  ASSERT_TRUE(n.link.registered());
  const Time registered_at = net.now;
  net.run_until(registered_at + 35s);
  auto registers = net.registers(kCoordA, registered_at + 1ns);
  ASSERT_EQ(registers.size(), 3u) << trace();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(registers[i].at, registered_at + (i + 1) * 10s) << i;
  EXPECT_EQ(n.registered_events, 4);
  EXPECT_TRUE(n.link.registered());
}

// The interval is capped by our keepalive (25 s here) when the coordinator asks for more.
TEST_F(CoordinatorLinkTest, IntervalIsCappedByTheKeepalive) {
  settings.register_interval = 60s;
  coordinator(kCoordA);
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.start(net.now);
  net.pump();
  const Time registered_at = net.now;
  net.run_until(registered_at + 30s);
  auto registers = net.registers(kCoordA, registered_at + 1ns);
  ASSERT_EQ(registers.size(), 1u);
  EXPECT_EQ(registers[0].at, registered_at + 25s);
}

// A coordinator that never answers (down, unreachable, or of another network: it drops our
// initiations as blind garbage) is named in the state after three handshakes, and the state
// clears once one answers.
TEST_F(CoordinatorLinkTest, NoAnswerIsSaidAfterThreeHandshakes) {
  auto& c = coordinator(kCoordA);
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  c.silent = true;
  n.link.start(net.now);
  net.run_until(net.now + 10s + 1ms);
  EXPECT_EQ(n.link.state_text(), "connecting");
  net.run_until(net.now + 5s);
  EXPECT_EQ(n.link.state_text(),
            "connecting: no answer from " + kCoordA.to_string() + " to 3 handshakes");
  c.silent = false;
  net.run_until(net.now + 10s);
  EXPECT_TRUE(n.link.registered());
  EXPECT_EQ(n.link.state_text(), "registered");
}

// Three intervals without a word from a coordinator that answers no Ping (an older one): the
// link no longer says registered.
TEST_F(CoordinatorLinkTest, SilentCoordinatorIsNoLongerRegisteredAfterThreeIntervals) {
  auto& c = coordinator(kCoordA);
  c.drop_pongs = true;
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.start(net.now);
  net.pump();
  const Time last_heard = net.now;
  c.silent = true;
  net.run_until(last_heard + 30s);
  EXPECT_TRUE(n.link.registered());
  net.run_until(last_heard + 30s + 1ms);
  EXPECT_FALSE(n.link.registered());
  EXPECT_EQ(n.link.state_text(), "connecting");
}

// A coordinator that answers no Ping goes silent: Registers go unanswered, and after three
// intervals without a word the link starts a new handshake.
// (Before, the old session stayed current and the first new initiation left only at its rekey
// time, 120 s after it was made: a restarted coordinator left its nodes unregistered that long.)
TEST_F(CoordinatorLinkTest, SilentCoordinatorIsReconnectedAfterThreeIntervals) {
  auto& c = coordinator(kCoordA);
  c.drop_pongs = true;
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.start(net.now);
  net.pump();
  ASSERT_TRUE(n.link.registered());
  const Time last_heard = net.now;
  c.silent = true;
  net.run_until(last_heard + 30s);
  EXPECT_TRUE(net.sent(kCoordA, wire::DatagramKind::kHandshakeInit, last_heard + 1ns).empty())
      << "reconnected before three intervals of silence\n"
      << trace();
  net.run_until(last_heard + 31s);
  auto inits = net.sent(kCoordA, wire::DatagramKind::kHandshakeInit, last_heard + 1ns);
  ASSERT_FALSE(inits.empty()) << "no new handshake after 3 x 10 s of silence\n" << trace();
  EXPECT_LE(inits[0].at, last_heard + 30s + 1ms);
  EXPECT_FALSE(n.link.registered());
  // The coordinator answers again: registered anew.
  c.silent = false;
  net.run_until(net.now + 10s);
  EXPECT_TRUE(n.link.registered()) << trace();
}

// A revoked certificate: the coordinator refuses on an encrypted channel, the link says
// "refused: <reason>", and tries again from scratch 60 s later.
TEST_F(CoordinatorLinkTest, RefusedNodeSaysWhyAndRetriesAfterSixtySeconds) {
  auto id = ca.issue("revoked", "10.77.0.3/24");
  settings.revoked = {crypto::fingerprint(id.certificate)};
  coordinator(kCoordA);
  auto& n = node_with(kNode1, std::move(id));
  n.link.start(kT0);
  net.pump();
  EXPECT_FALSE(n.link.registered());
  EXPECT_EQ(n.link.state_text().rfind("refused: ", 0), 0u) << n.link.state_text();
  EXPECT_NE(n.link.state_text().find("revoked"), std::string::npos) << n.link.state_text();
  EXPECT_FALSE(n.link.has_session());
  EXPECT_EQ(n.table.size(), 0u);
  EXPECT_EQ(n.registered_events, 0);

  net.run_until(kT0 + 60s - 1ms);
  EXPECT_EQ(net.sent(kCoordA, wire::DatagramKind::kHandshakeInit).size(), 1u) << trace();
  net.run_until(kT0 + 60s);
  auto inits = net.sent(kCoordA, wire::DatagramKind::kHandshakeInit);
  ASSERT_EQ(inits.size(), 2u) << trace();
  EXPECT_EQ(inits[1].at, kT0 + 60s);
  EXPECT_EQ(n.link.state_text().rfind("refused: ", 0), 0u);  // refused again
}

// send_relayed() wraps a peer datagram for the coordinator, which hands it to the registered
// node it names; that node's link hands the inner datagram on, unchanged.
TEST_F(CoordinatorLinkTest, SendRelayedReachesTheOtherRegisteredNode) {
  auto& c = coordinator(kCoordA);
  auto& a = node(kNode1, "a", "10.77.0.2/24");
  auto& b = node(kNode2, "b", "10.77.0.3/24");
  a.link.start(net.now);
  b.link.start(net.now);
  net.pump();
  ASSERT_TRUE(a.link.registered() && b.link.registered());

  const Bytes inner{0x84, 0, 0, 0, 1, 2, 3, 4, 'o', 'p', 'a', 'q', 'u', 'e', '!', '!',
                    9,    9, 9, 9, 9, 9, 9, 9, 9,   9,   9,   9,   9,   9,   9,   9};
  Bytes buf(kHeadroom + inner.size() + kTailroom);
  std::copy(inner.begin(), inner.end(), buf.begin() + kHeadroom);
  PacketView v(buf.data(), buf.size(), kHeadroom, inner.size());
  const std::size_t before = net.log.size();
  ASSERT_TRUE(a.link.send_relayed(net.now, ip("10.77.0.3"), v));
  // What left a is one Relay frame for the coordinator: the inner datagram (end-to-end
  // sealed in real use) behind a 36-byte header, not re-encrypted.
  ASSERT_EQ(net.log.size(), before + 1);
  const Datagram sent = net.log.back();
  EXPECT_EQ(sent.to, kCoordA);
  EXPECT_EQ(sent.kind(), wire::DatagramKind::kRelay);
  ASSERT_EQ(sent.data.size(), inner.size() + wire::kRelayHeaderSize);
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), sent.data.begin() + wire::kRelayHeaderSize));
  net.pump();
  ASSERT_EQ(b.relayed.size(), 1u) << trace();
  EXPECT_EQ(b.relayed[0], inner);
  EXPECT_EQ(b.relayed_via[0], kCoordA);
  EXPECT_TRUE(a.relayed.empty());
  // What reached b is a Relayed frame of the same size, naming a.
  auto to_b = net.sent(kNode2, wire::DatagramKind::kRelayed);
  ASSERT_EQ(to_b.size(), 1u);
  auto f = wire::parse_relay(to_b[0].data);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vip, ip("10.77.0.2").value);
  EXPECT_EQ(to_b[0].data.size(), sent.data.size());

  // The coordinator forwards nothing it cannot authenticate: the frame again (a replay),
  // with another target, with the inner datagram a byte longer or shorter, or with a pad
  // byte set; and b refuses a Relayed frame replayed or altered on its way.
  auto inject = [&](Bytes d, const Endpoint& to, const Endpoint& from) {
    net.send(from, to, d);
    net.pump();
  };
  inject(sent.data, kCoordA, kNode1);
  Bytes other = sent.data;
  other[19] ^= 1;  // the vip's last byte
  inject(other, kCoordA, kNode1);
  Bytes longer = sent.data;
  longer.push_back(0);
  inject(longer, kCoordA, kNode1);
  Bytes shorter = sent.data;
  shorter.pop_back();
  inject(shorter, kCoordA, kNode1);
  Bytes pad = sent.data;
  pad[2] = 1;
  inject(pad, kCoordA, kNode1);
  EXPECT_EQ(net.sent(kNode2, wire::DatagramKind::kRelayed).size(), 1u) << trace();
  const auto failed_before = b.drops.decrypt_failed;
  inject(to_b[0].data, kNode2, kCoordA);
  EXPECT_EQ(b.relayed.size(), 1u);
  EXPECT_EQ(b.drops.decrypt_failed, failed_before + 1);  // the replay
  Bytes from_a = to_b[0].data;
  from_a[19] ^= 1;  // "from" someone else
  inject(from_a, kNode2, kCoordA);
  EXPECT_EQ(b.relayed.size(), 1u);
  EXPECT_EQ(b.drops.decrypt_failed, failed_before + 2);
  // A Relay frame is the coordinator's to receive, never a node's.
  const auto malformed_before = c.core->status(net.now).malformed;
  inject(to_b[0].data, kCoordA, kNode1);
  EXPECT_EQ(c.core->status(net.now).malformed, malformed_before + 1);
  // To an address nobody registered: wrapped and sent, dropped by the coordinator.
  Bytes buf2(kHeadroom + inner.size() + kTailroom);
  std::copy(inner.begin(), inner.end(), buf2.begin() + kHeadroom);
  PacketView v2(buf2.data(), buf2.size(), kHeadroom, inner.size());
  EXPECT_TRUE(a.link.send_relayed(net.now, ip("10.77.0.9"), v2));
  net.pump();
  EXPECT_EQ(b.relayed.size(), 1u);
}

// A node whose datagrams come over a TCP connection to the main port registers the same way,
// and everything for it goes back over that connection, never to its endpoint over UDP; the
// relay forwards between it and a UDP node both ways.
TEST_F(CoordinatorLinkTest, TcpCarriedNodeRegistersAndIsRelayedToAndFromUdp) {
  auto& c = coordinator(kCoordA);
  auto& a = node(kNode1, "a", "10.77.0.2/24");
  auto& b = node(kNode2, "b", "10.77.0.3/24");
  a.tcp = 17;
  a.link.start(net.now);
  b.link.start(net.now);
  net.pump();
  ASSERT_TRUE(a.link.registered() && b.link.registered()) << trace();
  EXPECT_TRUE(c.core->tcp_authenticated(17));
  EXPECT_FALSE(c.core->tcp_authenticated(18));
  for (const auto& d : net.log) {
    if (d.to == kNode1) {
      EXPECT_EQ(d.tcp, 17u) << "an answer to the TCP node went over UDP";
    }
  }
  auto st = c.core->status(net.now);
  ASSERT_EQ(st.nodes.size(), 2u);
  EXPECT_EQ(st.nodes[0].tcp + st.nodes[1].tcp, 1);

  const Bytes inner{0x84, 0, 0, 0, 1, 2, 3, 4, 'o', 'p', 'a', 'q', 'u', 'e', '!', '!',
                    9,    9, 9, 9, 9, 9, 9, 9, 9,   9,   9,   9,   9,   9,   9,   9};
  auto relay = [&](NodeHost& from, const char* to) {
    Bytes buf(kHeadroom + inner.size() + kTailroom);
    std::copy(inner.begin(), inner.end(), buf.begin() + kHeadroom);
    PacketView v(buf.data(), buf.size(), kHeadroom, inner.size());
    ASSERT_TRUE(from.link.send_relayed(net.now, ip(to), v));
    net.pump();
  };
  relay(a, "10.77.0.3");
  ASSERT_EQ(b.relayed.size(), 1u) << trace();
  EXPECT_EQ(b.relayed[0], inner);
  relay(b, "10.77.0.2");
  ASSERT_EQ(a.relayed.size(), 1u) << trace();
  EXPECT_EQ(a.relayed[0], inner);
  EXPECT_EQ(net.log.back().tcp, 17u);

  // The connection closes: it no longer counts as authenticated.
  c.core->on_tcp_closed(17);
  EXPECT_FALSE(c.core->tcp_authenticated(17));
}

// An initiation over TCP gets no answer larger than itself, like one over UDP: a short one
// gets nothing at all.
TEST_F(CoordinatorLinkTest, UnpaddedInitiationOverTcpIsNotAnswered) {
  auto& c = coordinator(kCoordA);
  auto& a = node(kNode1, "a", "10.77.0.2/24");
  a.tcp = 5;
  c.silent = true;  // the whole initiation is lost; only the cut one arrives
  a.link.start(net.now);
  net.pump();
  c.silent = false;
  ASSERT_EQ(net.log.size(), 1u);
  Bytes init = net.log[0].data;
  init.resize(init.size() - 40);
  net.log.clear();
  net.send(kNode1, kCoordA, init, 5);
  net.pump();
  EXPECT_EQ(net.log.size(), 1u) << trace();
  EXPECT_EQ(c.core->status(net.now).init_unpadded, 1u);
}

// Without a session there is nothing to wrap with.
TEST_F(CoordinatorLinkTest, SendRelayedWithoutASessionFails) {
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  Bytes buf(kHeadroom + 8 + kTailroom);
  PacketView v(buf.data(), buf.size(), kHeadroom, 8);
  EXPECT_FALSE(n.link.send_relayed(net.now, ip("10.77.0.3"), v));
  EXPECT_TRUE(net.log.empty());
}

// ---- Several coordinators

// Sends a small opaque datagram from `from` to `to_vip` through `from`'s relay; true if sent.
bool relay_one(Wire& net, NodeHost& from, Ipv4 to_vip) {
  Bytes buf(kHeadroom + 32 + kTailroom, 0x84);
  return from.link.send_relayed(net.now, to_vip, PacketView(buf.data(), buf.size(), kHeadroom, 32));
}

// A node registers with every coordinator at once, one session each.
TEST_F(CoordinatorLinkTest, RegistersWithEveryCoordinatorAtOnce) {
  coordinator(kCoordA, "coord-a");
  coordinator(kCoordB, "coord-b");
  auto& n = node(kNode1, "n1", "10.77.0.2/24", {kCoordA, kCoordB});
  n.link.start(kT0);
  EXPECT_EQ(net.sent(kCoordA, wire::DatagramKind::kHandshakeInit).size(), 1u);
  EXPECT_EQ(net.sent(kCoordB, wire::DatagramKind::kHandshakeInit).size(), 1u);
  net.run_until(kT0 + 1s);
  EXPECT_EQ(net.coords[0]->core->status(net.now).nodes.size(), 1u);
  EXPECT_EQ(net.coords[1]->core->status(net.now).nodes.size(), 1u);
  auto st = n.link.status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].endpoint, kCoordA);
  EXPECT_EQ(st[1].endpoint, kCoordB);
  for (const auto& c : st) {
    EXPECT_EQ(c.state, "registered");
    EXPECT_TRUE(c.rtt.has_value());  // the first Ping leaves at registration
  }
  EXPECT_EQ(st[0].relay + st[1].relay, 1);
  EXPECT_EQ(n.table.size(), 2u);  // two sessions, one index each
}

// Two nodes that list the same coordinators find each other whichever is up; a lookup asked of
// both is answered once (the first Introduce), and "unknown" only once both have said so.
TEST_F(CoordinatorLinkTest, NodesFindEachOtherWhicheverCoordinatorIsUp) {
  auto& a = coordinator(kCoordA, "coord-a");
  auto& b = coordinator(kCoordB, "coord-b");
  a.silent = true;
  auto& n1 = node(kNode1, "n1", "10.77.0.2/24", {kCoordA, kCoordB});
  auto& n2 = node(kNode2, "n2", "10.77.0.3/24", {kCoordA, kCoordB});
  n1.link.start(kT0);
  n2.link.start(kT0);
  net.run_until(kT0 + 1s);
  ASSERT_TRUE(n1.link.registered() && n2.link.registered());
  EXPECT_EQ(n1.link.endpoint(), kCoordB);
  ASSERT_TRUE(n1.link.send(net.now, wire::PeerRequest{1, ip("10.77.0.3")}));
  net.run_until(net.now + 1s);
  ASSERT_EQ(n1.introduced.size(), 1u) << trace();
  // B goes, A comes: the nodes register with A within its handshake retry (5 s).
  b.silent = true;
  a.silent = false;
  net.run_until(net.now + 6s);
  auto st = n1.link.status();
  EXPECT_EQ(st[0].state, "registered");
  EXPECT_NE(st[1].state, "registered");  // lost: it answered Pings before and now none
  EXPECT_EQ(n1.link.endpoint(), kCoordA);
  ASSERT_TRUE(n1.link.send(net.now, wire::PeerRequest{2, ip("10.77.0.3")}));
  net.run_until(net.now + 1s);
  ASSERT_EQ(n1.introduced.size(), 2u);
  // Both up: asked of both, introduced once.
  b.silent = false;
  net.run_until(net.now + 6s);
  ASSERT_EQ(n1.link.status()[1].state, "registered");
  ASSERT_TRUE(n1.link.send(net.now, wire::PeerRequest{3, ip("10.77.0.3")}));
  net.run_until(net.now + 1s);
  EXPECT_EQ(n1.introduced.size(), 3u);
  EXPECT_EQ(n2.introduced.size(), 4u);  // unsolicited ones (request 0) are each passed on
  // An address neither knows: one PeerUnknown, after both answered.
  ASSERT_TRUE(n1.link.send(net.now, wire::PeerRequest{4, ip("10.77.0.9")}));
  net.run_until(net.now + 1s);
  ASSERT_EQ(n1.unknown.size(), 1u);
  EXPECT_EQ(n1.unknown[0].request_id, 4u);
}

// The relay is the coordinator with the lowest measured RTT; relayed datagrams go through it.
TEST_F(CoordinatorLinkTest, RelaysThroughTheCoordinatorWithTheLowestRtt) {
  auto [a, b, n1, n2] = two_by_two(20ms, 5ms, 7s);
  ASSERT_NE(n1.link.relay(), nullptr);
  EXPECT_EQ(n1.link.relay()->endpoint(), kCoordB) << trace();
  EXPECT_EQ(*n1.link.relay()->rtt(), 10ms);
  EXPECT_EQ(*n1.link.status()[0].rtt, 40ms);
  EXPECT_TRUE(n1.link.status()[1].relay);
  ASSERT_TRUE(relay_one(net, n1, ip("10.77.0.3")));
  net.run_until(net.now + 100ms);
  ASSERT_EQ(n2.relayed_via.size(), 1u);
  EXPECT_EQ(n2.relayed_via[0], kCoordB);
  // B slows down past A (by more than the margin): the relay moves to A.
  b.delay = 50ms;
  net.run_until(net.now + 60s);
  EXPECT_EQ(n1.link.relay()->endpoint(), kCoordA);
}

// The relay coordinator dies: the relay moves to the other within one Ping interval and
// timeout (3 s + 1 s), and relayed traffic flows through it.
TEST_F(CoordinatorLinkTest, RelayFailsOverWithinSecondsWhenItsCoordinatorDies) {
  auto [a, b, n1, n2] = two_by_two(10ms, 1ms, 10s);
  ASSERT_EQ(n1.link.relay()->endpoint(), kCoordB);
  const Time died = net.now;
  b.silent = true;
  Time switched = Time::max();
  while (net.now < died + 10s) {
    net.run_until(net.now + 100ms);
    if (n1.link.relay() && n1.link.relay()->endpoint() == kCoordA &&
        n2.link.relay()->endpoint() == kCoordA) {
      switched = net.now;
      break;
    }
  }
  ASSERT_NE(switched, Time::max()) << trace();
  EXPECT_LE(switched - died, 4100ms);
  std::printf("relay failover after the relay coordinator died: %.1f s (virtual)\n",
              std::chrono::duration<double>(switched - died).count());
  ASSERT_TRUE(relay_one(net, n1, ip("10.77.0.3")));
  net.run_until(net.now + 100ms);
  ASSERT_EQ(n2.relayed_via.size(), 1u);
  EXPECT_EQ(n2.relayed_via[0], kCoordA);
  // Every coordinator gone: no relay, and the link says so; one back: registered again.
  a.silent = true;
  net.run_until(net.now + 8s);
  EXPECT_FALSE(n1.link.registered());
  EXPECT_EQ(n1.link.relay(), nullptr);
  EXPECT_FALSE(relay_one(net, n1, ip("10.77.0.3")));
  b.silent = false;
  net.run_until(net.now + 6s);
  EXPECT_TRUE(n1.link.registered());
  ASSERT_NE(n1.link.relay(), nullptr);
  EXPECT_EQ(n1.link.relay()->endpoint(), kCoordB);
}

// A coordinator restarted in 1.5 s has forgotten every session. Its nodes notice within a few
// seconds (three Pings unanswered), handshake again, and relayed traffic flows again well
// within 10 s of its return (it took ~77 s when only 75 s of silence was noticed).
TEST_F(CoordinatorLinkTest, RestartedCoordinatorIsNoticedAndRelaysAgainWithinSeconds) {
  auto& c = coordinator(kCoordA);
  c.delay = 2ms;
  auto& n1 = node(kNode1, "n1", "10.77.0.2/24");
  auto& n2 = node(kNode2, "n2", "10.77.0.3/24");
  n1.link.start(kT0);
  n2.link.start(kT0);
  net.run_until(kT0 + 10s + 500ms);  // mid-way between two Pings
  ASSERT_TRUE(n1.link.registered() && n2.link.registered());
  c.silent = true;
  net.run_until(net.now + 1500ms);
  c.restart(ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator));
  c.silent = false;
  const Time back = net.now;
  Time flows = Time::max();
  while (net.now < back + 20s) {
    const std::size_t before = n2.relayed.size();
    if (relay_one(net, n1, ip("10.77.0.3"))) {
      net.run_until(net.now + 10ms);
      if (n2.relayed.size() > before) {
        flows = net.now;
        break;
      }
    }
    net.run_until(net.now + 100ms);
  }
  ASSERT_NE(flows, Time::max()) << trace();
  EXPECT_LE(flows - back, 10s);
  EXPECT_LE(flows - back, 5s);  // 3 s Ping interval + 3 x 1 s misses - 1.5 s down, + RTTs
  std::printf("relayed traffic flows again %.1f s (virtual) after a 1.5 s restart\n",
              std::chrono::duration<double>(flows - back).count());
}

// Registered, a node Pings every 3 s; each Ping gets one Pong of the same size (the cost per
// node at the coordinator: one 37-byte datagram each way every 3 s, no state).
TEST_F(CoordinatorLinkTest, PingsEveryThreeSecondsAnsweredOneForOne) {
  coordinator(kCoordA);
  auto& n = node(kNode1, "n1", "10.77.0.2/24");
  n.link.start(kT0);
  net.run_until(kT0 + 31s);
  // Registered at kT0: Pings at 0, 3, ..., 30 s: 11 of them, each answered by one Pong.
  std::size_t pings = 0, pongs = 0;
  for (const auto& d : net.log) {
    if (d.kind() != wire::DatagramKind::kData || d.data.size() != kPingSize) continue;
    (d.to == kCoordA ? pings : pongs) += 1;
  }
  EXPECT_EQ(pings, 11u);
  EXPECT_EQ(pongs, 11u);
  EXPECT_TRUE(n.link.relay()->healthy());
}

}  // namespace
}  // namespace p2p::core
