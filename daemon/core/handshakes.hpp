// PeerHandshakes: the Noise IK handshakes between peers, in WireGuard's verbs.
//
//   initiator                                      responder
//   create_initiation(p) -> HandshakeInit   ->     consume_initiation() (certificate checked)
//                                                  create_response(p)   (replay refused,
//   consume_response(p)  <- HandshakeResp   <-      session installed in p.sessions)
//   (session installed in p.sessions)
//
// Before any of that, screen() is the responder's cheap first check (crypto::HandshakeGuard:
// padding, mac1 keyed by our static public key, per-source buckets, cookies under load). The
// initiator pads its initiation to at least the size of the answer it expects and stamps mac1
// with the responder's key (and mac2 once it holds a cookie, see consume_cookie()).
//
// It checks certificates through the injected verifier (the initiator also pins the key the
// coordinator introduced), allocates the session indices, and installs the resulting session
// in the peer's SessionSlots. Replays: an initiation whose timestamp is not newer than the
// last one accepted from the same static key is refused, whatever virtual IP it claims. The
// memory is per key and bounded (`replay_memory` keys, the least recently accepted forgotten
// first); a key with a live peer record is also checked against that peer's own newest
// timestamp, so forgetting a key never reopens a live session to a replay. When two valid
// certificates claim one virtual IP, the newer one (not_before) wins: an initiation with an
// older certificate than the peer's current one is refused, so a captured initiation from a
// superseded certificate cannot replace the live session. Where the datagrams go, and what a
// new session sets going (the queue, punching), is the Node's. No I/O; time and randomness
// are handed in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/auth_handshake.hpp"
#include "crypto/handshake_guard.hpp"
#include "daemon/core/effects.hpp"
#include "daemon/core/peer.hpp"
#include "daemon/core/session_table.hpp"
#include "net/expected.hpp"
#include "net/packet.hpp"
#include "net/packet_view.hpp"

namespace p2p::core {

class PeerHandshakes {
 public:
  PeerHandshakes(const crypto::Identity& self, crypto::CertificateVerifier verify,
                 SessionTable& table, NodeEffects& fx, std::size_t replay_memory = 8192);

  // How many static keys the replay memory holds now (at most replay_memory).
  std::size_t remembered_keys() const { return last_timestamp_.size(); }

  // The responder's first check of an initiation (parsed from `d`, from `from`); under
  // kCookie `reply` holds the CookieReply to send back. Through the relay the source is the
  // coordinator, so only padding and mac1 are checked there.
  crypto::HandshakeGuard::Verdict screen(Time now, const Endpoint& from, bool via_relay,
                                         std::span<const std::uint8_t> d,
                                         const wire::HandshakeInit& init,
                                         std::vector<std::uint8_t>& reply);

  // A CookieReply to `p`'s handshake in progress: the initiation to send again (with mac2),
  // behind kHeadroom in `out`; nullopt if there is nothing to send.
  std::optional<PacketView> consume_cookie(Time now, Peer& p, const wire::CookieReply& r,
                                           std::vector<std::uint8_t>& out);

  // Starts (or restarts, keeping the series' first_try) an IK handshake with `p`, whose
  // certificate must be known. The HandshakeInit datagram is written into `out` behind
  // kHeadroom, so the relay can wrap it in place. nullopt: no certificate, or Noise failed.
  std::optional<PacketView> create_initiation(Time now, Peer& p, std::vector<std::uint8_t>& out);

  // A HandshakeInit read and its sender's certificate verified; the responder's state until
  // create_response().
  struct Initiation {
    crypto::AuthHandshake handshake;
    std::uint32_t sender_index;
    std::uint64_t timestamp;  // the initiator's wall clock, for replay protection
    const crypto::Certificate& certificate() const { return *handshake.peer_certificate(); }
  };
  // Errors: the reason, for the log (not an IK initiation, Noise failed, certificate refused).
  Expected<Initiation, std::string> consume_initiation(const wire::HandshakeInit& init);

  // Answers `in` from peer `p` (found by the certificate's virtual IP): refuses a replay,
  // installs the new session as p's current one, and writes the HandshakeResp into `out`
  // behind kHeadroom.
  enum class Refusal { kReplay, kStaleCertificate, kFailed };
  Expected<PacketView, Refusal> create_response(Time now, Peer& p, Initiation& in,
                                                std::vector<std::uint8_t>& out);

  // Completes `p`'s handshake in progress with its answer and installs the session.
  // Errors: the reason (not the handshake in progress, Noise or certificate failure).
  Expected<void, std::string> consume_response(Time now, Peer& p, const wire::HandshakeResp& r);

 private:
  const crypto::Identity& self_;
  crypto::CertificateVerifier verify_;
  SessionTable& table_;
  NodeEffects& fx_;
  std::optional<crypto::HandshakeGuard> guard_;  // made at the first initiation
  // The newest initiation timestamp accepted per static key, and the keys in the order they
  // were last accepted (the front is forgotten first when replay_memory_ keys are held).
  struct Accepted {
    std::uint64_t timestamp;
    std::uint64_t order;
  };
  void remember(const crypto::PublicKey& key, std::uint64_t timestamp);
  std::size_t replay_memory_;
  std::uint64_t next_order_ = 0;
  std::map<crypto::PublicKey, Accepted> last_timestamp_;
  std::map<std::uint64_t, crypto::PublicKey> by_order_;
};

}  // namespace p2p::core
