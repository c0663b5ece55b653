// Certificates: the network CA's signed statement that an X25519 key belongs to a named node
// with a given virtual address, role and groups, for a bounded time.
//
// Binary encoding (version 1; integers big-endian; strings are u8 length + bytes):
//
//   node / coordinator certificate          CA certificate (self-signed)
//   u8   version = 1                        u8   version = 1
//   u8   type (1 node, 2 coordinator)       u8   type = 3
//   str  name                               str  name
//   u32  vip, u8 prefix length (0..32)      [32] Ed25519 public key
//   u8   flags (bit 0: IPv6 present)        i64  not_before
//   [16] vip6, u8 prefix length (0..128)    i64  not_after
//   [32] X25519 public key                  [64] Ed25519 self-signature
//   u8   group count (0..16), str groups
//   i64  not_before
//   i64  not_after
//   [16] issuer: the CA's key id
//   [64] Ed25519 signature by the CA
//
// The signature covers a domain-separation context followed by every byte before it.
// Names and groups are 1..63 characters of [A-Za-z0-9._-] starting with a letter or digit;
// groups are stored sorted and unique. Decoding accepts exactly one encoding per certificate:
// unknown versions or types, out-of-range lengths, unsorted groups, unknown flag bits,
// not_after < not_before and trailing bytes are all rejected. Input longer than
// kMaxCertificateSize is rejected before parsing; nothing is allocated beyond that bound.
//
// Validity is the half-open interval [not_before, not_after): a certificate issued with a
// zero lifetime is already expired. Times are Unix seconds handed in by the caller.
//
// The CA's key id is the first 16 bytes of BLAKE2b-256 of its Ed25519 public key; verify()
// compares it first, so a certificate from another network reads "wrong CA", not "bad
// signature".
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/keys.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"
#include "net/time.hpp"

namespace p2p::crypto {

inline constexpr std::uint8_t kCertificateVersion = 1;
inline constexpr std::size_t kMaxNameLength = 63;
inline constexpr std::size_t kMaxGroups = 16;
inline constexpr std::size_t kKeyIdSize = 16;
// Largest possible encoding (longest name, IPv6, 16 groups of 63 characters).
inline constexpr std::size_t kMaxCertificateSize =
    2 + 1 + kMaxNameLength + 5 + 1 + 17 + kPublicKeySize + 1 + kMaxGroups * (1 + kMaxNameLength) +
    16 + kKeyIdSize + kSignatureSize;

inline constexpr std::string_view kCertificateLabel = "CERTIFICATE";
inline constexpr std::string_view kCaCertificateLabel = "CA CERTIFICATE";

using KeyId = std::array<std::uint8_t, kKeyIdSize>;

enum class Role : std::uint8_t { node = 1, coordinator = 2 };
std::string_view to_string(Role role);
std::optional<Role> parse_role(std::string_view text);

struct Certificate {
  std::string name;
  Ipv4Prefix vip;
  std::optional<Ipv6Prefix> vip6;
  PublicKey public_key{};  // X25519, the node's Noise static key
  Role role = Role::node;
  std::vector<std::string> groups;
  UnixTime not_before = 0;
  UnixTime not_after = 0;
  KeyId issuer{};
  Signature signature{};
  bool operator==(const Certificate&) const = default;
};

struct CaCertificate {
  std::string name;
  PublicKey public_key{};  // Ed25519
  UnixTime not_before = 0;
  UnixTime not_after = 0;
  Signature signature{};
  bool operator==(const CaCertificate&) const = default;
};

enum class CertErrorKind {
  malformed,
  bad_signature,
  expired,
  not_yet_valid,
  wrong_ca,
  wrong_role,
  revoked,
  io,  // a certificate file could not be read or written
};
std::string_view to_string(CertErrorKind kind);  // "bad signature", "wrong CA", ...

struct CertError {
  CertErrorKind kind = CertErrorKind::malformed;
  std::string message;  // starts with to_string(kind), then the details
};

// True for a valid certificate name or group name.
bool valid_name(std::string_view name);

KeyId key_id(const PublicKey& ca_public_key);

// Field rules (names, groups sorted and unique, not_after >= not_before). sign() and decode
// only ever produce certificates that pass; encode() of one that does not is a programming
// error and aborts.
Expected<void, CertError> validate(const Certificate& cert);
Expected<void, CertError> validate(const CaCertificate& ca);

std::vector<std::uint8_t> encode(const Certificate& cert);
std::vector<std::uint8_t> encode(const CaCertificate& ca);
Expected<Certificate, CertError> decode_certificate(std::span<const std::uint8_t> bytes);
Expected<CaCertificate, CertError> decode_ca_certificate(std::span<const std::uint8_t> bytes);

// Fills in issuer and signature. Groups are sorted first. Fails with wrong_ca if `ca_key` is not
// the key of `ca`, malformed if a field breaks the rules.
Expected<Certificate, CertError> sign(Certificate cert, const CaCertificate& ca,
                                      const Ed25519KeyPair& ca_key);
Expected<CaCertificate, CertError> make_ca_certificate(std::string name,
                                                       const Ed25519KeyPair& ca_key,
                                                       UnixTime not_before, UnixTime not_after);

struct VerifyPolicy {
  std::optional<Role> required_role{};
  std::span<const std::string> revoked{};  // fingerprints (hex) of revoked certificates
};

// Checks, in order: issuer key id (wrong_ca), signature (bad_signature), the CA's and then the
// certificate's validity at `now` (not_yet_valid / expired), role, revocation. It does not
// re-check the CA's self-signature: do that once with verify_ca() when loading ca.crt.
Expected<void, CertError> verify(const Certificate& cert, const CaCertificate& ca, UnixTime now,
                                 const VerifyPolicy& policy = {});
// Self-signature and validity of a CA certificate.
Expected<void, CertError> verify_ca(const CaCertificate& ca, UnixTime now);

// Hex BLAKE2b-256 of the full encoding: the name of a certificate in revocation lists.
std::string fingerprint(const Certificate& cert);
std::string fingerprint(const CaCertificate& ca);

// Multi-line, human-readable summary (for `p2pvpnctl cert show`). Times in UTC.
std::string describe(const Certificate& cert);
std::string describe(const CaCertificate& ca);
std::string format_utc(UnixTime t);  // "2025-03-01T12:00:00Z"

// Armour and files ("CERTIFICATE" / "CA CERTIFICATE"; files are written with mode 0644).
std::string to_armor(const Certificate& cert);
std::string to_armor(const CaCertificate& ca);
Expected<Certificate, CertError> certificate_from_armor(std::string_view text);
Expected<CaCertificate, CertError> ca_certificate_from_armor(std::string_view text);
Expected<Certificate, CertError> load_certificate(const std::filesystem::path& path);
Expected<CaCertificate, CertError> load_ca_certificate(const std::filesystem::path& path);
Expected<void, CertError> save_certificate(const std::filesystem::path& path,
                                           const Certificate& cert, bool overwrite = false);
Expected<void, CertError> save_ca_certificate(const std::filesystem::path& path,
                                              const CaCertificate& ca, bool overwrite = false);

}  // namespace p2p::crypto
