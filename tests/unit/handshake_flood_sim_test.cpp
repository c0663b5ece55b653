// Floods of unauthenticated initiations on the virtual clock: thousands of spoofed
// initiations per virtual second at the coordinator (garbage, and well-formed ones with a
// valid mac1, which any member of the network can make) while a genuine node registers; and
// garbage and replays at a node while its tunnel carries traffic.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <random>

#include "crypto/auth_handshake.hpp"
#include "crypto/handshake_guard.hpp"
#include "net/packet.hpp"
#include "tests/support/sim_net.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

struct World {
  using Bytes = std::vector<std::uint8_t>;
  SimNet net{11};
  TestCa ca{net.unix_now()};
  SimCoordinator* coord = nullptr;
  core::NodeSettings settings;
  std::mt19937 rng{5};

  World() {
    coord = &net.add_coordinator(ep("203.0.113.10:7400"), std::nullopt,
                                 ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator),
                                 ca.cert, coord::CoordinatorSettings{});
    settings.coordinators = {ep("203.0.113.10:7400")};
  }
  Endpoint spoofed() {
    return Endpoint{Ipv4{static_cast<std::uint32_t>(rng())}, static_cast<std::uint16_t>(rng())};
  }
  // `per_ms` spoofed datagrams from `make` at `to` every virtual millisecond for `d`, or until
  // `done`.
  bool flood(
      const Endpoint& to, int per_ms, Duration d, const std::function<Bytes()>& make,
      const std::function<bool()>& done = [] { return false; }) {
    for (Time end = net.now() + d; net.now() < end;) {
      for (int i = 0; i < per_ms; ++i) net.inject(spoofed(), to, make());
      net.run_for(1ms);
      if (done()) return true;
    }
    return done();
  }
};

// A well-formed XX initiation any member of the network could send: mac1 keyed by the CA key.
std::vector<std::uint8_t> member_init(const crypto::Identity& id, const crypto::CaCertificate& ca,
                                      std::uint32_t index) {
  auto hs = crypto::AuthHandshake::initiator(
      crypto::AuthHandshake::Kind::kXX, id,
      [](const crypto::Certificate&) { return Expected<void, crypto::CertError>{}; });
  auto msg = hs.write(1);
  std::vector<std::uint8_t> out;
  wire::build_handshake_init(out, wire::Pattern::kXX, index, *msg);
  crypto::stamp_macs(out, crypto::GuardKeys::derive(ca.public_key), std::nullopt);
  return out;
}

TEST(HandshakeFlood, GenuineNodeRegistersWhileSpoofedInitiationsFloodTheCoordinator) {
  World w;
  const auto insider = w.ca.issue("insider", "10.77.0.99/24");
  const auto valid = member_init(insider, w.ca.cert, 1);
  std::vector<std::uint8_t> garbage(wire::kMinInitSize, 0);
  garbage[0] = 0x81;
  garbage[1] = 2;
  garbage[3] = 64;
  int n = 0;
  auto make = [&] { return ++n % 2 ? valid : garbage; };  // 2,000/s valid mac1, 2,000/s garbage
  // The flood runs for a second first: the pending table is under load.
  w.flood(w.coord->endpoint(), 4, 1s, make);
  const Time joined = w.net.now();
  auto& node = w.net.add_node("genuine", -1, ep("198.51.100.2:5000"),
                              w.ca.issue("genuine", "10.77.0.2/24"), w.ca.cert, w.settings);
  const bool registered =
      w.flood(w.coord->endpoint(), 4, 3s, make, [&] { return node.node().registered(); });
  ASSERT_TRUE(registered) << w.net.trace_tail();
  const Duration took = w.net.now() - joined;
  auto s = w.coord->core().status(w.net.now());
  std::printf(
      "[ flood ] registered after %.3f s of virtual time; coordinator: bad_mac1=%llu "
      "cookies=%llu rate_limited=%llu pending_full=%llu malformed=%llu\n",
      std::chrono::duration<double>(took).count(), static_cast<unsigned long long>(s.init_bad_mac1),
      static_cast<unsigned long long>(s.cookies_sent),
      static_cast<unsigned long long>(s.init_rate_limited),
      static_cast<unsigned long long>(s.init_pending_full),
      static_cast<unsigned long long>(s.malformed));
  EXPECT_LT(took, 1s);
  EXPECT_GT(s.init_bad_mac1, 1000u);
  EXPECT_GT(s.cookies_sent, 1000u);  // the valid-looking ones mostly got only a cookie
  EXPECT_EQ(s.internal_error, 0u);
  EXPECT_EQ(s.init_pending_full, 0u);  // load never let the pending table fill
}

TEST(HandshakeFlood, NodeTunnelHoldsUnderGarbageAndReplayedInitiations) {
  World w;
  w.settings.relay_allowed = false;  // the initiation goes direct, where it can be captured
  auto& a = w.net.add_node("a", -1, ep("198.51.100.2:5000"), w.ca.issue("a", "10.77.0.2/24"),
                           w.ca.cert, w.settings);
  auto& b = w.net.add_node("b", -1, ep("198.51.100.3:5000"), w.ca.issue("b", "10.77.0.3/24"),
                           w.ca.cert, w.settings);
  ASSERT_TRUE(w.net.run_until([&] { return a.node().registered() && b.node().registered(); }, 10s));
  // Capture a's genuine initiation to b on the wire.
  std::vector<std::uint8_t> captured;
  w.net.tap = [&](const SimNet::Tapped& t) {
    if (captured.empty() && wire::classify(t.data) == wire::DatagramKind::kHandshakeInit &&
        t.data[1] == static_cast<std::uint8_t>(wire::Pattern::kIK))
      captured.assign(t.data.begin(), t.data.end());
  };
  a.send_udp_to(b.vip(), "first");
  ASSERT_TRUE(w.net.run_until([&] { return !b.tun_out.empty(); }, 5s));
  w.net.tap = nullptr;
  ASSERT_FALSE(captured.empty());

  std::vector<std::uint8_t> garbage(wire::kMinInitSize, 0x5a);
  garbage[0] = 0x81;
  garbage[1] = 1;
  garbage[2] = 0;
  garbage[3] = 200;
  int n = 0;
  auto make = [&] { return ++n % 2 ? captured : garbage; };
  const auto before = b.tun_out.size();
  int sent = 0;
  for (int i = 0; i < 200; ++i) {  // 2 s: 3,000 initiations per second, a packet every 10 ms
    a.send_udp_to(b.vip(), "p" + std::to_string(i));
    ++sent;
    w.flood(b.socket(), 3, 10ms, make);
  }
  w.net.run_for(200ms);
  const auto got = b.tun_out.size() - before;
  auto s = b.node().status(w.net.now());
  std::printf(
      "[ flood ] node: %zu of %d packets through; bad_mac1=%llu replay=%llu "
      "cookies=%llu rate_limited=%llu\n",
      got, sent, static_cast<unsigned long long>(s.drops.handshake_bad_mac1),
      static_cast<unsigned long long>(s.drops.handshake_replay),
      static_cast<unsigned long long>(s.drops.cookies_sent),
      static_cast<unsigned long long>(s.drops.handshake_rate_limited));
  EXPECT_EQ(got, static_cast<std::size_t>(sent));
  EXPECT_GT(s.drops.handshake_bad_mac1, 2000u);
  EXPECT_EQ(s.drops.internal_error, 0u);
}

}  // namespace
}  // namespace p2p::sim
