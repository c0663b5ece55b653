// BirthdayPunch: a bounded, rate-limited "birthday" punch between a cone NAT (port-restricted;
// a full or restricted cone is already reached by plain punching) and a symmetric NAT that
// allocates its ports at random, where no port can be predicted.
//
// The symmetric side (kSockets) opens up to `sockets` extra UDP sockets; each one's first
// datagram makes a fresh mapping on its NAT, and each sends probes to the cone side's one
// public endpoint. The cone side (kPorts) sends probes from its own socket to distinct random
// ports of the symmetric side's public address. A probe of the cone side that lands on a port
// one of those sockets is mapped to passes the symmetric NAT (the mapping was made towards
// exactly that endpoint); a probe of the symmetric side passes the cone NAT once the cone
// side has sent to its mapped port. Either order makes a hit, so the chance is the birthday
// problem's: with S sockets and P probed ports of 65536, 1 - (1 - S/65536)^P; 256 x 256
// gives ~64 %, 256 x 1024 ~98 %.
//
// Probes are the peers' authenticated PathProbes (sealed in their session, set up over the
// relay), so a hit is an ordinary peer-reflexive candidate of the peer's PathSet: the Node
// tells the attempt of the first authenticated datagram that arrived directly (hit()), and
// on the symmetric side the socket it came on is the one to keep (adopted: the path sends
// from it from then on); every other socket is closed at once.
//
// It must never hurt the routers it runs through, so everything is capped: sockets, probes
// per second (both sides), probes per attempt; one attempt at a time per node; after an
// attempt that found nothing, no other for kFirstBackoff, doubling up to kMaxBackoff (a hit
// resets it).
//
// I/O-free: time is handed in, sockets and probes go out through BirthdayEffects.
// Threading: none.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::core {

// mesh.yaml punch.birthday.
struct BirthdaySettings {
  bool enabled = true;
  int sockets = 256;            // extra sockets the symmetric side opens, at most
  int probes_per_second = 200;  // either side
  int max_probes = 1024;        // per side and attempt
  bool operator==(const BirthdaySettings&) const = default;
};

// The shell's extra UDP sockets (daemon/shell/punch_sockets.hpp; tests/support/sim_net).
// Socket ids are never 0 (0 is the node's own socket). Datagrams arriving on one go to
// Node::on_punch_udp() until it is closed.
class PunchSocketEffects {
 public:
  virtual ~PunchSocketEffects() = default;
  // A new UDP socket on the node socket's address, any port; 0: none could be opened.
  virtual std::uint32_t open_punch_socket() = 0;
  virtual void send_punch(std::uint32_t socket, const Endpoint& to,
                          std::span<const std::uint8_t> datagram) = 0;
  virtual void close_punch_socket(std::uint32_t socket) = 0;
  // `socket` carries a direct path now, until it is closed (for the shell's log).
  virtual void adopt_punch_socket(std::uint32_t /*socket*/) {}
};

// What an attempt asks of the Node.
class BirthdayEffects {
 public:
  virtual ~BirthdayEffects() = default;
  virtual std::uint32_t open_socket() = 0;  // 0: failed
  virtual void close_socket(std::uint32_t socket) = 0;
  // A PathProbe to the peer, sealed in its session, from `socket` (0: the node's own).
  virtual void send_probe(std::uint32_t socket, const Endpoint& to) = 0;
  virtual std::uint64_t random() = 0;
};

class BirthdayPunch {
 public:
  enum class Role {
    kSockets,  // we are the symmetric side: many sockets, one destination
    kPorts,    // we are the cone side: one socket, many destination ports
  };
  static constexpr Duration kFirstBackoff = std::chrono::minutes(1);
  static constexpr Duration kMaxBackoff = std::chrono::minutes(30);
  // After the last probe, answers are waited for this long before the attempt fails.
  static constexpr Duration kLinger = std::chrono::seconds(2);
  // Late ticks catch up with the rate by at most this many probes at once.
  static constexpr int kBurst = 8;

  explicit BirthdayPunch(BirthdaySettings settings) : settings_(settings) {}

  // Whether an attempt may start now: enabled, none running, the back-off passed.
  bool can_start(Time now) const;
  // Starts an attempt for the peer `peer` (its virtual IP) now. `target`: for kSockets the
  // peer's public endpoint, for kPorts its public address (the port is ignored). Sends what is
  // due at once.
  void start(Time now, Ipv4 peer, Role role, const Endpoint& target, BirthdayEffects& fx);
  // Sends what the rate allows, ends a finished attempt (a failure: sockets closed, back-off).
  void tick(Time now, BirthdayEffects& fx);
  // An authenticated datagram from `peer` arrived directly, on `socket` (0: the node's own):
  // the attempt succeeded. Every socket but `socket` is closed; returns `socket` when it is one
  // of the attempt's (the caller now owns it: adopt it), else nullopt. No attempt starts in
  // the next kLinger (the peer's answers to the other probes still arrive).
  std::optional<std::uint32_t> hit(Time now, Ipv4 peer, std::uint32_t socket, BirthdayEffects& fx);
  // Ends the attempt for `peer` now without a hit (the peer went away, a direct path came
  // another way), closing its sockets; no back-off.
  void cancel(Ipv4 peer, BirthdayEffects& fx);

  bool running() const { return running_; }
  std::optional<Ipv4> peer() const { return running_ ? std::optional<Ipv4>(peer_) : std::nullopt; }
  // Whether `socket` is one of the running attempt's.
  bool owns(std::uint32_t socket) const;
  // When tick() has work: the next probe, or the end of the attempt; Time::max() when idle.
  Time deadline() const {
    if (!running_) return Time::max();
    return sent_ < settings_.max_probes ? next_ : end_;
  }
  // No attempt starts before this (the back-off after a failure).
  Time not_before() const { return not_before_; }
  void set_settings(const BirthdaySettings& s) { settings_ = s; }
  const BirthdaySettings& settings() const { return settings_; }

  struct Counters {
    std::uint64_t attempts = 0, probes = 0, successes = 0, sockets_opened = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  void send_one(Time now, BirthdayEffects& fx);
  // Closes every socket but `keep` and ends the attempt; fail() also starts the back-off.
  void finish(BirthdayEffects& fx, std::optional<std::uint32_t> keep);
  void fail(Time now, BirthdayEffects& fx);
  std::uint16_t fresh_port(BirthdayEffects& fx);

  BirthdaySettings settings_;
  bool running_ = false;
  Ipv4 peer_;
  Role role_ = Role::kPorts;
  Endpoint target_;
  Time started_{};
  Time next_{};  // the next probe is due
  Time end_{};   // set once every probe is sent: the attempt fails then
  int sent_ = 0;
  bool sockets_exhausted_ = false;  // the shell could not open another
  std::vector<std::uint32_t> sockets_;
  std::bitset<65536> probed_;  // kPorts: the ports probed in this attempt
  Time not_before_{};
  Duration backoff_ = kFirstBackoff;
  Counters counters_;
};

}  // namespace p2p::core
