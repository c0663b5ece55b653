// TcpPunchBroker: the coordinator's part of a TCP hole punch by simultaneous open, I/O-free.
//
// The classic recipe is serial: A shows itself on the assist port and asks for B; B is told,
// shows itself, fires a SYN at A that its own NAT will remember, says "ready"; only then is A
// told where B is, and A's SYN completes the open. Here both sides are told at once, as the
// UDP introductions are:
//
//   A: TcpPunchRequest{id, B, token_a} on its control session, and at the same moment the
//      assist hello(token_a) from its punch port (which also listens)
//   coordinator: TcpPunchOffer{id_b, A, token_b} to B (token_b random)
//   B: the assist hello(token_b) from its punch port (which also listens)
//   coordinator, once both public TCP endpoints are known: TcpPunchGo to A and to B together
//   A and B: connect to each other from their punch ports, retrying briefly (tcp_punch.hpp)
//
// This saves B's "ready" leg through the coordinator (a one-way trip to the coordinator and
// one back to A) and B's lone SYN that exists only to open its NAT: both SYNs leave at about
// the same time, so each NAT has seen its own outgoing SYN when the peer's arrives, or a
// retry a few hundred milliseconds later finds it open.
//
// Bounded: at most `max_punches` in progress (a request beyond that fails at once), each
// forgotten after `timeout`; a token is matched once. The assist hello is unauthenticated but
// carries a 128-bit random token only ever sent inside an encrypted session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "net/control.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::coord {

class TcpPunchBroker {
 public:
  struct Side {
    Ipv4 vip;
    std::uint32_t punch_id = 0;
    wire::PunchToken token{};
    std::optional<Endpoint> observed;  // its public TCP endpoint, once seen on the assist port
  };
  // Both public endpoints known: what to tell each side, at once.
  struct Go {
    Ipv4 a, b;
    wire::TcpPunchGo to_a, to_b;
  };
  // A punch that timed out before both sides showed themselves.
  struct Expired {
    Side a, b;
  };

  TcpPunchBroker(std::size_t max_punches, Duration timeout)
      : max_(max_punches), timeout_(timeout) {}

  // A punch from `a` (its request) to `b` (offered `b.punch_id` and `b.token`): false when the
  // table is full or either token is already in use.
  bool start(Time now, const Side& a, const Side& b);
  // An assist hello with `token` arrived from `from`. Returns the pair to tell when this was
  // the second side to show itself; an unknown token is nullopt (and counted by the caller).
  std::optional<Go> observe(const wire::PunchToken& token, const Endpoint& from);
  // Forgets the punches older than the timeout, calling on_expired(Expired) for each.
  template <class F>
  void expire(Time now, F&& on_expired);
  bool knows(const wire::PunchToken& token) const {
    return punches_.contains(token) || by_b_token_.contains(token);
  }
  Time next_deadline() const;
  std::size_t size() const { return punches_.size(); }

 private:
  struct Punch {
    Side a, b;
  };
  std::size_t max_;
  Duration timeout_;
  std::map<wire::PunchToken, Punch> punches_;  // by A's token
  std::map<wire::PunchToken, wire::PunchToken> by_b_token_;
  std::deque<std::pair<Time, wire::PunchToken>> deadlines_;  // in start order = deadline order
};

template <class F>
void TcpPunchBroker::expire(Time now, F&& on_expired) {
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    auto it = punches_.find(deadlines_.front().second);
    deadlines_.pop_front();
    if (it == punches_.end()) continue;  // matched (and forgotten) already
    Expired e{it->second.a, it->second.b};
    by_b_token_.erase(it->second.b.token);
    punches_.erase(it);
    on_expired(e);
  }
}

}  // namespace p2p::coord
