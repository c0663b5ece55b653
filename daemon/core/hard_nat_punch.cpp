#include "daemon/core/hard_nat_punch.hpp"

namespace p2p::core {
namespace {

bool symmetric(const wire::NatSummary& n) {
  return n.type == wire::NatType::kSymmetric;
}
bool sequential(const wire::NatSummary& n) {
  return symmetric(n) && n.allocation == wire::PortAllocation::kSequential && n.port_step != 0;
}

bool random_symmetric(const wire::NatSummary& n) {
  return symmetric(n) && n.allocation == wire::PortAllocation::kRandom;
}
// One mapping for every destination, but only the destinations it sent to may answer.
bool port_restricted(const wire::NatSummary& n) {
  return n.type == wire::NatType::kPortRestrictedCone || n.type == wire::NatType::kFirewalled;
}

// kPredictedPorts ports after `from`, `stride` steps apart; stops at the end of the port range.
std::vector<Endpoint> predict(const Endpoint& from, int step, int stride) {
  std::vector<Endpoint> out;
  for (int k = 1; k <= kPredictedPorts; ++k) {
    int port = from.port + k * stride * step;
    if (port <= 0 || port > 65535) break;
    out.push_back(Endpoint{from.address, static_cast<std::uint16_t>(port)});
  }
  return out;
}

}  // namespace

const char* to_string(PunchMethod m) {
  switch (m) {
    case PunchMethod::kPlain: return "plain";
    case PunchMethod::kPredictPeer: return "predict-peer";
    case PunchMethod::kPredictBoth: return "predict-both";
    case PunchMethod::kNone: return "none";
    case PunchMethod::kBirthday: return "birthday";
  }
  return "?";
}

PunchPlan plan_punch(const std::optional<Endpoint>& own_public, const wire::NatSummary& own_nat,
                     const std::optional<Endpoint>& peer_public, const wire::NatSummary& peer_nat,
                     bool prediction, bool birthday) {
  PunchPlan plan;
  if (birthday && own_public && peer_public &&
      ((port_restricted(own_nat) && random_symmetric(peer_nat)) ||
       (random_symmetric(own_nat) && port_restricted(peer_nat)))) {
    plan.method = PunchMethod::kBirthday;
    return plan;
  }
  if (symmetric(own_nat) && symmetric(peer_nat)) {
    if (!prediction || !own_public || !peer_public || !sequential(own_nat) ||
        !sequential(peer_nat) || *own_public == *peer_public) {
      plan.method = PunchMethod::kNone;
      return plan;
    }
    plan.method = PunchMethod::kPredictBoth;
    const int stride = *own_public < *peer_public ? 2 : 1;
    plan.predicted = predict(*peer_public, peer_nat.port_step, stride);
    return plan;
  }
  if (prediction && peer_public && sequential(peer_nat)) {
    plan.method = PunchMethod::kPredictPeer;
    plan.predicted = predict(*peer_public, peer_nat.port_step, 1);
  }
  return plan;
}

}  // namespace p2p::core
