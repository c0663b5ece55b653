// The coordinator's part in revocation: the CA-signed list in force, the nodes it revokes
// forgotten at once, the list pushed to every registered node (see coordinator.hpp).
#include "coordinator/core/coordinator.hpp"
#include "net/revocation_push.hpp"

namespace p2p::coord {

Expected<bool, crypto::CertError> Coordinator::set_revocation_list(
    Time now, const crypto::RevocationList& list) {
  auto taken = revocations_.update(list, ca_);
  if (!taken || !*taken) return taken;
  revocation_chunks_ = wire::split_revocation_list(list.sequence, revocations_.encoded());
  log_->info("revocation list sequence={} in force: {} certificates revoked", list.sequence,
             list.revoked.size());
  // Every node the list revokes goes now: told why on its own session, then forgotten (its
  // registration, its sessions, and so the relay to and from it).
  std::vector<Entry*> revoked;
  registry_.for_each([&](Entry& e) {
    if (revocations_.revoked(e.cert)) revoked.push_back(&e);
  });
  for (Entry* e : revoked) {
    send_control(
        now, *e,
        wire::Refused{wire::RefuseCode::kRevoked, "certificate revoked (revocation list " +
                                                      std::to_string(list.sequence) + ")"});
    ++counters_.revoked_removed;
    remove(*e, "revoked");
  }
  registry_.for_each([&](Entry& e) {
    if (e.registered) push_revocation_list(now, e);
  });
  return true;
}

void Coordinator::on_revocation_have(Time now, Entry& e, const wire::RevocationHave& m) {
  if (m.sequence >= revocations_.sequence()) return;
  // Up to 33 KiB in answer: charged to the node's lookup budget, so asking again and again
  // gets nothing more.
  if (!e.lookup_bucket.take(now, 1)) {
    ++e.lookups_refused;
    ++counters_.lookups_refused;
    return;
  }
  push_revocation_list(now, e);
}

void Coordinator::push_revocation_list(Time now, Entry& e) {
  for (const auto& chunk : revocation_chunks_) send_control(now, e, chunk);
}

}  // namespace p2p::coord
