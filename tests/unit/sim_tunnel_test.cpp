// The tunnel through the simulated network: registration, lookup, handshake, encrypted
// traffic, refusals, rekey and expiry timers - whole nodes and a coordinator in one process
// on a virtual clock.
#include <gtest/gtest.h>

#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

Endpoint ep(const char* s) { return *Endpoint::parse(s); }
Ipv4 ip(const char* s) { return *Ipv4::parse(s); }

std::string payload_of(const std::vector<std::uint8_t>& ip_packet) {
  return std::string(ip_packet.begin() + 28, ip_packet.end());
}

bool received(SimNode& n, const std::string& text) {
  for (const auto& p : n.tun_out) {
    if (p.size() >= 28 && payload_of(p) == text) return true;
  }
  return false;
}

// A copy, so that it outlives the status it came from.
std::optional<core::PeerStatus> peer_status(const core::NodeStatus& s, const std::string& name) {
  for (const auto& p : s.peers) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

struct World {
  SimNet net{7};
  TestCa ca{net.unix_now()};
  SimCoordinator* coord = nullptr;
  core::NodeSettings settings;

  explicit World(coord::CoordinatorSettings cs = {}) {
    coord = &net.add_coordinator(ep("203.0.113.10:7400"), ip("203.0.113.11"),
                                 ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert,
                                 std::move(cs));
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

TEST(SimTunnel, CoordinatorRelaysOnlyCiphertextAndTheInnerSourceIsChecked) {
  World w;
  w.settings.punch_enabled = false;  // stay on the relay
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));
  a.send_udp_to(b.vip(), "via relay");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "via relay"); }, 5s));
  auto st = a.node().status(w.net.now());
  auto p = peer_status(st, "b");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "relay");
  EXPECT_EQ(p->relay_reason, "punching disabled");
  // The coordinator counted the relayed bytes.
  auto cs = w.coord->core().status(w.net.now());
  ASSERT_EQ(cs.nodes.size(), 2u);
  EXPECT_GT(cs.nodes[0].relayed_bytes + cs.nodes[1].relayed_bytes, 0u);

  // A packet whose inner source is not a's virtual IP is dropped by b (cryptokey routing).
  auto spoofed = make_udp_packet(ip("10.77.0.9"), b.vip(), 1, 2, std::vector<std::uint8_t>{'x'});
  // Inject it the way a's TUN would: a routes by destination, b checks the source.
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

TEST(SimTunnel, UnknownPeerIsReportedUnreachable) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  ASSERT_TRUE(w.registered(a));
  a.send_udp_to(ip("10.77.0.50"), "nobody");
  w.net.run_for(2s);
  auto st = a.node().status(w.net.now());
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].state, "unreachable");
  EXPECT_EQ(st.peers[0].relay_reason, "unknown to the coordinator");
}

TEST(SimTunnel, RevokedExpiredAndForeignCertificatesAreRefusedAndTold) {
  SimNet net(3);
  TestCa ca(net.unix_now());
  auto rev_id = ca.issue("revoked", "10.77.0.3/24");
  coord::CoordinatorSettings settings;
  settings.revoked = {crypto::fingerprint(rev_id.certificate)};
  net.add_coordinator(ep("203.0.113.10:7400"), std::nullopt,
                      ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator), ca.cert, settings);
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

TEST(SimTunnel, SessionsRekeyAt120SecondsAndTrafficNeverStops) {
  World w;
  auto& a = w.node("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = w.node("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(w.registered(a) && w.registered(b));
  a.send_udp_to(b.vip(), "start");
  ASSERT_TRUE(w.net.run_until([&] { return received(b, "start"); }, 5s));
  Time established = w.net.now();
  auto st0 = a.node().status(w.net.now());
  auto first = *peer_status(st0, "b")->since_handshake;
  // Send a packet every second for 400 s; every one must arrive.
  int sent = 0;
  for (int i = 0; i < 400; ++i) {
    std::string text = "tick " + std::to_string(i);
    a.send_udp_to(b.vip(), text);
    ++sent;
    w.net.run_for(1s);
    ASSERT_TRUE(received(b, text)) << "lost at " << i << "\n" << w.net.trace_tail();
  }
  // A rekey happened (the handshake is younger than the session's first one).
  auto st1 = a.node().status(w.net.now());
  auto since = *peer_status(st1, "b")->since_handshake;
  EXPECT_LT(since, w.net.now() - established - first);
  EXPECT_LE(since, 125s);
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
  auto& b2 = w.net.add_node("b", -1, ep("198.51.100.3:5001"),
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
