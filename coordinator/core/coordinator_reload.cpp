// Coordinator: a reload of its settings while nodes stay registered.
#include <vector>

#include "coordinator/core/coordinator.hpp"

namespace p2p::coord {

void Coordinator::reconfigure(Time now, const CoordinatorSettings& next) {
  settings_.relay_enabled = next.relay_enabled;
  settings_.relay_rate = next.relay_rate;
  settings_.relay_burst = next.relay_burst == 0 ? next.relay_rate : next.relay_burst;
  settings_.lookup_rate = next.lookup_rate;
  settings_.lookup_burst = next.lookup_burst;
  settings_.introduction_rate = next.introduction_rate;
  settings_.introduction_burst = next.introduction_burst;
  settings_.max_nodes = next.max_nodes;
  settings_.revoked = next.revoked;
  revocations_.set_configured(next.revoked);  // the signed list in force stays
  registry_.set_max_nodes(next.max_nodes);

  const auto now_unix = static_cast<UnixTime>(fx_.unix_nanos() / 1'000'000'000);
  std::vector<crypto::PublicKey> revoked;
  registry_.for_each_mutable([&](Entry& e) {
    e.relay_bucket = TokenBucket(double(settings_.relay_rate), double(settings_.relay_burst), now);
    e.lookup_bucket =
        TokenBucket(double(settings_.lookup_rate), double(settings_.lookup_burst), now);
    e.introduction_bucket =
        TokenBucket(double(settings_.introduction_rate), double(settings_.introduction_burst), now);
    auto ok = crypto::verify(e.cert, ca_, now_unix,
                             crypto::VerifyPolicy{crypto::Role::node, revocations_.all()});
    if (!ok && ok.error().kind == crypto::CertErrorKind::revoked)
      revoked.push_back(e.cert.public_key);
  });
  for (const auto& key : revoked) {
    Entry* e = registry_.by_key(key);
    if (!e) continue;
    send_control(now, *e, wire::Refused{wire::RefuseCode::kRevoked, "certificate revoked"});
    remove(*e, "revoked (reload)");
  }
}

}  // namespace p2p::coord
