// core::plan_punch: which punch each pair of NATs gets and the ports it predicts; and the
// arithmetic that makes predict-both meet within the window whatever the two offsets are.
#include "daemon/core/hard_nat_punch.hpp"

#include <gtest/gtest.h>

#include <set>

namespace p2p::core {
namespace {

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

const wire::NatSummary kCone{wire::NatType::kPortRestrictedCone, wire::PortAllocation::kPreserving,
                             0};
const wire::NatSummary kSeq{wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 1};
const wire::NatSummary kRandom{wire::NatType::kSymmetric, wire::PortAllocation::kRandom, 0};
const Endpoint kLow = ep("198.51.100.1:20000");
const Endpoint kHigh = ep("198.51.100.2:30000");

TEST(HardNatPunch, MethodPerPairOfNats) {
  EXPECT_EQ(plan_punch(kLow, kCone, kHigh, kCone, true).method, PunchMethod::kPlain);
  EXPECT_EQ(plan_punch(kLow, kCone, kHigh, kRandom, true).method, PunchMethod::kPlain);
  EXPECT_EQ(plan_punch(kLow, kCone, kHigh, kSeq, true).method, PunchMethod::kPredictPeer);
  EXPECT_EQ(plan_punch(kLow, kSeq, kHigh, kCone, true).method, PunchMethod::kPlain);
  EXPECT_EQ(plan_punch(kLow, kSeq, kHigh, kSeq, true).method, PunchMethod::kPredictBoth);
  EXPECT_EQ(plan_punch(kLow, kSeq, kHigh, kRandom, true).method, PunchMethod::kNone);
  EXPECT_EQ(plan_punch(kLow, kRandom, kHigh, kRandom, true).method, PunchMethod::kNone);
  // Without prediction, or without both public endpoints, two symmetric NATs never meet.
  EXPECT_EQ(plan_punch(kLow, kSeq, kHigh, kSeq, false).method, PunchMethod::kNone);
  EXPECT_EQ(plan_punch(std::nullopt, kSeq, kHigh, kSeq, true).method, PunchMethod::kNone);
  EXPECT_TRUE(plan_punch(kLow, kCone, kHigh, kSeq, false).predicted.empty());
  EXPECT_STREQ(to_string(PunchMethod::kPredictBoth), "predict-both");
}

TEST(HardNatPunch, TheLowerEndpointLeadsWithEverySecondPort) {
  auto lead = plan_punch(kLow, kSeq, kHigh, kSeq, true);
  auto follow = plan_punch(kHigh, kSeq, kLow, kSeq, true);
  ASSERT_EQ(lead.predicted.size(), static_cast<std::size_t>(kPredictedPorts));
  ASSERT_EQ(follow.predicted.size(), static_cast<std::size_t>(kPredictedPorts));
  for (int k = 1; k <= kPredictedPorts; ++k) {
    EXPECT_EQ(lead.predicted[k - 1],
              (Endpoint{kHigh.address, static_cast<std::uint16_t>(30000 + 2 * k)}));
    EXPECT_EQ(follow.predicted[k - 1],
              (Endpoint{kLow.address, static_cast<std::uint16_t>(20000 + k)}));
  }
}

// Two sequential NATs (steps 1 and 3) whose hosts made o_lead and o_follow other mappings since
// the coordinator's: the i-th probe of each side leaves from its NAT's (o + i)-th next port. A
// pair of probes meets when each is sent to the port the other left from. It does for every
// pair of offsets with 2 * o_lead + o_follow <= kPredictedPorts.
TEST(HardNatPunch, PredictBothMeetsForEveryOffsetInTheWindow) {
  const wire::NatSummary step3{wire::NatType::kSymmetric, wire::PortAllocation::kSequential, 3};
  for (int o_lead = 0; o_lead <= kPredictedPorts; ++o_lead) {
    for (int o_follow = 0; o_follow <= kPredictedPorts; ++o_follow) {
      auto lead = plan_punch(kLow, kSeq, kHigh, step3, true);
      auto follow = plan_punch(kHigh, step3, kLow, kSeq, true);
      std::set<std::pair<int, int>> lead_flows, follow_flows;  // (source port, destination port)
      for (int i = 1; i <= static_cast<int>(lead.predicted.size()); ++i)
        lead_flows.insert({kLow.port + (o_lead + i) * 1, lead.predicted[i - 1].port});
      for (int j = 1; j <= static_cast<int>(follow.predicted.size()); ++j)
        follow_flows.insert({kHigh.port + (o_follow + j) * 3, follow.predicted[j - 1].port});
      bool met = false;
      for (auto [src, dst] : lead_flows) met = met || follow_flows.count({dst, src});
      EXPECT_EQ(met, o_lead + o_follow >= 1 && 2 * o_lead + o_follow <= kPredictedPorts)
          << o_lead << " " << o_follow;
    }
  }
}

}  // namespace
}  // namespace p2p::core
