// NAT behaviour discovery (RFC 5780 sections 4.3-4.5) from the client side, as an I/O-free
// state machine, over the STUN codec in net/stun.hpp. The daemon runs it; p2pvpnctl only renders
// its Report.
//
// Driving it: start(now), then on_response(now, from, datagram) for every STUN datagram that
// arrives on the socket, and on_tick(now) whenever the returned deadline passes. Each returns
// the next deadline (Time::max() once done()). Probes leave through Effects::send, all from the
// caller's ONE socket. Transaction ids come from the injected RandomFill, so a seeded source
// makes a run reproducible. No clock, no socket, no thread.
//
// The tests run one after another, so that the order in which the NAT creates mappings is
// known (port-allocation measurement needs it) and no probe opens a filter early:
//   I     Binding to the server (A1:P1)            -> public endpoint M1, OTHER-ADDRESS A2:P2.
//         No answer within test_timeout: UDP blocked. No OTHER-ADDRESS: stop, behaviour unknown.
//   F-II  to A1:P1 with CHANGE-REQUEST ip+port     } sent together, before anything goes to A2:
//   F-III to A1:P1 with CHANGE-REQUEST port        } F-II answered -> endpoint-independent
//         filtering; else F-III answered -> address-dependent; neither -> address-and-port.
//   M-II  to A2:P1 -> M2 == M1: endpoint-independent mapping (skipped when M1 is local: no NAT)
//   M-III to A2:P2 -> M3 == M2: address-dependent, else address-and-port-dependent mapping
//   M-IV  to A1:P2 (address-and-port-dependent only) -> a fourth mapped port
//   H     to M1 itself: our own request coming back means the NAT hairpins.
// Ports of the mappings created in that order give the allocation: every delta small -> the
// NAT allocates sequentially (step = the usual delta), otherwise randomly. Other traffic on the
// socket during discovery creates mappings too and can make a sequential NAT look random.
//
// Each probe is retransmitted after initial_rto, doubling, and abandoned test_timeout after its
// first transmission (defaults: sends at 0, 0.5, 1.5 s, given up at 3.5 s). A response counts
// when its transaction id is an outstanding probe's; filtering answers must also come from the
// address CHANGE-REQUEST asked for, else the server does not honour it and filtering is unknown.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/stun.hpp"
#include "net/time.hpp"

namespace p2p::nat {

namespace stun = wire::stun;

// RFC 4787 behaviour, for mapping and for filtering alike.
enum class Behaviour : std::uint8_t {
  kUnknown,
  kEndpointIndependent,
  kAddressDependent,
  kAddressAndPortDependent,
};
std::string_view to_string(Behaviour b);

// The classic (RFC 3489) names: the wire's NatType (net/control.hpp), so that what discovery
// classifies is what the node registers. wire::to_string() names them.
using wire::NatType;

struct PortAllocation {
  enum class Kind : std::uint8_t { kNotMeasured, kSequential, kRandom };
  Kind kind = Kind::kNotMeasured;
  int step = 0;                      // kSequential: the usual delta between successive ports
  std::vector<std::uint16_t> ports;  // mapped ports, in the order their mappings were made
};
inline constexpr int kMaxSequentialStep = 64;
// Sequential when every successive delta (mod 2^16) is non-zero and within
// +-kMaxSequentialStep; the step is the most frequent delta (ties: the smallest). Fewer than two
// ports: not measured. With two ports (address-dependent mapping) it rests on one delta.
PortAllocation analyse_ports(std::vector<std::uint16_t> ports);

struct Report {
  Endpoint server;  // the STUN server asked (DiscoveryConfig::server)
  bool udp_blocked = false;
  std::optional<Endpoint> public_endpoint;  // XOR-MAPPED-ADDRESS of test I
  std::optional<bool> behind_nat;           // false: public endpoint is one of local_endpoints
  // Behind a NAT: the public port of test I equals the local port (port-preserving NAT).
  std::optional<bool> port_preserved;
  bool server_rfc5780 = false;  // server sent a usable OTHER-ADDRESS
  Behaviour mapping = Behaviour::kUnknown;
  Behaviour filtering = Behaviour::kUnknown;
  std::optional<bool> hairpinning;
  PortAllocation port_allocation;
  NatType type = NatType::kUnknown;
};
NatType classify(std::optional<bool> behind_nat, Behaviour mapping, Behaviour filtering);
// Several "key: value" lines for `p2pvpnctl netcheck`.
std::string describe(const Report& r);

// What a node tells the coordinator (and through it, its peers) about its NAT: the type as
// classified, and how its ports are allocated.
wire::NatSummary summarize(const Report& r);

class Effects {
 public:
  virtual ~Effects() = default;
  virtual void send(const Endpoint& to, std::span<const std::uint8_t> datagram) = 0;
};

// Fills the span with random bytes (randombytes_buf in the daemon, a seeded PRNG in tests).
using RandomFill = std::function<void(std::span<std::uint8_t>)>;

struct DiscoveryConfig {
  Endpoint server;  // the STUN server's primary endpoint A1:P1
  // The socket's own address(es) with its port; for a socket bound to a wildcard, one per
  // interface address. Empty: behind_nat is reported true whatever the server says.
  std::vector<Endpoint> local_endpoints;
  Duration initial_rto = std::chrono::milliseconds(500);
  Duration test_timeout = std::chrono::milliseconds(3500);
  bool test_hairpinning = true;
  bool measure_port_allocation = true;
  std::string software;  // SOFTWARE in requests; empty = none
};

class Discovery {
 public:
  // effects must outlive the Discovery. One Discovery runs once; make a new one to re-run.
  Discovery(DiscoveryConfig config, Effects& effects, RandomFill random);

  Time start(Time now);
  // Any STUN datagram received on the socket; datagrams that do not answer an outstanding probe
  // (or, for the hairpin test, are not our own request) are ignored.
  Time on_response(Time now, const Endpoint& from, std::span<const std::uint8_t> datagram);
  Time on_tick(Time now);

  bool done() const { return phase_ == Phase::kDone; }
  Time next_deadline() const;
  // Complete once done(); before that, what has been learnt so far.
  const Report& report() const { return report_; }

 private:
  enum class Phase : std::uint8_t { kIdle, kTestI, kFiltering, kMapping, kHairpin, kDone };
  enum class ProbeKind : std::uint8_t {
    kTestI,
    kFilterII,
    kFilterIII,
    kMapII,
    kMapIII,
    kMapIV,
    kHairpin
  };
  enum class ProbeState : std::uint8_t { kPending, kAnswered, kFailed, kTimedOut };
  struct Probe {
    ProbeKind kind = ProbeKind::kTestI;
    stun::TransactionId id{};
    Endpoint to;
    std::vector<std::uint8_t> bytes;
    Time first_sent{}, next_send{};
    Duration rto{};
    ProbeState state = ProbeState::kPending;
    Endpoint mapped;  // kAnswered: the mapped endpoint it reported
    Endpoint from;    // kAnswered: where the answer came from
  };

  void send_probe(Time now, ProbeKind kind, const Endpoint& to,
                  std::optional<stun::ChangeRequest> change = {});
  Probe* find(ProbeKind kind);
  void handle(Probe& p, const Endpoint& from, const stun::Message& m);
  void advance(Time now);
  void after_test_i(Time now);
  void after_filtering(Time now);
  void after_mapping(Time now);
  void finish();

  DiscoveryConfig config_;
  Effects& effects_;
  RandomFill random_;
  Phase phase_ = Phase::kIdle;
  std::vector<Probe> probes_;
  std::optional<Endpoint> other_;  // A2:P2
  Report report_;
};

}  // namespace p2p::nat
