#include "crypto/revocation_list.hpp"

#include <algorithm>

#include "crypto/armor.hpp"
#include "net/byte_io.hpp"
#include "net/control.hpp"

// A whole list fits the chunks a coordinator may push (net/revocation_push.hpp).
static_assert(p2p::crypto::kMaxRevocationListSize <=
              p2p::wire::kMaxRevocationChunks * p2p::wire::kRevocationChunkSize);

namespace p2p::crypto {
namespace {

// Domain separation: a revocation list's signature never verifies as a certificate's.
constexpr std::string_view kListContext = "p2pvpn revocation list v1";

CertError list_error(CertErrorKind kind, std::string detail) {
  return CertError{kind, std::string(to_string(kind)) + ": " + std::move(detail)};
}
CertError malformed(std::string detail) {
  return CertError{CertErrorKind::malformed, "malformed revocation list: " + std::move(detail)};
}

// Everything the signature covers (the encoding without the signature).
std::vector<std::uint8_t> encode_body(const RevocationList& list) {
  std::vector<std::uint8_t> out;
  out.reserve(1 + 8 + 8 + kKeyIdSize + 2 + list.revoked.size() * kFingerprintSize + kSignatureSize);
  wire::ByteWriter w(out);
  w.u8(kRevocationListVersion);
  w.u64(list.sequence);
  w.u64(static_cast<std::uint64_t>(list.issued_at));
  w.bytes(list.issuer);
  w.u16(static_cast<std::uint16_t>(list.revoked.size()));
  for (const auto& fp : list.revoked) w.bytes(fp);
  return out;
}

std::vector<std::uint8_t> signed_message(const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> m(kListContext.begin(), kListContext.end());
  m.push_back(0);
  m.insert(m.end(), body.begin(), body.end());
  return m;
}

Expected<void, CertError> check_fields(const RevocationList& list) {
  if (list.sequence == 0) return fail(malformed("sequence 0 (lists start at 1)"));
  if (list.revoked.size() > kMaxRevokedCertificates)
    return fail(malformed(std::to_string(list.revoked.size()) + " entries, at most " +
                          std::to_string(kMaxRevokedCertificates)));
  if (std::adjacent_find(list.revoked.begin(), list.revoked.end(),
                         [](const auto& a, const auto& b) { return !(a < b); }) !=
      list.revoked.end())
    return fail(malformed("fingerprints not sorted and unique"));
  return {};
}

}  // namespace

bool RevocationList::contains(const Fingerprint& fp) const {
  return std::binary_search(revoked.begin(), revoked.end(), fp);
}

std::vector<std::string> RevocationList::revoked_hex() const {
  std::vector<std::string> out;
  out.reserve(revoked.size());
  for (const auto& fp : revoked) out.push_back(to_hex(fp));
  return out;
}

Fingerprint fingerprint_bytes(const Certificate& cert) {
  return *parse_fingerprint(fingerprint(cert));
}

std::optional<Fingerprint> parse_fingerprint(std::string_view hex) {
  return public_key_from_hex(hex);  // the same shape: 32 bytes as 64 hex digits
}

std::vector<std::uint8_t> encode(const RevocationList& list) {
  auto out = encode_body(list);
  out.insert(out.end(), list.signature.begin(), list.signature.end());
  return out;
}

Expected<RevocationList, CertError> decode_revocation_list(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kMaxRevocationListSize)
    return fail(malformed(std::to_string(bytes.size()) + " bytes, at most " +
                          std::to_string(kMaxRevocationListSize)));
  wire::ByteReader r(bytes);
  auto version = r.u8();
  if (!version) return fail(malformed("empty"));
  if (*version != kRevocationListVersion)
    return fail(malformed("unknown version " + std::to_string(*version)));
  RevocationList list;
  auto sequence = r.u64();
  auto issued_at = r.u64();
  auto issuer = r.array<kKeyIdSize>();
  auto count = r.u16();
  if (!sequence || !issued_at || !issuer || !count) return fail(malformed("truncated header"));
  if (*count > kMaxRevokedCertificates)
    return fail(malformed(std::to_string(*count) + " entries, at most " +
                          std::to_string(kMaxRevokedCertificates)));
  if (r.remaining() != std::size_t{*count} * kFingerprintSize + kSignatureSize)
    return fail(malformed("length does not match " + std::to_string(*count) + " entries"));
  list.sequence = *sequence;
  list.issued_at = static_cast<UnixTime>(*issued_at);
  list.issuer = *issuer;
  list.revoked.reserve(*count);
  for (std::uint16_t i = 0; i < *count; ++i) list.revoked.push_back(*r.array<kFingerprintSize>());
  list.signature = *r.array<kSignatureSize>();
  if (auto ok = check_fields(list); !ok) return fail(ok.error());
  return list;
}

Expected<RevocationList, CertError> sign(RevocationList list, const CaCertificate& ca,
                                         const Ed25519KeyPair& ca_key) {
  if (ca_key.public_key() != ca.public_key)
    return fail(list_error(CertErrorKind::wrong_ca,
                           "the signing key is not the key of CA '" + ca.name + "'"));
  std::sort(list.revoked.begin(), list.revoked.end());
  list.revoked.erase(std::unique(list.revoked.begin(), list.revoked.end()), list.revoked.end());
  if (auto ok = check_fields(list); !ok) return fail(ok.error());
  list.issuer = key_id(ca.public_key);
  list.signature = ca_key.sign(signed_message(encode_body(list)));
  return list;
}

Expected<void, CertError> verify(const RevocationList& list, const CaCertificate& ca) {
  if (list.issuer != key_id(ca.public_key))
    return fail(
        list_error(CertErrorKind::wrong_ca, "revocation list " + std::to_string(list.sequence) +
                                                " was issued by CA key id " + to_hex(list.issuer) +
                                                ", not by '" + ca.name + "'"));
  if (auto ok = check_fields(list); !ok) return ok;
  if (!ed25519_verify(ca.public_key, signed_message(encode_body(list)), list.signature))
    return fail(list_error(CertErrorKind::bad_signature,
                           "revocation list " + std::to_string(list.sequence) +
                               " is not signed by CA '" + ca.name + "'"));
  return {};
}

std::string describe(const RevocationList& list) {
  std::string out;
  out += "revocation list\n";
  out += "sequence:    " + std::to_string(list.sequence) + "\n";
  out += "issued at:   " + format_utc(list.issued_at) + "\n";
  out += "issuer:      " + to_hex(list.issuer) + " (CA key id)\n";
  out += "revoked:     " + std::to_string(list.revoked.size()) + "\n";
  for (const auto& fp : list.revoked) out += "  " + to_hex(fp) + "\n";
  return out;
}

std::string to_armor(const RevocationList& list) {
  return armor(kRevocationListLabel, encode(list));
}

Expected<RevocationList, CertError> revocation_list_from_armor(std::string_view text) {
  auto bytes = dearmor(text, kRevocationListLabel);
  if (!bytes) return fail(malformed(bytes.error().message));
  return decode_revocation_list(*bytes);
}

Expected<RevocationList, CertError> load_revocation_list(const std::filesystem::path& path) {
  auto text = read_armored_file(path, false);
  if (!text) return fail(list_error(CertErrorKind::io, text.error().message));
  auto list = revocation_list_from_armor(*text);
  if (!list)
    return fail(CertError{list.error().kind, "'" + path.string() + "': " + list.error().message});
  return list;
}

Expected<void, CertError> save_revocation_list(const std::filesystem::path& path,
                                               const RevocationList& list) {
  auto ok = write_armored_file(path, to_armor(list), 0644, true);
  if (!ok) return fail(list_error(CertErrorKind::io, ok.error().message));
  return {};
}

Revocations::Revocations(std::vector<std::string> configured)
    : configured_(std::move(configured)), all_(configured_) {}

Expected<bool, CertError> Revocations::update(const RevocationList& list, const CaCertificate& ca) {
  if (auto ok = verify(list, ca); !ok) return fail(ok.error());
  if (list.sequence <= sequence()) return false;
  list_ = list;
  encoded_ = encode(list);
  merge();
  return true;
}

void Revocations::set_configured(std::vector<std::string> configured) {
  configured_ = std::move(configured);
  merge();
}

void Revocations::merge() {
  all_ = configured_;
  if (!list_) return;
  for (auto& fp : list_->revoked_hex())
    if (std::find(all_.begin(), all_.end(), fp) == all_.end()) all_.push_back(std::move(fp));
}

Expected<bool, CertError> Revocations::update(std::span<const std::uint8_t> encoded,
                                              const CaCertificate& ca) {
  auto list = decode_revocation_list(encoded);
  if (!list) return fail(list.error());
  return update(*list, ca);
}

bool Revocations::revoked(const Certificate& cert) const {
  const std::string fp = fingerprint(cert);
  return std::find(all_.begin(), all_.end(), fp) != all_.end();
}

}  // namespace p2p::crypto
