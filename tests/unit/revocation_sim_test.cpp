// Revocation through the simulated network, on the virtual clock: a list the coordinator
// takes reaches every registered node, which cuts its sessions with the revoked peer at once
// and refuses it from then on; the coordinator forgets the revoked node; a node that
// registers later gets the list; no one can roll a node back.
#include <gtest/gtest.h>

#include "crypto/revocation_list.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

Endpoint endpoint(const char* s) {
  return *Endpoint::parse(s);
}

bool got(SimNode& n, const std::string& text) {
  for (const auto& p : n.tun_out)
    if (p.size() >= 28 && std::string(p.begin() + 28, p.end()) == text) return true;
  return false;
}

// By virtual IP: a refused peer's row no longer carries its certificate's name.
std::string state_of(SimNode& n, SimNet& net, SimNode& peer) {
  for (const auto& p : n.node().status(net.now()).peers)
    if (p.vip == peer.vip()) return p.state;
  return "none";
}

struct Mesh {
  SimNet net{11};
  TestCa ca{net.unix_now()};
  SimCoordinator* coord = nullptr;
  core::NodeSettings settings;

  Mesh() {
    coord = &net.add_coordinator(endpoint("203.0.113.10:7400"), std::nullopt,
                                 ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator),
                                 ca.cert, {});
    settings.coordinators = {endpoint("203.0.113.10:7400")};
  }
  SimNode& add(const std::string& name, const char* vip, const char* socket) {
    auto& n = net.add_node(name, -1, endpoint(socket), ca.issue(name, vip), ca.cert, settings);
    EXPECT_TRUE(net.run_until([&] { return n.node().registered(); }, 10s)) << name;
    return n;
  }
  crypto::RevocationList list(std::uint64_t sequence, const std::vector<SimNode*>& nodes) {
    crypto::RevocationList l;
    l.sequence = sequence;
    l.issued_at = net.unix_now();
    for (auto* n : nodes) l.revoked.push_back(crypto::fingerprint_bytes(n->node().certificate()));
    return *crypto::sign(std::move(l), ca.cert, ca.key);
  }
};

// The one test the issue asks for: a live tunnel, a revocation at the coordinator, the session
// cut at the other node within a second of virtual time, and the revoked node refused on
// every later attempt.
TEST(RevocationSim, AListPushedByTheCoordinatorCutsTheSessionAtOnce) {
  Mesh m;
  auto& a = m.add("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = m.add("b", "10.77.0.3/24", "198.51.100.3:5000");
  a.send_udp_to(b.vip(), "before");
  ASSERT_TRUE(m.net.run_until([&] { return got(b, "before"); }, 5s));
  ASSERT_EQ(state_of(b, m.net, a), "connected");

  const Time t0 = m.net.now();
  auto taken = m.coord->core().set_revocation_list(t0, m.list(1, {&a}));
  ASSERT_TRUE(taken && *taken);
  ASSERT_TRUE(m.net.run_until([&] { return state_of(b, m.net, a) == "refused"; }, 5s))
      << m.net.trace_tail();
  const auto cut = m.net.now() - t0;
  EXPECT_LT(cut, 500ms);  // one push: a coordinator-to-node latency, nothing waits for a timer
  std::printf("revocation cut the session after %.0f ms of virtual time\n",
              std::chrono::duration<double, std::milli>(cut).count());
  EXPECT_EQ(b.node().status(m.net.now()).revocation_sequence, 1u);
  EXPECT_EQ(b.node().revocation_sequence(), 1u);
  auto cs = m.coord->core().status(m.net.now());
  EXPECT_EQ(cs.revocation_sequence, 1u);
  EXPECT_EQ(cs.revoked_removed, 1u);
  EXPECT_EQ(cs.nodes.size(), 1u);  // a is gone from the registry

  // a keeps trying, directly and through the coordinator: nothing reaches b.
  for (int i = 0; i < 5; ++i) {
    a.send_udp_to(b.vip(), "after");
    m.net.run_for(3s);
  }
  EXPECT_FALSE(got(b, "after"));
  EXPECT_FALSE(a.node().registered());
  EXPECT_EQ(state_of(b, m.net, a), "refused");
}

TEST(RevocationSim, ANodeThatRegistersLaterGetsTheListAndRefusesTheRevokedPeer) {
  Mesh m;
  auto& a = m.add("a", "10.77.0.2/24", "198.51.100.2:5000");
  // a list revoking someone else first: a (already registered) gets it pushed.
  auto& x = m.add("x", "10.77.0.9/24", "198.51.100.9:5000");
  ASSERT_TRUE(*m.coord->core().set_revocation_list(m.net.now(), m.list(4, {&x})));
  ASSERT_TRUE(m.net.run_until([&] { return a.node().revocation_sequence() == 4; }, 2s));
  auto& c = m.add("c", "10.77.0.4/24", "198.51.100.4:5000");
  ASSERT_TRUE(m.net.run_until([&] { return c.node().revocation_sequence() == 4; }, 2s));
  // c refuses x even if x reached it some other way: its certificate is revoked for c now.
  auto verdict = crypto::verify(x.node().certificate(), m.ca.cert, m.net.unix_now(),
                                crypto::VerifyPolicy{crypto::Role::node, {}});
  EXPECT_TRUE(verdict);  // valid in itself ...
  c.send_udp_to(x.vip(), "hello x");
  m.net.run_for(5s);
  EXPECT_FALSE(got(x, "hello x"));  // ... but x is neither registered nor accepted
}

TEST(RevocationSim, NoCoordinatorCanRollANodeBack) {
  Mesh m;
  auto& a = m.add("a", "10.77.0.2/24", "198.51.100.2:5000");
  auto& b = m.add("b", "10.77.0.3/24", "198.51.100.3:5000");
  ASSERT_TRUE(*a.node().set_revocation_list(m.net.now(), m.list(7, {&b})));
  // The coordinator holds an older list; it pushes it on registration, a keeps 7.
  ASSERT_TRUE(*m.coord->core().set_revocation_list(m.net.now(), m.list(6, {})));
  m.net.run_for(60s);  // several re-registrations
  EXPECT_EQ(a.node().revocation_sequence(), 7u);
  auto older = a.node().set_revocation_list(m.net.now(), m.list(6, {}));
  ASSERT_TRUE(older);
  EXPECT_FALSE(*older);
  // A list not signed by our CA is refused outright.
  TestCa other(m.net.unix_now(), "other-ca");
  crypto::RevocationList forged;
  forged.sequence = 99;
  auto f = *crypto::sign(forged, other.cert, other.key);
  EXPECT_FALSE(a.node().set_revocation_list(m.net.now(), f));
  EXPECT_EQ(a.node().revocation_sequence(), 7u);
  a.send_udp_to(b.vip(), "to b");
  m.net.run_for(5s);
  EXPECT_FALSE(got(b, "to b"));
}

}  // namespace
}  // namespace p2p::sim
