// NetworkSettle: when to act on a burst of network news (rtnetlink reports addresses, links
// and default routes changing one message at a time, often a dozen for one change).
//
// Acts kSettle after the last news, but no later than kSettleMax after the first, so that an
// interface that keeps flapping cannot postpone acting for ever. I/O-free: the shell hands in
// the time of each piece of news and arms one timer to deadline(); due() says when to act.
#pragma once

#include <optional>

#include "net/time.hpp"

namespace p2p::core {

class NetworkSettle {
 public:
  static constexpr Duration kSettle = std::chrono::milliseconds(500);
  static constexpr Duration kSettleMax = std::chrono::seconds(3);

  // News arrived at `now`; returns the new deadline.
  Time on_news(Time now);
  // The time to act has come: true once per burst (the next news starts a new one).
  bool due(Time now);
  // When to act; Time::max() while nothing is pending.
  Time deadline() const { return deadline_; }

 private:
  std::optional<Time> first_;
  Time deadline_ = Time::max();
};

}  // namespace p2p::core
