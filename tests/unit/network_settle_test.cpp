// core::NetworkSettle on a virtual clock: one burst of netlink news is acted on once, 0.5 s
// after the last piece, or 3 s after the first when the news never stops.
#include "daemon/core/network_settle.hpp"

#include <gtest/gtest.h>

namespace p2p::core {
namespace {

using namespace std::chrono_literals;

const Time t0 = Time{} + 100s;

TEST(NetworkSettle, IdleUntilNews) {
  NetworkSettle s;
  EXPECT_EQ(s.deadline(), Time::max());
  EXPECT_FALSE(s.due(t0));
}

TEST(NetworkSettle, ActsHalfASecondAfterTheLastNewsOfABurst) {
  NetworkSettle s;
  EXPECT_EQ(s.on_news(t0), t0 + 500ms);
  EXPECT_EQ(s.on_news(t0 + 200ms), t0 + 700ms);  // more news postpones
  EXPECT_FALSE(s.due(t0 + 699ms));
  EXPECT_TRUE(s.due(t0 + 700ms));
  EXPECT_FALSE(s.due(t0 + 701ms));  // once per burst
  EXPECT_EQ(s.deadline(), Time::max());
}

TEST(NetworkSettle, FlappingCannotPostponeItPastThreeSeconds) {
  NetworkSettle s;
  Time last{};
  for (Duration t{}; t < 10s; t += 300ms) last = s.on_news(t0 + t);
  EXPECT_EQ(last, t0 + 3s);
  EXPECT_FALSE(s.due(t0 + 3s - 1ms));
  EXPECT_TRUE(s.due(t0 + 3s));
}

TEST(NetworkSettle, NewsAfterActingStartsANewBurst) {
  NetworkSettle s;
  s.on_news(t0);
  ASSERT_TRUE(s.due(t0 + 500ms));
  // The 3 s cap counts from the new burst's first news, not the old one's.
  EXPECT_EQ(s.on_news(t0 + 10s), t0 + 10s + 500ms);
  for (Duration t = 300ms; t < 5s; t += 300ms) s.on_news(t0 + 10s + t);
  EXPECT_EQ(s.deadline(), t0 + 13s);
}

}  // namespace
}  // namespace p2p::core
