// Hard NATs: which way of punching suits a pair of NATs, and the ports to predict for it.
//
// A symmetric NAT gives every new destination a mapping of its own, so the peer's public
// endpoint (its mapping towards the coordinator) does not take our probes. When that NAT
// allocates ports in sequence (NAT discovery measured the step), the next mappings are
// predictable:
//   kPredictPeer  the peer is symmetric and sequential, we are not: probe the next
//                 kPredictedPorts ports after its public one (its probes to our one mapping
//                 come from one of them).
//   kPredictBoth  both are symmetric and sequential. Our i-th predicted probe leaves through
//                 our own (o + i)-th new mapping, o being the mappings our NAT made since the
//                 coordinator's (the probe to the peer's public endpoint, NAT discovery);
//                 neither side knows the other's o. The side with the lower public endpoint
//                 (the leader) probes every second port, the other every port: the leader's
//                 i-th and the other's j-th probe then meet at i = o_leader + o_other,
//                 j = 2 * o_leader + o_other, found within the window while
//                 2 * o_leader + o_other <= kPredictedPorts, whatever the two offsets are.
// Both symmetric otherwise (a random allocation on either side) no prediction meets: kNone.
//   kBirthday     a port-restricted cone (or a filtering host without NAT) and a symmetric NAT
//                 with random ports, when allowed: birthday_punch.hpp does the punching beside
//                 the plain candidates.
//
// Pure functions; no state, no I/O.
#pragma once

#include <optional>
#include <vector>

#include "net/control.hpp"
#include "net/ip.hpp"

namespace p2p::core {

inline constexpr int kPredictedPorts = 16;

enum class PunchMethod { kPlain, kPredictPeer, kPredictBoth, kNone, kBirthday };
// "plain", "predict-peer", "predict-both", "none", "birthday": the status's punch_method.
const char* to_string(PunchMethod m);

struct PunchPlan {
  PunchMethod method = PunchMethod::kPlain;
  std::vector<Endpoint> predicted;  // at most kPredictedPorts, in the order to probe them
};

// What to punch with, given both public endpoints (as the coordinator saw them) and both NAT
// summaries. `prediction`: mesh.yaml punch.port_prediction; `birthday`: punch.birthday.enabled.
PunchPlan plan_punch(const std::optional<Endpoint>& own_public, const wire::NatSummary& own_nat,
                     const std::optional<Endpoint>& peer_public, const wire::NatSummary& peer_nat,
                     bool prediction, bool birthday = false);

}  // namespace p2p::core
