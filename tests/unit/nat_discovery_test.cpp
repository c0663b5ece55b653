// NAT behaviour discovery against our STUN server through a simulated NAT, in virtual time.
//
// The simulation: client (Discovery) -- NAT -- server (stun::Server, four sockets). The NAT
// model has RFC 4787 mapping and filtering behaviour, sequential (any step) or seeded random
// port allocation, optional hairpinning, or drops everything (UDP blocked). Without a NAT the
// client's address is public and the "NAT" is the identity (filtering still applies, which
// models a firewall). Every hop takes 10 ms; the clock jumps to the next packet or deadline.
#include "daemon/nat/nat_discovery.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <set>

namespace p2p::nat {
namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

Endpoint ep(std::string_view s) {
  return *Endpoint::parse(s);
}

struct NatModel {
  bool present = true;  // false: the client has a public address
  Behaviour mapping = Behaviour::kEndpointIndependent;
  Behaviour filtering = Behaviour::kEndpointIndependent;
  bool random_ports = false;
  int step = 1;
  std::uint32_t seed = 1;
  bool hairpin = false;
  bool drop_all = false;
  bool preserve_port = false;  // the first mapping keeps the local port
};

struct SentProbe {
  Time at;
  Endpoint to;
  stun::Message message;
};

class SimNet : public Effects {
 public:
  static constexpr Duration kHop = 10ms;
  const Endpoint kLocal = ep("192.168.1.10:5000");
  const Endpoint kPublicHost = ep("203.0.113.77:5000");
  const IpAddress kNatAddress = *parse_ip("203.0.113.5");
  const Endpoint kA1P1 = ep("198.51.100.1:3478");

  explicit SimNet(NatModel nat, bool server_alternate = true) : nat_(nat), rng_(nat.seed) {
    stun::ServerConfig c;
    c.primary = kA1P1;
    if (server_alternate) {
      c.alternate_address = *parse_ip("198.51.100.2");
      c.alternate_port = 3479;
    }
    server_.emplace(stun::Server::create(c).value());
  }

  Endpoint local() const { return nat_.present ? kLocal : kPublicHost; }

  // Test hooks: drop a packet (by index of client sends), or rewrite a server reply's socket.
  std::function<bool(std::size_t send_index)> drop_send;
  bool server_honours_change = true;

  // Runs a Discovery to completion; returns its report. elapsed() says how long it took.
  Report run(DiscoveryConfig config = {}) {
    config.server = kA1P1;
    if (config.local_endpoints.empty()) config.local_endpoints = {local()};
    discovery_.emplace(config, *this, [this](std::span<std::uint8_t> out) {
      for (auto& b : out) b = static_cast<std::uint8_t>(ids_());
    });
    now_ = kStart;
    deadline_ = discovery_->start(now_);
    for (int guard = 0; !discovery_->done() && guard < 100000; ++guard) {
      const Time next_packet = queue_.empty() ? Time::max() : queue_.begin()->first;
      if (next_packet <= deadline_) {
        auto node = queue_.extract(queue_.begin());
        now_ = next_packet;
        deliver(node.mapped());
      } else {
        if (deadline_ == Time::max()) break;  // stuck: the test will see !done()
        now_ = deadline_;
        deadline_ = discovery_->on_tick(now_);
      }
    }
    EXPECT_TRUE(discovery_->done());
    return discovery_->report();
  }
  Duration elapsed() const { return now_ - kStart; }
  const std::vector<SentProbe>& sent() const { return sent_; }
  Discovery& discovery() { return *discovery_; }
  // Injects a datagram at the client as if it came from `from`, now.
  void inject(const Endpoint& from, const Bytes& b) { queue({from, local(), b, true}); }

  void send(const Endpoint& to, std::span<const std::uint8_t> datagram) override {
    auto m = stun::parse(datagram);
    EXPECT_TRUE(m);
    sent_.push_back({now_, to, m ? *m : stun::Message{}});
    if (drop_send && drop_send(sent_.size() - 1)) return;
    if (nat_.drop_all) return;
    outbound(to, Bytes(datagram.begin(), datagram.end()));
  }

 private:
  static constexpr Time kStart{};
  struct Packet {
    Endpoint from, to;
    Bytes bytes;
    bool direct = false;  // hairpinned or injected: handed to the client as is
  };
  struct Mapping {
    std::uint16_t port = 0;
    std::set<IpAddress> addresses;  // destinations contacted, for filtering
    std::set<Endpoint> endpoints;
  };

  void queue(Packet p) { queue_.emplace(now_ + kHop, std::move(p)); }

  IpAddress public_address() const { return nat_.present ? kNatAddress : kPublicHost.address; }

  // The NAT's outbound path: find or make the mapping for this destination.
  void outbound(const Endpoint& to, Bytes bytes) {
    std::string key = "*";
    if (nat_.mapping == Behaviour::kAddressDependent) key = p2p::to_string(to.address);
    if (nat_.mapping == Behaviour::kAddressAndPortDependent) key = to.to_string();
    auto [it, fresh] = mappings_.try_emplace(key);
    Mapping& m = it->second;
    if (fresh) m.port = allocate_port();
    m.addresses.insert(to.address);
    m.endpoints.insert(to);
    const Endpoint from{public_address(), m.port};
    if (to.address == public_address()) {  // addressed to the NAT itself
      if (nat_.hairpin) queue({from, local(), std::move(bytes), true});
      return;
    }
    queue({from, to, std::move(bytes)});
  }

  std::uint16_t allocate_port() {
    if (!nat_.present) return kPublicHost.port;  // no NAT: the identity
    if (nat_.preserve_port && mappings_.size() == 1) return kLocal.port;
    if (!nat_.random_ports) {
      const auto p = next_port_;
      next_port_ = static_cast<std::uint16_t>(next_port_ + nat_.step);
      return p;
    }
    std::uniform_int_distribution<int> d(1024, 65535);
    return static_cast<std::uint16_t>(d(rng_));
  }

  void deliver(const Packet& p) {
    if (p.direct) {
      deadline_ = discovery_->on_response(now_, p.from, p.bytes);
      return;
    }
    if (p.to.address == public_address()) {  // inbound at the NAT
      for (const auto& [key, m] : mappings_) {
        if (m.port != p.to.port) continue;
        const bool allowed =
            nat_.filtering == Behaviour::kEndpointIndependent ||
            (nat_.filtering == Behaviour::kAddressDependent &&
             m.addresses.contains(p.from.address)) ||
            (nat_.filtering == Behaviour::kAddressAndPortDependent && m.endpoints.contains(p.from));
        if (allowed) deadline_ = discovery_->on_response(now_, p.from, p.bytes);
        return;
      }
      return;  // no mapping: dropped
    }
    for (unsigned s = 0; s < 4; ++s) {  // to one of the server's sockets?
      const auto socket = static_cast<stun::ServerSocket>(s);
      if (s != 0 && !server_->has_alternate()) break;
      if (server_->endpoint(socket) != p.to) continue;
      auto reply = server_->on_request(socket, p.from, p.bytes);
      if (!reply) return;
      if (!server_honours_change) reply->from = socket;
      queue({server_->endpoint(reply->from), reply->to, std::move(reply->bytes)});
      return;
    }
  }

  NatModel nat_;
  std::mt19937 rng_;
  std::mt19937 ids_{42};  // transaction ids
  std::uint16_t next_port_ = 40000;
  std::optional<stun::Server> server_;
  std::map<std::string, Mapping> mappings_;
  std::multimap<Time, Packet> queue_;  // equal times keep insertion order
  std::optional<Discovery> discovery_;
  Time now_{};
  Time deadline_ = Time::max();
  std::vector<SentProbe> sent_;
};

NatModel nat(Behaviour mapping, Behaviour filtering) {
  NatModel m;
  m.mapping = mapping;
  m.filtering = filtering;
  return m;
}
constexpr auto kEI = Behaviour::kEndpointIndependent;
constexpr auto kAD = Behaviour::kAddressDependent;
constexpr auto kAPD = Behaviour::kAddressAndPortDependent;

// ---- Classic types ---------------------------------------------------------------------------

NatModel no_nat(Behaviour filtering) {
  NatModel m = nat(kEI, filtering);
  m.present = false;
  return m;
}
NatModel stepping(Behaviour mapping, int step) {
  NatModel m = nat(mapping, kAD);
  m.step = step;
  return m;
}

struct ClassicCase {
  const char* name;
  NatModel model;
  NatType type;
  Behaviour mapping, filtering;
  std::optional<bool> behind_nat;
  Endpoint public_endpoint;
  PortAllocation::Kind allocation;
  int step;
  std::vector<std::uint16_t> ports;  // mapped ports measured, in mapping order
};

TEST(NatDiscovery, ClassifiesEachClassicType) {
  using K = PortAllocation::Kind;
  const Endpoint host = ep("203.0.113.77:5000"), nat_port = ep("203.0.113.5:40000");
  const std::vector<ClassicCase> cases = {
      {"open internet",
       no_nat(kEI),
       NatType::kOpen,
       kEI,
       kEI,
       false,
       host,
       K::kNotMeasured,
       0,
       {}},
      {"firewall",
       no_nat(kAPD),
       NatType::kFirewalled,
       kEI,
       kAPD,
       false,
       host,
       K::kNotMeasured,
       0,
       {}},
      {"full cone",
       nat(kEI, kEI),
       NatType::kFullCone,
       kEI,
       kEI,
       true,
       nat_port,
       K::kNotMeasured,
       0,
       {}},
      {"restricted",
       nat(kEI, kAD),
       NatType::kRestrictedCone,
       kEI,
       kAD,
       true,
       nat_port,
       K::kNotMeasured,
       0,
       {}},
      {"port-restricted",
       nat(kEI, kAPD),
       NatType::kPortRestrictedCone,
       kEI,
       kAPD,
       true,
       nat_port,
       K::kNotMeasured,
       0,
       {}},
      // Test I, mapping II, III and IV each made a mapping (filtering probes reuse test I's).
      {"symmetric",
       nat(kAPD, kAPD),
       NatType::kSymmetric,
       kAPD,
       kAPD,
       true,
       nat_port,
       K::kSequential,
       1,
       {40000, 40001, 40002, 40003}},
      // Address-dependent: III and IV reuse II's and I's mappings, one delta to go on.
      {"symmetric, address-dependent, step 2",
       stepping(kAD, 2),
       NatType::kSymmetric,
       kAD,
       kAD,
       true,
       nat_port,
       K::kSequential,
       2,
       {40000, 40002}},
      {"symmetric, step -3",
       stepping(kAPD, -3),
       NatType::kSymmetric,
       kAPD,
       kAD,
       true,
       nat_port,
       K::kSequential,
       -3,
       {40000, 39997, 39994, 39991}},
  };
  for (const auto& c : cases) {
    SimNet net(c.model);
    const Report r = net.run();
    SCOPED_TRACE(std::string(c.name) + "\n" + describe(r));
    EXPECT_EQ(r.type, c.type);
    EXPECT_EQ(r.mapping, c.mapping);
    EXPECT_EQ(r.filtering, c.filtering);
    EXPECT_EQ(r.behind_nat, c.behind_nat);
    EXPECT_EQ(r.public_endpoint, c.public_endpoint);
    EXPECT_TRUE(r.server_rfc5780);
    EXPECT_FALSE(r.udp_blocked);
    EXPECT_EQ(r.port_allocation.kind, c.allocation);
    EXPECT_EQ(r.port_allocation.step, c.step);
    if (c.allocation != K::kNotMeasured) {
      EXPECT_EQ(r.port_allocation.ports, c.ports);
    }
    // Hairpinning is asked only behind a NAT (and the model does not hairpin).
    EXPECT_EQ(r.hairpinning, *c.behind_nat ? std::optional<bool>(false) : std::nullopt);
  }
}

TEST(NatDiscovery, PortPreservation) {
  NatModel m = nat(kEI, kAPD);
  m.preserve_port = true;
  SimNet net(m);
  const Report r = net.run();
  EXPECT_EQ(r.public_endpoint, ep("203.0.113.5:5000"));
  EXPECT_EQ(r.port_preserved, true);
  EXPECT_EQ(r.type, NatType::kPortRestrictedCone);
  EXPECT_NE(describe(r).find("port preserved:  yes\n"), std::string::npos);
  EXPECT_EQ(r.server, net.kA1P1);  // the report names the server it asked
  EXPECT_NE(describe(r).find("STUN server:     " + net.kA1P1.to_string() + "\n"),
            std::string::npos);
  SimNet other(nat(kEI, kAPD));
  EXPECT_EQ(other.run().port_preserved, false);
  SimNet open(no_nat(kEI));
  EXPECT_FALSE(open.run().port_preserved);  // meaningless without a NAT
}

TEST(NatDiscovery, SymmetricRandomAllocation) {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    NatModel m = nat(kAPD, kEI);
    m.random_ports = true;
    m.seed = seed;
    SimNet net(m);
    const Report r = net.run();
    EXPECT_EQ(r.type, NatType::kSymmetric) << describe(r);
    EXPECT_EQ(r.filtering, kEI);
    EXPECT_EQ(r.port_allocation.kind, PortAllocation::Kind::kRandom) << describe(r);
    EXPECT_EQ(r.port_allocation.ports.size(), 4u);
  }
}

TEST(NatDiscovery, SymmetricWithoutPortMeasurementSendsNoFourthProbe) {
  SimNet net(nat(kAPD, kAPD));
  DiscoveryConfig c;
  c.measure_port_allocation = false;
  c.test_hairpinning = false;
  const Report r = net.run(c);
  EXPECT_EQ(r.type, NatType::kSymmetric);
  EXPECT_EQ(r.port_allocation.ports.size(), 3u);
  for (const auto& s : net.sent()) EXPECT_NE(s.to, ep("198.51.100.1:3479"));
}

// ---- Failure modes -----------------------------------------------------------------------

TEST(NatDiscovery, UdpBlockedAfterBoundedTime) {
  NatModel m;
  m.drop_all = true;
  SimNet net(m);
  const Report r = net.run();
  EXPECT_TRUE(r.udp_blocked);
  EXPECT_EQ(r.type, NatType::kUdpBlocked);
  EXPECT_FALSE(r.public_endpoint);
  EXPECT_EQ(net.elapsed(), 3500ms);
  // Sent at 0, 0.5 and 1.5 s: the 500 ms doubling schedule.
  ASSERT_EQ(net.sent().size(), 3u);
  EXPECT_EQ(net.sent()[1].at - net.sent()[0].at, 500ms);
  EXPECT_EQ(net.sent()[2].at - net.sent()[1].at, 1000ms);
  EXPECT_EQ(net.sent()[0].message.transaction_id, net.sent()[2].message.transaction_id);
  // What is known is that this server did not answer, not that UDP is blocked.
  EXPECT_NE(describe(r).find("no answer from " + r.server.to_string()), std::string::npos)
      << describe(r);
  EXPECT_EQ(describe(r).find("UDP blocked"), std::string::npos) << describe(r);
}

TEST(NatDiscovery, RetransmissionRecoversFromLoss) {
  SimNet net(nat(kEI, kAD));
  net.drop_send = [](std::size_t i) { return i < 2; };  // test I's first two copies
  const Report r = net.run();
  EXPECT_EQ(r.type, NatType::kRestrictedCone) << describe(r);
  EXPECT_EQ(net.sent()[2].at - net.sent()[0].at, 1500ms);
}

TEST(NatDiscovery, ServerWithoutAlternateAddressGivesWhatItCan) {
  SimNet net(nat(kEI, kAPD), /*server_alternate=*/false);
  const Report r = net.run();
  EXPECT_FALSE(r.udp_blocked);
  EXPECT_FALSE(r.server_rfc5780);
  EXPECT_EQ(r.public_endpoint, ep("203.0.113.5:40000"));
  EXPECT_EQ(r.behind_nat, true);
  EXPECT_EQ(r.mapping, Behaviour::kUnknown);
  EXPECT_EQ(r.filtering, Behaviour::kUnknown);
  EXPECT_EQ(r.type, NatType::kUnknown);
  for (const auto& s : net.sent()) EXPECT_FALSE(s.message.change_request);
  EXPECT_NE(describe(r).find("lacks RFC 5780"), std::string::npos);
}

TEST(NatDiscovery, ServerIgnoringChangeRequestLeavesFilteringUnknown) {
  SimNet net(nat(kEI, kEI));
  net.server_honours_change = false;
  const Report r = net.run();
  EXPECT_EQ(r.filtering, Behaviour::kUnknown);
  EXPECT_EQ(r.mapping, kEI);
  EXPECT_EQ(r.type, NatType::kUnknown);
}

TEST(NatDiscovery, HairpinningDetected) {
  NatModel m = nat(kEI, kAPD);
  m.hairpin = true;
  SimNet net(m);
  const Report r = net.run();
  EXPECT_EQ(r.hairpinning, true);
  EXPECT_EQ(r.type, NatType::kPortRestrictedCone);
  EXPECT_EQ(net.sent().back().to, ep("203.0.113.5:40000"));
}

TEST(NatDiscovery, StrayAndForgedAnswersAreIgnored) {
  SimNet net(nat(kEI, kAPD));
  DiscoveryConfig c;
  c.test_hairpinning = false;
  // A stray success response claiming another mapping, with an id nobody asked for, and junk.
  stun::Message forged;
  forged.cls = stun::MessageClass::kSuccess;
  forged.transaction_id.fill(0xee);
  forged.xor_mapped_address = ep("6.6.6.6:666");
  net.inject(net.kA1P1, stun::encode(forged));
  net.inject(net.kA1P1, Bytes{0x00, 0x01, 0x00});
  const Report r = net.run(c);
  EXPECT_EQ(r.public_endpoint, ep("203.0.113.5:40000"));
  EXPECT_EQ(r.type, NatType::kPortRestrictedCone);
}

TEST(NatDiscovery, TimeIsBoundedAndRunsAreReproducible) {
  // Port-restricted waits out both filtering probes (3.5 s) and the hairpin probe (3.5 s).
  SimNet a(nat(kEI, kAPD));
  a.run();
  EXPECT_LT(a.elapsed(), 7500ms);
  EXPECT_GE(a.elapsed(), 7000ms);
  SimNet b(nat(kEI, kAPD));
  b.run();
  ASSERT_EQ(a.sent().size(), b.sent().size());
  for (std::size_t i = 0; i < a.sent().size(); ++i) {
    EXPECT_EQ(a.sent()[i].message, b.sent()[i].message);
    EXPECT_EQ(a.sent()[i].at, b.sent()[i].at);
  }
}

TEST(NatDiscovery, EntryPointsAreSafeOutOfOrder) {
  struct Null : Effects {
    int sends = 0;
    void send(const Endpoint&, std::span<const std::uint8_t>) override { ++sends; }
  } effects;
  DiscoveryConfig c;
  c.server = ep("198.51.100.1:3478");
  Discovery d(c, effects,
              [](std::span<std::uint8_t> out) { std::fill(out.begin(), out.end(), 7); });
  const Time t0{};
  EXPECT_EQ(d.on_tick(t0), Time::max());  // before start: nothing
  EXPECT_EQ(d.on_response(t0, c.server, Bytes{}), Time::max());
  EXPECT_EQ(d.start(t0), t0 + 500ms);
  EXPECT_EQ(d.start(t0), t0 + 500ms);  // a second start does not send again
  EXPECT_EQ(effects.sends, 1);
  EXPECT_EQ(d.on_tick(t0 + 100ms), t0 + 500ms);  // early tick: no retransmission
  EXPECT_EQ(effects.sends, 1);
  EXPECT_FALSE(d.done());
}

// ---- Pure helpers ------------------------------------------------------------------------

TEST(NatDiscovery, AnalysePorts) {
  using K = PortAllocation::Kind;
  EXPECT_EQ(analyse_ports({}).kind, K::kNotMeasured);
  EXPECT_EQ(analyse_ports({5000}).kind, K::kNotMeasured);
  auto up = analyse_ports({40000, 40001, 40002, 40003});
  EXPECT_EQ(up.kind, K::kSequential);
  EXPECT_EQ(up.step, 1);
  auto down = analyse_ports({1000, 998, 996});
  EXPECT_EQ(down.kind, K::kSequential);
  EXPECT_EQ(down.step, -2);
  auto wrap = analyse_ports({65535, 1});
  EXPECT_EQ(wrap.kind, K::kSequential);
  EXPECT_EQ(wrap.step, 2);
  auto noisy = analyse_ports({10, 11, 13, 14});  // someone else took a port in between
  EXPECT_EQ(noisy.kind, K::kSequential);
  EXPECT_EQ(noisy.step, 1);
  EXPECT_EQ(analyse_ports({1000, 30000}).kind, K::kRandom);
  EXPECT_EQ(analyse_ports({1000, 1001, 9000}).kind, K::kRandom);
  EXPECT_EQ(analyse_ports({1000, 1000}).kind, K::kRandom);  // same port twice: not a sequence
}

TEST(NatDiscovery, ClassifyAndNames) {
  EXPECT_EQ(classify(std::nullopt, kEI, kEI), NatType::kUnknown);
  EXPECT_EQ(classify(false, kEI, kEI), NatType::kOpen);
  EXPECT_EQ(classify(false, kEI, kAD), NatType::kFirewalled);
  EXPECT_EQ(classify(false, kEI, Behaviour::kUnknown), NatType::kUnknown);
  EXPECT_EQ(classify(true, kEI, kEI), NatType::kFullCone);
  EXPECT_EQ(classify(true, kEI, kAD), NatType::kRestrictedCone);
  EXPECT_EQ(classify(true, kEI, kAPD), NatType::kPortRestrictedCone);
  EXPECT_EQ(classify(true, kAD, Behaviour::kUnknown), NatType::kSymmetric);
  EXPECT_EQ(classify(true, kAPD, kEI), NatType::kSymmetric);
  EXPECT_EQ(classify(true, Behaviour::kUnknown, kEI), NatType::kUnknown);
  EXPECT_STREQ(wire::to_string(NatType::kPortRestrictedCone), "port-restricted cone");
  EXPECT_STREQ(wire::to_string(NatType::kFirewalled), "no NAT, firewalled");
  EXPECT_EQ(to_string(kAPD), "address-and-port-dependent");
}

TEST(NatDiscovery, SummaryCarriesTheTypeAsClassified) {
  // One NAT type from discovery to the wire: each travels as classified, a firewall without
  // NAT included.
  for (auto t : {NatType::kUnknown, NatType::kOpen, NatType::kFullCone, NatType::kRestrictedCone,
                 NatType::kPortRestrictedCone, NatType::kSymmetric, NatType::kUdpBlocked,
                 NatType::kFirewalled}) {
    Report r;
    r.type = t;
    EXPECT_EQ(summarize(r).type, t) << wire::to_string(t);
  }
  Report firewalled;
  firewalled.type = NatType::kFirewalled;
  firewalled.port_preserved = true;
  EXPECT_EQ(summarize(firewalled),
            (wire::NatSummary{NatType::kFirewalled, wire::PortAllocation::kPreserving, 0}));
  Report sequential;
  sequential.type = NatType::kSymmetric;
  sequential.port_allocation = analyse_ports({40000, 40002, 40004});
  EXPECT_EQ(summarize(sequential),
            (wire::NatSummary{NatType::kSymmetric, wire::PortAllocation::kSequential, 2}));
}

TEST(NatDiscovery, DescribeForNetcheck) {
  SimNet net(nat(kAD, kAPD));
  const std::string text = describe(net.run());
  EXPECT_NE(text.find("NAT type:        symmetric\n"), std::string::npos) << text;
  EXPECT_NE(text.find("public endpoint: 203.0.113.5:40000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mapping:         address-dependent\n"), std::string::npos) << text;
  EXPECT_NE(text.find("port allocation: sequential (step 1) from ports 40000 40001\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("hairpinning:     no\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace p2p::nat
