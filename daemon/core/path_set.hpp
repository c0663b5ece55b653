// PathSet: every way to reach one peer directly, and the choice among them.
//
// A Path is a transport and an endpoint, with a kind that says where the candidate came from
// (a new source, such as a router's port mapping, is another PathKind value). A TCP path is a
// stream punched by simultaneous open (tcp_punch.hpp), added once the peer handshake over it
// proved who is behind it (add_stream()) and removed when the stream closes; it is probed over
// its stream like any path. Choice: UDP direct > TCP direct > the relay. The relay through the
// coordinator is not a Path: it is what the peer falls back to while no direct path is confirmed
// (active() == nullptr).
//
// Life of a path:
//   candidate  start_punching() gathers them (the peer's router port mapping, its public
//              endpoint, its LAN endpoints when we share a NAT, predicted ports for a
//              sequential symmetric NAT) and
//              on_probe() adds the source of a probe we did not expect (peer-reflexive);
//   probing    tick() sends an authenticated PathProbe on every candidate (fast for the first
//              2 s of punching, then slower) through PathEffects::send_probe;
//   confirmed  on_ack() for an outstanding probe from the same endpoint proves both directions
//              and gives the RTT; choose() then prefers LAN over public, then the lower RTT;
//   dead       kProbesToDeclareDead probes in a row unanswered (one after check_now()).
// Punching ends at the first confirmed path of the best kind available, or at the punch
// timeout: unconfirmed candidates are dropped and a retry is due after a doubling backoff
// (tick() reports it; the owner asks the coordinator for a fresh introduction).
//
// Time is handed in; deadline() is the earliest time tick() has work (Time::max(): none).
// Threading: none.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/core/hard_nat_punch.hpp"
#include "daemon/status/status.hpp"
#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::core {

enum class Force { kAuto, kDirect, kRelay };
enum class Transport { kUdp, kTcp };
const char* to_string(Transport t);
// A peer's transport policy (mesh.yaml peers[].transport): kAuto punches UDP and, when that
// fails, TCP; kUdp never punches TCP; kTcp skips the UDP punch.
enum class TransportPolicy { kAuto, kUdp, kTcp };
// Where a candidate came from: the peer's own interface (LAN), its public endpoint as the
// coordinator saw it, a source we saw its probes come from (peer-reflexive), a port we
// predicted for a symmetric NAT, or the port its router mapped for it (UPnP IGD, NAT-PMP,
// PCP; reachable whatever the NATs on either side do).
enum class PathKind { kLan, kPublic, kReflexive, kPredicted, kMapped };
const char* to_string(PathKind k);

struct Path {
  Transport transport = Transport::kUdp;
  Endpoint endpoint;
  PathKind kind = PathKind::kPublic;
  std::optional<Time> last_ack;  // last PathProbeAck received on it
  std::optional<Duration> rtt;   // from the last ack
  std::uint64_t probe_id = 0;    // outstanding probe (0: none)
  Time probe_sent{};
  Time next_probe{};
  int unanswered = 0;      // consecutive probes without ack
  bool confirmed = false;  // acked and not since declared dead
  // The node's socket it is used from: 0 the node's own, else an extra socket a birthday punch
  // opened and the path adopted (birthday_punch.hpp).
  std::uint32_t socket = 0;
  std::uint32_t stream = 0;  // kTcp: the stream it runs over (the shell's handle)
};

// The node-wide settings paths follow (mesh.yaml keepalive and punch section).
struct PathPolicy {
  Duration keepalive = std::chrono::seconds(25);
  bool punch_enabled = true;
  Duration punch_timeout = std::chrono::seconds(10);
  bool port_prediction = true;
  NodeCounters* counters = nullptr;  // where punching rounds are counted, when set
  bool birthday = false;             // punch.birthday.enabled
};

// What candidates are gathered from: the peer's introduction and what we know of ourselves.
struct CandidateSources {
  std::optional<Endpoint> peer_public;
  std::span<const Endpoint> peer_local;
  wire::NatSummary peer_nat;
  std::optional<Endpoint> own_public;
  wire::NatSummary own_nat;
  std::optional<Endpoint> peer_mapped;  // the peer's router port mapping
  bool own_mapped = false;              // we hold one: the peer can reach us whatever our NAT
};

class PathEffects {
 public:
  virtual ~PathEffects() = default;
  // Sends PathProbe{probe_id, to} to `to`, sealed in the peer's session.
  virtual void send_probe(const Endpoint& to, std::uint64_t probe_id) = 0;
  // The same from the extra socket `socket` (Path::socket, never 0).
  virtual void send_probe_via(std::uint32_t /*socket*/, const Endpoint& to,
                              std::uint64_t probe_id) {
    send_probe(to, probe_id);
  }
  // Sends PathProbe on the TCP path over `stream`. A world without streams has no TCP paths.
  virtual void send_stream_probe(std::uint32_t /*stream*/, std::uint64_t /*probe_id*/) {}
};

inline constexpr std::size_t kMaxCandidates = 24;
inline constexpr int kProbesToDeclareDead = 3;
inline constexpr Duration kProbeTimeout = std::chrono::seconds(1);
inline constexpr Duration kActiveProbeInterval = std::chrono::seconds(2);  // under traffic
inline constexpr Duration kPunchFastInterval = std::chrono::milliseconds(250);
inline constexpr Duration kPunchFastPhase = std::chrono::seconds(2);
inline constexpr Duration kPunchSlowInterval = std::chrono::seconds(1);
inline constexpr Duration kFirstPunchBackoff = std::chrono::seconds(15);
inline constexpr Duration kMaxPunchBackoff = std::chrono::seconds(300);
inline constexpr Duration kRetryAfterLoss = std::chrono::seconds(1);

class PathSet {
 public:
  // `probe_seed`: where probe ids start (from the injected randomness); ids are odd, never 0.
  PathSet(const PathPolicy& policy, spdlog::logger& log, std::uint64_t probe_seed);

  // The peer's name for log lines, and its policy (kRelay: never a direct path).
  void set_name(std::string name) { name_ = std::move(name); }
  void set_force(Force f) { force_ = f; }
  Force force() const { return force_; }

  // Gathers candidates and probes them all now, unless policy says relay (relay_reason()
  // then tells why: "forced", "punching disabled", "both symmetric", "no candidates").
  // `traffic` as for tick().
  void start_punching(Time now, const CandidateSources& c, bool traffic, PathEffects& fx);
  // An authenticated PathProbe arrived directly from `from`, on `socket` (0: the node's own;
  // a path is its endpoint and its socket). A source we did not know becomes a
  // peer-reflexive candidate; kMoved: it appeared while we were not punching (the peer may
  // have moved, or its NAT remapped it): every confirmed path is now being checked
  // (check_now()) and the owner should start punching again at once, beside them.
  enum class ProbeSource { kKnown, kNew, kMoved };
  ProbeSource on_probe(Time now, const Endpoint& from, std::uint32_t socket = 0);
  // A PathProbeAck: confirms the path it answers if `from` is that path's endpoint. Returns
  // whether it matched an outstanding probe.
  bool on_ack(Time now, std::uint64_t probe_id, const Endpoint& from, std::uint32_t socket = 0);
  // One probe decides every confirmed path: unanswered, it is dead (traffic falls back to the
  // relay and punching starts over); answered, nothing changes.
  void check_now(Time now);
  // A TCP stream to the peer whose peer handshake completed: a confirmed TCP path (replacing
  // any TCP path held before), chosen unless a UDP path is confirmed.
  void add_stream(Time now, std::uint32_t stream, const Endpoint& remote);
  // The stream closed: its path is gone (the relay, or a UDP path, takes over). True when it
  // was the path in use.
  bool remove_stream(Time now, std::uint32_t stream);
  // The TCP path, if any.
  const Path* tcp() const;
  // A PathProbeAck that arrived on `stream`: confirms the TCP path over it.
  bool on_stream_ack(Time now, std::uint64_t probe_id, std::uint32_t stream);

  // Probes what is due, declares dead what went unanswered, ends punching at its deadline.
  // `traffic`: data flowed recently (the active path is then probed every 2 s, else at the
  // keepalive interval).
  struct TickResult {
    bool active_lost = false;  // the active path died: our NAT may have dropped its mappings
    bool retry_due = false;    // on the relay and the backoff passed: time to punch again
  };
  TickResult tick(Time now, bool traffic, PathEffects& fx);
  // The session lapsed: forget every path; the peer is relayed for `reason` until punched again.
  void reset(std::string reason);
  // UDP has just been seen to work again (our coordinator answers over UDP once more): unless
  // a UDP path is in use or a round is under way, punch UDP again at once, backoff reset.
  void retry_udp_soon(Time now);

  const Path* active() const { return active_ >= 0 ? &paths_[active_] : nullptr; }
  std::span<const Path> paths() const { return paths_; }
  // Whether a path is used from the extra socket `socket`.
  bool uses_socket(std::uint32_t socket) const;
  bool punching() const { return punching_; }
  const std::string& relay_reason() const { return relay_reason_; }
  // How the last punching round went about it (hard_nat_punch.hpp).
  PunchMethod punch_method() const { return method_; }
  void set_relay_reason(std::string reason) { relay_reason_ = std::move(reason); }
  Time deadline() const { return deadline_; }
  // A fresh probe id (odd, never 0), also for pings over the current path.
  std::uint64_t next_probe_id() {
    probe_counter_ += 2;
    return probe_counter_;
  }

 private:
  void add_candidate(const Endpoint& ep, PathKind kind, std::uint32_t socket = 0);
  void choose(Time now);
  static void send_probe(PathEffects& fx, const Path& path);
  // Removes the paths matching `pred`, keeping active_ on the path it named.
  template <class Pred>
  void erase_paths(Pred pred);
  void schedule(Time t) {
    if (t < deadline_) deadline_ = t;
  }
  // A UDP path is in use (no background UDP punching needed).
  bool on_udp() const { return active_ >= 0 && paths_[active_].transport == Transport::kUdp; }

  const PathPolicy& policy_;
  spdlog::logger& log_;
  std::string name_;
  Force force_ = Force::kAuto;
  std::vector<Path> paths_;
  int active_ = -1;  // index into paths_ of the direct path in use, or -1: relay
  bool punching_ = false;
  Time punch_started_{};
  Time punch_deadline_{};
  Time next_retry_ = Time::max();
  Duration backoff_ = kFirstPunchBackoff;
  std::string relay_reason_ = "connecting";
  std::uint64_t probe_counter_;
  Time deadline_ = Time::max();
  PunchMethod method_ = PunchMethod::kPlain;
};

}  // namespace p2p::core
