// The handshakes and sessions of the node: SessionTable maps each local session index (the
// receiver index others put in what they send us) to its owner, the coordinator link or one
// peer; SessionSlots holds one owner's handshake in progress and its sessions.
//
// Index lifecycle: allocate() when a handshake starts (ours or theirs); the index then names
// the session that handshake produces; release() when the handshake is abandoned or the
// session dropped. SessionSlots releases what it drops itself, so an index never outlives the
// session it names and a datagram for a dropped session counts as unknown_index.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/handshake_guard.hpp"
#include "crypto/session.hpp"
#include "daemon/core/effects.hpp"
#include "net/expected.hpp"
#include "net/packet.hpp"
#include "net/time.hpp"

namespace p2p::core {

struct SessionOwner {
  bool coordinator = false;
  std::uint32_t vip = 0;  // the peer's virtual IP, when not the coordinator
  bool operator==(const SessionOwner&) const = default;
};

class SessionTable {
 public:
  explicit SessionTable(NodeEffects& fx) : fx_(fx) {}
  // A fresh random non-zero index not in use, now owned by `owner`.
  std::uint32_t allocate(SessionOwner owner);
  void release(std::uint32_t index) {
    index_.erase(index);
    if (index == last_index_) last_index_ = 0;
  }
  // A run of datagrams for one index (a peer's batch) hashes once: the last index found is
  // remembered until released.
  std::optional<SessionOwner> find(std::uint32_t index) const;
  std::size_t size() const { return index_.size(); }
  // Hash lookups find() made (tests).
  std::uint64_t hashed() const { return hashed_; }

 private:
  NodeEffects& fx_;
  std::unordered_map<std::uint32_t, SessionOwner> index_;
  mutable std::uint32_t last_index_ = 0;  // 0: none (never an index)
  mutable SessionOwner last_owner_;
  mutable std::uint64_t hashed_ = 0;
};

// When this side renews a session: the initiator after kRekeyAfterTime, the responder (which
// only renews if the initiator did not) at the point TransportSession::should_rekey names.
Time rekey_time(const crypto::TransportSession& s);

struct PendingHandshake {
  crypto::AuthHandshake handshake;
  std::uint32_t local_index;
  Time started;    // this attempt
  Time first_try;  // the first attempt of this series
};

// One owner's handshake in progress and sessions. `current` is what we send with; `previous`
// is still accepted on receive after a rekey until it expires.
struct SessionSlots {
  std::optional<PendingHandshake> pending;
  std::optional<crypto::Session> current;
  std::optional<crypto::Session> previous;
  // The initiation datagram of `pending` as sent (a CookieReply to it is answered by sending
  // it again with mac2), and the responder's cookie, kept for the next attempts.
  std::vector<std::uint8_t> sent_init;
  std::optional<crypto::HeldCookie> cookie;

  // Replaces the handshake in progress (releasing its index). Returns when the series began.
  Time begin(SessionTable& table, PendingHandshake hs);
  void abandon_pending(SessionTable& table);
  // A completed handshake's session becomes current; current becomes previous.
  void install(SessionTable& table, crypto::Session s);
  // Drops sessions past kRejectAfterTime. Returns whether `current` was dropped.
  bool expire(SessionTable& table, Time now);
  void clear(SessionTable& table);
  // Drops both sessions (a peer's key changed), keeping the handshake in progress.
  void drop_sessions(SessionTable& table);
  bool usable(Time now) const { return current && !current->transport.is_expired(now); }

  // The initiation datagram of `pending` (after begin()): `noise` behind the header, padded to
  // `padded_size` (the answer it expects), mac1 stamped with `keys`, mac2 with the cookie
  // while it is fresh. Kept in sent_init.
  std::span<const std::uint8_t> seal_initiation(Time now, wire::Pattern p,
                                                std::span<const std::uint8_t> noise,
                                                std::size_t padded_size,
                                                const crypto::GuardKeys& keys);
  // A CookieReply for `pending`: keeps the cookie and returns the initiation to send again,
  // now with mac2. nullopt when the reply is not for `pending`, not authentic, or brings
  // nothing new (a replayed reply makes us send nothing).
  std::optional<std::span<const std::uint8_t>> on_cookie_reply(Time now, const wire::CookieReply& r,
                                                               const crypto::GuardKeys& keys);

  // Decrypts a Data datagram's body in place with the session its receiver index names.
  // kNotOurs: neither session has that index; kFailed: authentication, replay or expiry.
  enum class OpenError { kNotOurs, kFailed };
  Expected<std::size_t, OpenError> open(Time now, const wire::DataHeader& h,
                                        std::span<std::uint8_t> body);
  // Checks the tag of a relay frame (`frame`, all of it) with the session its index names.
  Expected<void, OpenError> open_relay(Time now, const wire::RelayFrame& f,
                                       std::span<std::uint8_t> frame);
  // open() in two steps, for opening on worker threads (crypto/crypto_workers.hpp):
  // prepare_open() adds a job to open `body` when a session has the index and would take the
  // counter now (nullopt: not taken, call open() later as usual); once the job has run,
  // finish_open() answers what open() would have, and advances the window.
  std::optional<std::size_t> prepare_open(Time now, const wire::DataHeader& h,
                                          std::span<std::uint8_t> body,
                                          crypto::CryptoJobs& jobs) const;
  Expected<std::size_t, OpenError> finish_open(Time now, const wire::DataHeader& h,
                                               const crypto::CryptoJob& opened);
};

}  // namespace p2p::core
