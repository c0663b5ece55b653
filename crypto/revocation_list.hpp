// Revocation lists: the network CA's signed statement that certificates are revoked, like an
// X.509 CRL. `p2pvpnctl revoke` writes one; coordinators serve it and push it to every node,
// which verifies it against its CA, so no coordinator can forge or drop an entry unnoticed,
// and a node takes only a list newer than the one it has (no rollback).
//
// Binary encoding (version 1; integers big-endian):
//
//   u8   version = 1
//   u64  sequence (>= 1; each list the CA signs carries the previous one's plus one)
//   i64  issued_at (Unix seconds; informational)
//   [16] issuer: the CA's key id
//   u16  count (0..kMaxRevokedCertificates)
//   count x [32] certificate fingerprints (BLAKE2b-256 of the certificate's encoding),
//        strictly increasing (sorted, unique)
//   [64] Ed25519 signature by the CA over a domain-separation context and every byte before it
//
// Decoding accepts exactly one encoding per list: an unknown version, a zero sequence, a count
// over the limit, unsorted or repeated fingerprints and trailing bytes are rejected. Input
// longer than kMaxRevocationListSize is rejected before parsing.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "net/expected.hpp"
#include "net/time.hpp"

namespace p2p::crypto {

inline constexpr std::uint8_t kRevocationListVersion = 1;
inline constexpr std::size_t kFingerprintSize = 32;
inline constexpr std::size_t kMaxRevokedCertificates = 1024;
inline constexpr std::size_t kMaxRevocationListSize =
    1 + 8 + 8 + kKeyIdSize + 2 + kMaxRevokedCertificates * kFingerprintSize + kSignatureSize;
inline constexpr std::string_view kRevocationListLabel = "REVOCATION LIST";

using Fingerprint = std::array<std::uint8_t, kFingerprintSize>;

struct RevocationList {
  std::uint64_t sequence = 0;
  UnixTime issued_at = 0;
  KeyId issuer{};
  std::vector<Fingerprint> revoked;  // sorted, unique
  Signature signature{};
  bool operator==(const RevocationList&) const = default;

  bool contains(const Fingerprint& fp) const;
  // The fingerprints as lowercase hex (the form mesh.yaml's `revoked:` and VerifyPolicy use).
  std::vector<std::string> revoked_hex() const;
};

// A certificate's fingerprint as bytes (fingerprint() gives the same as hex).
Fingerprint fingerprint_bytes(const Certificate& cert);
// 64 hex digits (either case) to bytes; nullopt for anything else.
std::optional<Fingerprint> parse_fingerprint(std::string_view hex);

std::vector<std::uint8_t> encode(const RevocationList& list);
Expected<RevocationList, CertError> decode_revocation_list(std::span<const std::uint8_t> bytes);

// Sorts and de-duplicates `list.revoked`, then fills in issuer and signature. Fails with
// wrong_ca if `ca_key` is not the key of `ca`, malformed with a zero sequence or more than
// kMaxRevokedCertificates entries.
Expected<RevocationList, CertError> sign(RevocationList list, const CaCertificate& ca,
                                         const Ed25519KeyPair& ca_key);
// Issuer key id (wrong_ca), then signature (bad_signature). Validity times are not checked: a
// revocation stays a revocation.
Expected<void, CertError> verify(const RevocationList& list, const CaCertificate& ca);

// Multi-line, human-readable summary (for `p2pvpnctl revocation show`).
std::string describe(const RevocationList& list);

// Armour ("REVOCATION LIST") and files (written 0644, replaced atomically).
std::string to_armor(const RevocationList& list);
Expected<RevocationList, CertError> revocation_list_from_armor(std::string_view text);
Expected<RevocationList, CertError> load_revocation_list(const std::filesystem::path& path);
Expected<void, CertError> save_revocation_list(const std::filesystem::path& path,
                                               const RevocationList& list);

// What a node or coordinator checks certificates against: the fingerprints its own config
// lists (`revoked:`) merged with the newest CA-signed list it accepted.
class Revocations {
 public:
  explicit Revocations(std::vector<std::string> configured = {});

  // Takes `list` if it verifies against `ca` and its sequence is higher than the current
  // one's: true when taken, false when not newer (a replay or a rollback), an error when it
  // does not verify.
  Expected<bool, CertError> update(const RevocationList& list, const CaCertificate& ca);
  // The same from the binary encoding (as it arrives from a coordinator).
  Expected<bool, CertError> update(std::span<const std::uint8_t> encoded, const CaCertificate& ca);

  // Every revoked fingerprint (hex), for crypto::VerifyPolicy::revoked.
  std::span<const std::string> all() const { return all_; }
  bool revoked(const Certificate& cert) const;
  // A reload: the configured fingerprints replaced, the signed list kept.
  void set_configured(std::vector<std::string> configured);
  // The accepted list, its encoding and sequence (0 without one).
  const std::optional<RevocationList>& list() const { return list_; }
  const std::vector<std::uint8_t>& encoded() const { return encoded_; }
  std::uint64_t sequence() const { return list_ ? list_->sequence : 0; }

 private:
  void merge();  // all_ = configured_ and the list's
  std::vector<std::string> configured_;
  std::optional<RevocationList> list_;
  std::vector<std::uint8_t> encoded_;
  std::vector<std::string> all_;
};

}  // namespace p2p::crypto
