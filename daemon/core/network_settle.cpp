#include "daemon/core/network_settle.hpp"

#include <algorithm>

namespace p2p::core {

Time NetworkSettle::on_news(Time now) {
  if (!first_) first_ = now;
  deadline_ = std::min(now + kSettle, *first_ + kSettleMax);
  return deadline_;
}

bool NetworkSettle::due(Time now) {
  if (!first_ || now < deadline_) return false;
  first_.reset();
  deadline_ = Time::max();
  return true;
}

}  // namespace p2p::core
