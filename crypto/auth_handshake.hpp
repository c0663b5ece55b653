// AuthHandshake: a Noise handshake whose payloads carry certificates, so that each side proves
// to the other that its Noise static key is the one its network CA certified.
//
// Patterns: IK between peers (the initiator already knows the responder's static key, from
// the coordinator's introduction), XX between a node and its coordinator (the node knows only
// an address). Prologue "p2pvpn/1 " + pattern name.
//
// Each side sends its certificate exactly once, in the first message it writes whose payload
// is encrypted (IK: messages 1 and 2; XX: messages 2 and 3). Payload, version 1:
//   [u8 version][u64 timestamp][u16 cert length][cert]    (or empty before encryption starts)
// The timestamp is the sender's wall clock in nanoseconds (handed in); a responder rejects an
// IK initiation whose timestamp is not newer than the last one it accepted from that key, so a
// captured first message cannot be replayed (WireGuard's TAI64N rule). That memory is the
// caller's: read initiator_timestamp() after the first read.
//
// When a certificate arrives it is decoded, its public key compared with the Noise static key
// the peer proved (key_mismatch otherwise), and then checked by the caller's verifier (CA,
// validity at `now`, role, revocation). Any failure kills the handshake (Failure kinds below,
// with a human-readable reason that names no key material) - except that a certificate
// rejected by the verifier on the *last* message leaves the keys derivable with
// split_after_rejection(), so a coordinator can tell a refused node why, on an encrypted
// channel that node really holds the key of.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/noise.hpp"
#include "net/expected.hpp"

namespace p2p::crypto {

enum class HandshakeFailureKind {
  noise,        // a Noise error: tampered, truncated, wrong key, wrong turn
  payload,      // the decrypted payload is malformed
  certificate,  // the verifier refused the certificate (see cert_error)
  key_mismatch, // the certificate's key is not the static key used in the handshake
  replay,       // an IK initiation not newer than the last accepted one
};

struct HandshakeFailure {
  HandshakeFailureKind kind;
  std::string reason;
  std::optional<CertError> cert_error;
};

// The local identity: static key pair and own certificate (encoded once).
struct Identity {
  noise::KeyPair key;
  Certificate certificate;
  std::vector<std::uint8_t> encoded_certificate;

  static Identity make(noise::KeyPair key, Certificate cert);
};

// Decides whether a peer's certificate is acceptable (CA, time, role, revocation).
using CertificateVerifier = std::function<Expected<void, CertError>(const Certificate&)>;

class AuthHandshake {
 public:
  enum class Kind { kIK, kXX };

  static AuthHandshake initiator(Kind kind, const Identity& self, CertificateVerifier verify,
                                 std::optional<noise::PublicKey> responder_key = std::nullopt);
  static AuthHandshake responder(Kind kind, const Identity& self, CertificateVerifier verify);

  // Writes the next message. `timestamp` goes into the payload if this message carries the
  // certificate.
  Expected<std::vector<std::uint8_t>, HandshakeFailure> write(std::uint64_t timestamp);
  // Reads the peer's next message; verifies the certificate if it carries one.
  Expected<void, HandshakeFailure> read(std::span<const std::uint8_t> message);

  bool is_complete() const { return noise_.is_complete() && peer_certificate_.has_value(); }
  bool my_turn() const { return noise_.my_turn(); }
  bool failed() const { return failed_; }
  // After is_complete(): the transport keys, oriented for this side. Once.
  Expected<noise::TransportKeys, noise::Error> split() { return noise_.split(); }
  // After a read() that failed only because the verifier refused the certificate on the final
  // message: the keys of the (authenticated but refused) channel. See the header comment.
  std::optional<noise::TransportKeys> split_after_rejection();

  const std::optional<Certificate>& peer_certificate() const { return peer_certificate_; }
  std::optional<std::uint64_t> initiator_timestamp() const { return peer_timestamp_; }
  const noise::HandshakeHash& handshake_hash() const { return noise_.handshake_hash(); }

 private:
  AuthHandshake(noise::HandshakeState hs, const Identity& self, CertificateVerifier verify);
  bool message_is_encrypted(std::size_t index) const;
  Expected<void, HandshakeFailure> consume_payload(std::span<const std::uint8_t> payload);
  template <class T>
  Expected<T, HandshakeFailure> fail(HandshakeFailureKind kind, std::string reason,
                                     std::optional<CertError> cert = std::nullopt);

  noise::HandshakeState noise_;
  const Identity* self_;
  CertificateVerifier verify_;
  const noise::Pattern* pattern_;
  std::size_t next_message_ = 0;
  bool sent_certificate_ = false;
  bool failed_ = false;
  bool rejected_on_last_ = false;
  std::optional<Certificate> peer_certificate_;
  std::optional<std::uint64_t> peer_timestamp_;
};

}  // namespace p2p::crypto
