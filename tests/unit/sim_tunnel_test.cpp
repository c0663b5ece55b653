// The tunnel through the simulated network: registration, lookup, handshake, encrypted
// traffic, refusals, rekey and expiry timers - whole nodes and a coordinator in one process
// on a virtual clock.
#include <gtest/gtest.h>

#include <algorithm>

#include "net/packet.hpp"
#include "tests/support/sim_helpers.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

struct World {
  SimNet net{7};
  TestCa ca{net.unix_now()};
  SimCoordinator* coord = nullptr;
  core::NodeSettings settings;

  explicit World(coord::CoordinatorSettings cs = {}) {
    coord = &net.add_coordinator(ep("203.0.113.10:7400"), ip("203.0.113.11"),
                                 ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator),
                                 ca.cert, std::move(cs));
    settings.coordinators = {ep("203.0.113.10:7400")};
  }
  SimNode& node(const std::string& name, const char* vip, const char* socket, int nat = -1) {
    return net.add_node(name, nat, ep(socket), ca.issue(name, vip), ca.cert, settings);
  }
  bool registered(SimNode& n) {
    return net.run_until([&] { return n.node().registered(); }, 10s);
  }
};

TEST(SimTunnel, TwoPublicNodesReachEachOtherByVirtualIp) {
  World w;
  auto& a = w.node("laptop", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("home-pc", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a));
  ASSERT_TRUE(w.registered(b));

  Time t0 = w.net.now();
  a.send_udp_to(b.vip(), "hello home");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "hello home"); }, 5s)) << w.net.trace_tail();
  auto first_packet = w.net.now() - t0;
  // PeerRequest + introduction + handshake over the relay: a few one-way latencies (20 ms).
  EXPECT_LT(first_packet, 300ms);

  b.send_udp_to(a.vip(), "hello laptop");
  ASSERT_TRUE(w.net.run_until([&] { return received(a, "hello laptop"); }, 5s));

  // Both public: a direct path is confirmed quickly and becomes the path.
  ASSERT_TRUE(w.net.run_until(
      [&] {
        auto p = peer_status(a.node().status(w.net.now()), "home-pc");
        auto q = peer_status(b.node().status(w.net.now()), "laptop");
        return p && p->path == "direct" && q && q->path == "direct";
      },
      5s))
      << w.net.trace_tail();
  auto st = a.node().status(w.net.now());
  auto p = peer_status(st, "home-pc");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->endpoint, ep("198.51.100.3:5000"));
  EXPECT_EQ(p->state, "connected");
  ASSERT_TRUE(p->rtt);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*p->rtt), 40ms);
  EXPECT_GT(p->bytes_out, 0u);
  EXPECT_EQ(st.public_endpoint, ep("198.51.100.2:5000"));

  // Traffic now goes straight between the nodes.
  a.tun_out.clear();
  b.send_udp_to(a.vip(), "direct now");
  ASSERT_TRUE(w.net.run_until([&] { return received(a, "direct now"); }, 1s));
  EXPECT_NE(w.net.trace_tail(3).find("198.51.100.3:5000 -> 198.51.100.2:5000 data"),
            std::string::npos)
      << w.net.trace_tail(5);
}

// Forced onto the relay, a distinctive plaintext crosses the coordinator only encrypted: no
// datagram the coordinator received or sent holds any 8 bytes of it, while the other node's
// TUN gets the packet whole.
TEST(SimTunnel, RelayForwardsOnlyCiphertext) {
  World w;
  w.settings.policies = {{ip("10.77.0.2"), core::Force::kRelay},
                         {ip("10.77.0.3"), core::Force::kRelay}};
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));

  // Everything to or from any of the coordinator's four sockets, from the first packet on.
  const IpAddress coord_ips[] = {ip("203.0.113.10"), ip("203.0.113.11")};
  auto at_coordinator = [&](const Endpoint& e) {
    return e.address == coord_ips[0] || e.address == coord_ips[1];
  };
  std::vector<std::vector<std::uint8_t>> to_coord, from_coord;
  std::size_t peer_to_peer = 0;
  w.net.tap = [&](const SimNet::Tapped& t) {
    if (at_coordinator(t.to))
      to_coord.emplace_back(t.data.begin(), t.data.end());
    else if (at_coordinator(t.from))
      from_coord.emplace_back(t.data.begin(), t.data.end());
    else
      ++peer_to_peer;
  };

  std::vector<std::uint8_t> marker(64);
  for (std::size_t i = 0; i < marker.size(); ++i)
    marker[i] = static_cast<std::uint8_t>("RELAY-MARKER-0123456789abcdef!"[i % 30] ^ (i / 30));
  const auto packet = make_udp_packet(a.vip(), b.vip(), 40000, 9000, marker);
  a.tun_send(packet);
  ASSERT_TRUE(w.net.run_until(
      [&] {
        return std::any_of(b.tun_out.begin(), b.tun_out.end(),
                           [&](const auto& p) { return p == packet; });
      },
      5s))
      << w.net.trace_tail();
  w.net.run_for(1s);  // and whatever follows it

  auto st = a.node().status(w.net.now());
  auto p = peer_status(st, "b");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "relay");
  EXPECT_EQ(p->relay_reason, "forced");
  EXPECT_EQ(peer_to_peer, 0u) << "forced onto the relay, yet the nodes talked directly";
  // The packet did cross the coordinator: it relayed Data both ways round.
  auto cs = w.coord->core().status(w.net.now());
  ASSERT_EQ(cs.nodes.size(), 2u);
  EXPECT_GE(cs.nodes[0].relayed_bytes + cs.nodes[1].relayed_bytes, packet.size());
  ASSERT_FALSE(to_coord.empty());
  ASSERT_FALSE(from_coord.empty());

  // Any 8-byte window of the marker, anywhere in a datagram.
  auto leaks = [&](const std::vector<std::uint8_t>& d) {
    for (std::size_t i = 0; i + 8 <= marker.size(); ++i) {
      if (std::search(d.begin(), d.end(), marker.begin() + i, marker.begin() + i + 8) != d.end())
        return true;
    }
    return false;
  };
  ASSERT_TRUE(leaks(packet));  // the search finds the marker where it is in the clear
  for (const auto& d : to_coord) EXPECT_FALSE(leaks(d)) << "received by the coordinator";
  for (const auto& d : from_coord) EXPECT_FALSE(leaks(d)) << "sent by the coordinator";
  w.net.tap = nullptr;
}

// Through the relay too, a packet whose inner source is not the sender's virtual IP is dropped
// by the receiver (cryptokey routing).
TEST(SimTunnel, RelayedPacketWithAForeignInnerSourceIsDropped) {
  World w;
  w.settings.punch_enabled = false;  // stay on the relay
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));
  a.send_udp_to(b.vip(), "via relay");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "via relay"); }, 5s));
  auto p = peer_status(a.node().status(w.net.now()), "b");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "relay");
  EXPECT_EQ(p->relay_reason, "punching disabled");

  auto spoofed = make_udp_packet(ip("10.77.0.9"), b.vip(), 1, 2, std::vector<std::uint8_t>{'x'});
  // Injected the way a's TUN would: a routes by destination, b checks the source.
  b.tun_out.clear();
  a.tun_send(spoofed);
  w.net.run_for(1s);
  EXPECT_TRUE(b.tun_out.empty());
  EXPECT_EQ(b.node().status(w.net.now()).drops.bad_source, 1u);
}

TEST(SimTunnel, PacketsOutsideTheMeshOrForOurselvesAreNotTunnelled) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  ASSERT_TRUE(w.registered(a));
  a.send_udp_to(ip("10.78.0.3"), "elsewhere");
  a.send_udp_to(ip("10.77.0.2"), "myself");
  a.send_udp_to(ip("10.77.0.255"), "broadcast");
  w.net.run_for(1s);
  EXPECT_EQ(a.node().status(w.net.now()).drops.no_route, 3u);
  EXPECT_TRUE(a.node().status(w.net.now()).peers.empty());
}

// An address the coordinator does not know keeps no peer: it is counted in the negative cache
// (sim_bounded_test has the rest).
TEST(SimTunnel, UnknownPeerIsCountedNotKept) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  ASSERT_TRUE(w.registered(a));
  a.send_udp_to(ip("10.77.0.50"), "nobody");
  w.net.run_for(2s);
  auto st = a.node().status(w.net.now());
  EXPECT_TRUE(st.peers.empty());
  EXPECT_EQ(st.peer_table.unknown_addresses, 1u);
  EXPECT_EQ(st.drops.unknown_address, 1u);
}

// b lists a's certificate as revoked in its own mesh.yaml: a's row in b's status says
// "refused" (not "requesting") and why, stays so while a keeps asking, and b's traffic to a
// is dropped rather than queued.
TEST(SimTunnel, APeerWeRefuseShowsAsRefused) {
  World w;
  auto id_a = w.ca.issue("a", "10.77.0.2/24");
  const std::string revoked = crypto::fingerprint(id_a.certificate);
  auto& a =
      w.net.add_node("a", -1, ep("198.51.100.2:5000"), std::move(id_a), w.ca.cert, w.settings);
  auto settings_b = w.settings;
  settings_b.revoked = {revoked};
  auto& b = w.net.add_node("b", -1, ep("198.51.100.3:5000"), w.ca.issue("b", "10.77.0.3/24"),
                           w.ca.cert, settings_b);
  ASSERT_TRUE(w.registered(a));
  ASSERT_TRUE(w.registered(b));
  for (int i = 0; i < 5; ++i) {
    a.send_udp_to(b.vip(), "let me in");
    w.net.run_for(2s);
  }
  EXPECT_FALSE(received(b, "let me in"));
  auto st = b.node().status(w.net.now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].vip, ip("10.77.0.2"));
  EXPECT_EQ(st.peers[0].state, "refused");
  EXPECT_NE(st.peers[0].relay_reason.find("refused a: "), std::string::npos)
      << st.peers[0].relay_reason;
  EXPECT_NE(st.peers[0].relay_reason.find("revoked"), std::string::npos)
      << st.peers[0].relay_reason;
  const auto dropped = st.drops.no_route;
  b.send_udp_to(a.vip(), "to a");
  w.net.run_for(1s);
  st = b.node().status(w.net.now());
  EXPECT_EQ(st.drops.no_route, dropped + 1);
  EXPECT_EQ(st.peers[0].state, "refused");
}

TEST(SimTunnel, RevokedExpiredAndForeignCertificatesAreRefusedAndTold) {
  SimNet net(3);
  TestCa ca(net.unix_now());
  auto rev_id = ca.issue("revoked", "10.77.0.3/24");
  coord::CoordinatorSettings settings;
  settings.revoked = {crypto::fingerprint(rev_id.certificate)};
  net.add_coordinator(ep("203.0.113.10:7400"), std::nullopt,
                      ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert,
                      settings);
  core::NodeSettings ns;
  ns.coordinators = {ep("203.0.113.10:7400")};
  auto& rn = net.add_node("revoked", -1, ep("198.51.100.3:5000"), std::move(rev_id), ca.cert, ns);
  auto& ex = net.add_node("expired", -1, ep("198.51.100.4:5000"),
                          ca.issue("expired", "10.77.0.4/24", crypto::Role::node,
                                   net.unix_now() - 1000, net.unix_now() - 10),
                          ca.cert, ns);
  TestCa other(net.unix_now(), "other-ca");
  auto& foreign = net.add_node("foreign", -1, ep("198.51.100.5:5000"),
                               other.issue("foreign", "10.77.0.5/24"), ca.cert, ns);
  net.run_for(3s);
  for (auto* n : {&rn, &ex, &foreign}) {
    EXPECT_FALSE(n->node().registered()) << n->name();
  }
  EXPECT_NE(rn.node().status(net.now()).coordinator_state.find("revoked"), std::string::npos)
      << rn.node().status(net.now()).coordinator_state;
  EXPECT_NE(ex.node().status(net.now()).coordinator_state.find("expired"), std::string::npos)
      << ex.node().status(net.now()).coordinator_state;
  EXPECT_NE(foreign.node().status(net.now()).coordinator_state.find("wrong CA"), std::string::npos)
      << foreign.node().status(net.now()).coordinator_state;
}

TEST(SimTunnel, SecondKeyClaimingATakenVirtualIpIsRefused) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  ASSERT_TRUE(w.registered(a));
  auto& impostor = w.node("impostor", "10.77.0.2/24", "198.51.100.9:5000");
  w.net.run_for(3s);
  EXPECT_FALSE(impostor.node().registered());
  EXPECT_NE(impostor.node().status(w.net.now()).coordinator_state.find("already registered"),
            std::string::npos);
  EXPECT_TRUE(a.node().registered());
}

// Under steady traffic the initiator renews its session exactly kRekeyAfterTime (120 s) after
// it was made, on the virtual clock: the new initiation leaves at that instant, not before
// (the sim steps to the node's deadline; traffic flows once a second). No packet is lost.
TEST(SimTunnel, InitiatorRenewsTheSessionAtExactly120Seconds) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));
  // Peer handshake initiations (IK; the coordinator's are XX) as they leave a node.
  struct Init {
    Time at;
    Endpoint from;
  };
  std::vector<Init> inits;
  w.net.tap = [&](const SimNet::Tapped& t) {
    auto init = wire::parse_handshake_init(t.data);
    if (init && init->pattern == wire::Pattern::kIK) inits.push_back({t.at, t.from});
  };
  a.send_udp_to(b.vip(), "start");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "start"); }, 5s));
  // Wait for the direct path, so the renewal's initiation is on the wire in the clear (through
  // the relay it would be wrapped).
  ASSERT_TRUE(w.net.run_until(
      [&] {
        auto p = peer_status(a.node().status(w.net.now()), "b");
        auto q = peer_status(b.node().status(w.net.now()), "a");
        return p && p->path == "direct" && q && q->path == "direct";
      },
      5s));
  // When each side's session was made; the initiator is the one whose first initiation it was.
  auto made = [&](SimNode& n, const char* peer) {
    auto p = peer_status(n.node().status(w.net.now()), peer);
    EXPECT_TRUE(p && p->since_handshake);
    return w.net.now() - p->since_handshake.value_or(Duration{});
  };
  const Time made_a = made(a, "b"), made_b = made(b, "a");
  const std::size_t first_inits = inits.size();

  auto tick = [&](int i) {
    std::string text = "tick " + std::to_string(i);
    a.send_udp_to(b.vip(), text);
    b.send_udp_to(a.vip(), "back " + std::to_string(i));
    w.net.run_for(1s);
    EXPECT_TRUE(received(b, text)) << "lost at " << i << "\n" << w.net.trace_tail();
  };
  int i = 0;
  while (inits.size() == first_inits && i < 200) tick(i++);
  ASSERT_GT(inits.size(), first_inits) << "no renewal in 200 s";
  const Init renewal = inits[first_inits];
  const bool by_a = renewal.from == a.socket();
  ASSERT_TRUE(by_a || renewal.from == b.socket());
  const Time made_initiator = by_a ? made_a : made_b;
  SCOPED_TRACE(by_a ? "a renewed" : "b renewed");
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(renewal.at - made_initiator),
            std::chrono::duration_cast<std::chrono::microseconds>(crypto::kRekeyAfterTime));
  EXPECT_EQ(inits.size(), first_inits + 1) << "more than one initiation for one renewal";

  // The renewed session is in use: since_handshake restarted at the renewal.
  for (int k = 0; k < 5; ++k) tick(i++);
  SimNode& initiator = by_a ? a : b;
  const Time remade = made(initiator, by_a ? "b" : "a");
  EXPECT_GE(remade, renewal.at);
  EXPECT_LE(remade - renewal.at, 200ms);  // one round trip (40 ms) after the initiation
  w.net.tap = nullptr;
}

TEST(SimTunnel, IdlePeerSessionLapsesAndTheNextPacketReconnects) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));
  a.send_udp_to(b.vip(), "one");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "one"); }, 5s));
  w.net.run_for(400s);  // idle: sessions expire after 180 s
  auto st = a.node().status(w.net.now());
  auto p = peer_status(st, "b");
  ASSERT_TRUE(p);
  EXPECT_NE(p->state, "connected");
  a.send_udp_to(b.vip(), "two");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "two"); }, 5s)) << w.net.trace_tail();
}

TEST(SimTunnel, NodeRestartReconnects) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto id_b = w.ca.issue("b", "10.77.0.3/24");
  auto cert_b = id_b.certificate;
  auto key_b = crypto::noise::KeyPair::from_private(id_b.key.private_key.span());
  w.net.add_node("b", -1, ep("198.51.100.3:5000"), std::move(id_b), w.ca.cert, w.settings);
  ASSERT_TRUE(w.net.run_until([&] { return a.node().registered(); }, 5s));
  a.send_udp_to(ip("10.77.0.3"), "before");
  w.net.run_for(2s);
  w.net.remove_node("b");
  w.net.run_for(5s);
  // b comes back with the same key and certificate (a restarted daemon).
  auto& b2 =
      w.net.add_node("b", -1, ep("198.51.100.3:5001"),
                     crypto::Identity::make(std::move(key_b), cert_b), w.ca.cert, w.settings);
  ASSERT_TRUE(w.net.run_until([&] { return b2.node().registered(); }, 10s));
  // Like ping: one packet a second. a's old session points at the dead daemon; a notices
  // that nothing comes back (15 s, WireGuard's rule) and handshakes anew.
  Time t0 = w.net.now();
  for (int i = 0; i < 30 && !received(b2, "after restart"); ++i) {
    a.send_udp_to(b2.vip(), "after restart");
    w.net.run_until([&] { return received(b2, "after restart"); }, 1s);
  }
  ASSERT_TRUE(received(b2, "after restart")) << w.net.trace_tail();
  EXPECT_LE(w.net.now() - t0, 20s);
}

}  // namespace
}  // namespace p2p::sim
