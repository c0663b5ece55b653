// The node's part in revocation (see node.hpp): a pushed list reassembled and verified, and
// the sessions with every peer it revokes cut at once.
#include "daemon/core/node.hpp"

namespace p2p::core {

void Node::on_revocation_chunk(Time now, const wire::RevocationChunk& m) {
  using Result = wire::RevocationAssembly::Result;
  switch (revocation_assembly_.add(m, revocations_.sequence())) {
    case Result::kIncomplete:
    case Result::kStale: return;  // a list we hold already, or older: no rollback
    case Result::kInconsistent: ++drops_.malformed; return;
    case Result::kComplete: break;
  }
  auto list = crypto::decode_revocation_list(revocation_assembly_.take());
  if (!list) {
    ++drops_.malformed;
    log_->warn("coordinator={} sent a revocation list that does not decode: {}",
               coord_.endpoint().to_string(), list.error().message);
    return;
  }
  if (auto taken = set_revocation_list(now, *list); !taken) {
    ++drops_.malformed;
    log_->warn("coordinator={} sent a revocation list we refuse: {}", coord_.endpoint().to_string(),
               taken.error().message);
  }
}

Expected<bool, crypto::CertError> Node::set_revocation_list(Time now,
                                                            const crypto::RevocationList& list) {
  auto taken = revocations_.update(list, ca_);
  if (!taken || !*taken) return taken;
  log_->info("revocation list sequence={} taken: {} certificates revoked", list.sequence,
             list.revoked.size());
  fx_.revocation_list_accepted(revocations_.encoded());
  // Collected first: refusing a peer changes it, not the table.
  std::vector<crypto::Certificate> cut;
  peers_.for_each([&](Peer& p) {
    if (p.cert && revocations_.revoked(*p.cert)) cut.push_back(*p.cert);
  });
  for (const auto& cert : cut)
    refuse_peer(now, cert,
                "certificate revoked (revocation list " + std::to_string(list.sequence) + ")");
  if (revocations_.revoked(identity_.certificate))
    log_->error("our own certificate is revoked (revocation list {})", list.sequence);
  return true;
}

}  // namespace p2p::core
