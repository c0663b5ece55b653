#include "crypto/certificate.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <tuple>
#include <utility>

#include "crypto/armor.hpp"
#include "crypto/secure_buffer.hpp"
#include "net/byte_io.hpp"
#include "net/control.hpp"

// Certificates travel opaque inside control messages (Introduce), bounded by the wire's limits.
static_assert(p2p::crypto::kMaxCertificateSize == p2p::wire::kMaxCertificateSize);
static_assert(p2p::crypto::kMaxNameLength == p2p::wire::kMaxNameLength);

namespace p2p::crypto {
namespace {

enum class Type : std::uint8_t { node = 1, coordinator = 2, ca = 3 };
constexpr std::uint8_t kFlagIpv6 = 0x01;

// Domain separation: a signature over one kind of object never verifies as another.
constexpr std::string_view kCertContext = "p2pvpn certificate v1";
constexpr std::string_view kCaContext = "p2pvpn ca certificate v1";

CertError cert_error(CertErrorKind kind, std::string detail) {
  std::string message(to_string(kind));
  if (!detail.empty()) message += ": " + detail;
  return CertError{kind, std::move(message)};
}
CertError malformed(std::string detail) {
  return cert_error(CertErrorKind::malformed, std::move(detail));
}

// The field a wire::ByteReader getter returned, or "truncated in <field>" where it stopped.
template <class T>
Expected<T, CertError> field(const wire::ByteReader& r, std::optional<T> v, const char* name) {
  if (!v)
    return fail(malformed("truncated in " + std::string(name) + " at byte " +
                          std::to_string(r.position())));
  return std::move(*v);
}

// Unwraps an Expected<T, CertError> inside a function returning Expected<_, CertError>.
#define P2P_TRY(var, expr)                    \
  auto var##_r = (expr);                      \
  if (!var##_r) return fail(var##_r.error()); \
  auto var = std::move(var##_r).value()

Expected<void, CertError> check_times(UnixTime not_before, UnixTime not_after) {
  if (not_after < not_before)
    return fail(malformed("not_after " + std::to_string(not_after) + " is before not_before " +
                          std::to_string(not_before)));
  return {};
}

Expected<void, CertError> check_name(std::string_view what, std::string_view name) {
  if (!valid_name(name))
    return fail(malformed(std::string(what) + " '" + std::string(name).substr(0, 80) +
                          "' must be 1.." + std::to_string(kMaxNameLength) +
                          " characters of A-Z a-z 0-9 . _ - starting with a letter or digit"));
  return {};
}

// A name-like string: u8 length 1..63, characters as valid_name().
Expected<std::string, CertError> read_name(wire::ByteReader& r, const char* what) {
  P2P_TRY(len, field(r, r.u8(), what));
  if (len == 0 || len > kMaxNameLength)
    return fail(malformed(std::string(what) + " length " + std::to_string(len) +
                          " is outside 1.." + std::to_string(kMaxNameLength)));
  P2P_TRY(bytes, field(r, r.bytes(len), what));
  std::string out(bytes.begin(), bytes.end());
  if (!valid_name(out)) return fail(malformed(std::string(what) + " has invalid characters"));
  return out;
}

// not_before, not_after (not_after >= not_before).
Expected<std::pair<UnixTime, UnixTime>, CertError> read_validity(wire::ByteReader& r) {
  P2P_TRY(not_before, field(r, r.u64(), "not_before"));
  P2P_TRY(not_after, field(r, r.u64(), "not_after"));
  const std::pair times{static_cast<UnixTime>(not_before), static_cast<UnixTime>(not_after)};
  if (auto ok = check_times(times.first, times.second); !ok) return fail(ok.error());
  return times;
}

// The trailing signature, which must end the input.
Expected<Signature, CertError> read_final_signature(wire::ByteReader& r) {
  P2P_TRY(sig, field(r, r.array<kSignatureSize>(), "signature"));
  if (!r.done())
    return fail(malformed(std::to_string(r.remaining()) + " trailing bytes after the signature"));
  return sig;
}

// Everything but the signature, the part that is signed. Fails (malformed) only for a
// certificate that breaks the field rules in a way that does not fit the encoding.
Expected<std::vector<std::uint8_t>, CertError> encode_body(const Certificate& c) {
  std::vector<std::uint8_t> out;
  wire::ByteWriter w(out, kMaxCertificateSize - kSignatureSize);
  w.u8(kCertificateVersion);
  w.u8(static_cast<std::uint8_t>(c.role == Role::node ? Type::node : Type::coordinator));
  w.str8(c.name);
  w.u32(c.vip.address.value);
  w.u8(c.vip.length);
  w.u8(c.vip6 ? kFlagIpv6 : 0);
  if (c.vip6) {
    w.bytes(c.vip6->address.bytes);
    w.u8(c.vip6->length);
  }
  w.bytes(c.public_key);
  w.u8(static_cast<std::uint8_t>(c.groups.size()));
  for (const auto& g : c.groups) w.str8(g);
  w.u64(static_cast<std::uint64_t>(c.not_before));
  w.u64(static_cast<std::uint64_t>(c.not_after));
  w.bytes(c.issuer);
  if (!w.ok()) return fail(malformed("'" + c.name.substr(0, 80) + "' does not fit an encoding"));
  return out;
}

Expected<std::vector<std::uint8_t>, CertError> encode_body(const CaCertificate& c) {
  std::vector<std::uint8_t> out;
  wire::ByteWriter w(out, 2 + 1 + kMaxNameLength + kPublicKeySize + 16);
  w.u8(kCertificateVersion);
  w.u8(static_cast<std::uint8_t>(Type::ca));
  w.str8(c.name);
  w.bytes(c.public_key);
  w.u64(static_cast<std::uint64_t>(c.not_before));
  w.u64(static_cast<std::uint64_t>(c.not_after));
  if (!w.ok()) return fail(malformed("'" + c.name.substr(0, 80) + "' does not fit an encoding"));
  return out;
}

std::vector<std::uint8_t> signed_message(std::string_view context,
                                         const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> m(context.begin(), context.end());
  m.push_back(0);
  m.insert(m.end(), body.begin(), body.end());
  return m;
}

template <class T>
std::vector<std::uint8_t> encode_signed(const T& c) {
  if (auto ok = validate(c); !ok) {
    std::fprintf(stderr, "fatal: encoding an invalid certificate: %s\n",
                 ok.error().message.c_str());
    std::abort();
  }
  auto body = encode_body(c);
  if (!body) {
    std::fprintf(stderr, "fatal: %s\n", body.error().message.c_str());
    std::abort();
  }
  auto out = std::move(body).value();
  out.insert(out.end(), c.signature.begin(), c.signature.end());
  return out;
}

// Reads version and type.
Expected<Type, CertError> read_header(wire::ByteReader& r) {
  if (const std::size_t size = r.remaining(); size > kMaxCertificateSize)
    return fail(malformed(std::to_string(size) + " bytes is longer than any certificate"));
  P2P_TRY(version, field(r, r.u8(), "version"));
  if (version != kCertificateVersion)
    return fail(malformed("unknown certificate version " + std::to_string(version)));
  P2P_TRY(type, field(r, r.u8(), "type"));
  if (type < 1 || type > 3)
    return fail(malformed("unknown certificate type " + std::to_string(type)));
  return static_cast<Type>(type);
}

Expected<void, CertError> check_window(std::string_view what, UnixTime not_before,
                                       UnixTime not_after, UnixTime now) {
  if (now < not_before)
    return fail(cert_error(CertErrorKind::not_yet_valid, std::string(what) + " is valid from " +
                                                             format_utc(not_before) +
                                                             ", it is now " + format_utc(now)));
  if (now >= not_after)
    return fail(cert_error(CertErrorKind::expired, std::string(what) + " expired at " +
                                                       format_utc(not_after) + ", it is now " +
                                                       format_utc(now)));
  return {};
}

std::string blake2b_hex(std::span<const std::uint8_t> data) {
  init_sodium();
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), data.data(), data.size(), nullptr, 0);
  return to_hex(h);
}

// Decodes armoured text of `label` and then the binary inside it.
template <class T, class Decode>
Expected<T, CertError> from_armor(std::string_view text, std::string_view label, Decode decode) {
  auto bytes = dearmor(text, label);
  if (!bytes) {
    std::string hint;
    if (auto found = armor_label(text); found && *found != label)
      hint = " (this file holds a " + *found + ")";
    return fail(malformed(bytes.error().message + hint));
  }
  return decode(*bytes);
}

template <class T, class Parse>
Expected<T, CertError> load(const std::filesystem::path& path, Parse parse) {
  auto text = read_armored_file(path, false);
  if (!text) return fail(cert_error(CertErrorKind::io, text.error().message));
  auto cert = parse(*text);
  if (!cert) {
    CertError e = cert.error();
    e.message = "'" + path.string() + "': " + e.message;
    return fail(std::move(e));
  }
  return std::move(cert).value();
}

Expected<void, CertError> save(const std::filesystem::path& path, const std::string& text,
                               bool overwrite) {
  auto ok = write_armored_file(path, text, 0644, overwrite);
  if (!ok) return fail(cert_error(CertErrorKind::io, ok.error().message));
  return {};
}

}  // namespace

std::string_view to_string(Role role) {
  return role == Role::node ? "node" : "coordinator";
}

std::optional<Role> parse_role(std::string_view text) {
  if (text == "node") return Role::node;
  if (text == "coordinator") return Role::coordinator;
  return std::nullopt;
}

std::string_view to_string(CertErrorKind kind) {
  switch (kind) {
    case CertErrorKind::malformed:
      return "malformed certificate";
    case CertErrorKind::bad_signature:
      return "bad signature";
    case CertErrorKind::expired:
      return "expired";
    case CertErrorKind::not_yet_valid:
      return "not yet valid";
    case CertErrorKind::wrong_ca:
      return "wrong CA";
    case CertErrorKind::wrong_role:
      return "wrong role";
    case CertErrorKind::revoked:
      return "revoked";
    case CertErrorKind::io:
      return "cannot access certificate";
  }
  return "certificate error";
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

KeyId key_id(const PublicKey& ca_public_key) {
  init_sodium();
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), ca_public_key.data(), ca_public_key.size(), nullptr, 0);
  KeyId id{};
  std::copy_n(h.begin(), id.size(), id.begin());
  return id;
}

Expected<void, CertError> validate(const Certificate& c) {
  if (auto ok = check_name("name", c.name); !ok) return ok;
  if (c.vip.length > 32) return fail(malformed("IPv4 prefix length over 32"));
  if (c.vip6 && c.vip6->length > 128) return fail(malformed("IPv6 prefix length over 128"));
  if (c.role != Role::node && c.role != Role::coordinator) return fail(malformed("unknown role"));
  if (c.groups.size() > kMaxGroups)
    return fail(malformed(std::to_string(c.groups.size()) + " groups, at most " +
                          std::to_string(kMaxGroups) + " allowed"));
  for (std::size_t i = 0; i < c.groups.size(); ++i) {
    if (auto ok = check_name("group", c.groups[i]); !ok) return ok;
    if (i > 0 && !(c.groups[i - 1] < c.groups[i]))
      return fail(malformed("groups must be sorted and unique ('" + c.groups[i - 1] + "', '" +
                            c.groups[i] + "')"));
  }
  return check_times(c.not_before, c.not_after);
}

Expected<void, CertError> validate(const CaCertificate& c) {
  if (auto ok = check_name("CA name", c.name); !ok) return ok;
  return check_times(c.not_before, c.not_after);
}

std::vector<std::uint8_t> encode(const Certificate& cert) {
  return encode_signed(cert);
}
std::vector<std::uint8_t> encode(const CaCertificate& ca) {
  return encode_signed(ca);
}

Expected<Certificate, CertError> decode_certificate(std::span<const std::uint8_t> bytes) {
  wire::ByteReader r(bytes);
  P2P_TRY(type, read_header(r));
  if (type == Type::ca) return fail(malformed("this is a CA certificate, not a node certificate"));
  Certificate c;
  c.role = type == Type::node ? Role::node : Role::coordinator;
  P2P_TRY(name, read_name(r, "name"));
  c.name = std::move(name);
  P2P_TRY(v4, field(r, r.u32(), "vip"));
  P2P_TRY(v4len, field(r, r.u8(), "vip prefix"));
  if (v4len > 32) return fail(malformed("IPv4 prefix length " + std::to_string(v4len)));
  c.vip = Ipv4Prefix{Ipv4{v4}, v4len};
  P2P_TRY(flags, field(r, r.u8(), "flags"));
  if ((flags & ~kFlagIpv6) != 0) return fail(malformed("unknown flags " + std::to_string(flags)));
  if (flags & kFlagIpv6) {
    P2P_TRY(v6, field(r, r.array<16>(), "vip6"));
    P2P_TRY(v6len, field(r, r.u8(), "vip6 prefix"));
    if (v6len > 128) return fail(malformed("IPv6 prefix length " + std::to_string(v6len)));
    c.vip6 = Ipv6Prefix{Ipv6{v6}, v6len};
  }
  P2P_TRY(pk, field(r, r.array<kPublicKeySize>(), "public key"));
  c.public_key = pk;
  P2P_TRY(ngroups, field(r, r.u8(), "group count"));
  if (ngroups > kMaxGroups)
    return fail(malformed(std::to_string(ngroups) + " groups, at most " +
                          std::to_string(kMaxGroups) + " allowed"));
  c.groups.reserve(ngroups);
  for (unsigned i = 0; i < ngroups; ++i) {
    P2P_TRY(group, read_name(r, "group"));
    if (!c.groups.empty() && !(c.groups.back() < group))
      return fail(malformed("groups are not sorted and unique"));
    c.groups.push_back(std::move(group));
  }
  P2P_TRY(times, read_validity(r));
  std::tie(c.not_before, c.not_after) = times;
  P2P_TRY(issuer, field(r, r.array<kKeyIdSize>(), "issuer"));
  c.issuer = issuer;
  P2P_TRY(sig, read_final_signature(r));
  c.signature = sig;
  return c;
}

Expected<CaCertificate, CertError> decode_ca_certificate(std::span<const std::uint8_t> bytes) {
  wire::ByteReader r(bytes);
  P2P_TRY(type, read_header(r));
  if (type != Type::ca) return fail(malformed("this is a node certificate, not a CA certificate"));
  CaCertificate c;
  P2P_TRY(name, read_name(r, "CA name"));
  c.name = std::move(name);
  P2P_TRY(pk, field(r, r.array<kPublicKeySize>(), "public key"));
  c.public_key = pk;
  P2P_TRY(times, read_validity(r));
  std::tie(c.not_before, c.not_after) = times;
  P2P_TRY(sig, read_final_signature(r));
  c.signature = sig;
  return c;
}

Expected<Certificate, CertError> sign(Certificate cert, const CaCertificate& ca,
                                      const Ed25519KeyPair& ca_key) {
  if (ca_key.public_key() != ca.public_key)
    return fail(cert_error(CertErrorKind::wrong_ca,
                           "the CA private key does not match '" + ca.name + "' certificate"));
  std::sort(cert.groups.begin(), cert.groups.end());
  if (auto ok = validate(cert); !ok) return fail(ok.error());
  cert.issuer = key_id(ca.public_key);
  P2P_TRY(body, encode_body(cert));
  cert.signature = ca_key.sign(signed_message(kCertContext, body));
  return cert;
}

Expected<CaCertificate, CertError> make_ca_certificate(std::string name,
                                                       const Ed25519KeyPair& ca_key,
                                                       UnixTime not_before, UnixTime not_after) {
  CaCertificate ca{std::move(name), ca_key.public_key(), not_before, not_after, {}};
  if (auto ok = validate(ca); !ok) return fail(ok.error());
  P2P_TRY(body, encode_body(ca));
  ca.signature = ca_key.sign(signed_message(kCaContext, body));
  return ca;
}

Expected<void, CertError> verify(const Certificate& cert, const CaCertificate& ca, UnixTime now,
                                 const VerifyPolicy& policy) {
  const KeyId expected = key_id(ca.public_key);
  if (cert.issuer != expected)
    return fail(cert_error(CertErrorKind::wrong_ca,
                           "'" + cert.name + "' was issued by CA key id " + to_hex(cert.issuer) +
                               ", not by '" + ca.name + "' (key id " + to_hex(expected) + ")"));
  if (auto ok = validate(cert); !ok) return ok;
  P2P_TRY(body, encode_body(cert));
  if (!ed25519_verify(ca.public_key, signed_message(kCertContext, body), cert.signature))
    return fail(cert_error(CertErrorKind::bad_signature,
                           "'" + cert.name + "' is not signed by CA '" + ca.name + "'"));
  if (auto ok = check_window("the CA certificate", ca.not_before, ca.not_after, now); !ok)
    return ok;
  if (auto ok = check_window("'" + cert.name + "'", cert.not_before, cert.not_after, now); !ok)
    return ok;
  if (policy.required_role && cert.role != *policy.required_role)
    return fail(cert_error(CertErrorKind::wrong_role,
                           "'" + cert.name + "' has role " + std::string(to_string(cert.role)) +
                               ", expected " + std::string(to_string(*policy.required_role))));
  if (!policy.revoked.empty()) {
    const std::string fp = fingerprint(cert);
    if (std::find(policy.revoked.begin(), policy.revoked.end(), fp) != policy.revoked.end())
      return fail(cert_error(CertErrorKind::revoked,
                             "'" + cert.name + "' (fingerprint " + fp + ") is revoked"));
  }
  return {};
}

Expected<void, CertError> verify_ca(const CaCertificate& ca, UnixTime now) {
  if (auto ok = validate(ca); !ok) return ok;
  P2P_TRY(body, encode_body(ca));
  if (!ed25519_verify(ca.public_key, signed_message(kCaContext, body), ca.signature))
    return fail(cert_error(CertErrorKind::bad_signature,
                           "CA certificate '" + ca.name + "' has an invalid self-signature"));
  return check_window("the CA certificate", ca.not_before, ca.not_after, now);
}

std::string fingerprint(const Certificate& cert) {
  return blake2b_hex(encode(cert));
}
std::string fingerprint(const CaCertificate& ca) {
  return blake2b_hex(encode(ca));
}

std::string format_utc(UnixTime t) {
  std::tm tm{};
  const auto tt = static_cast<std::time_t>(t);
  char buf[64];
  if (::gmtime_r(&tt, &tm) == nullptr || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return "@" + std::to_string(t) + " (Unix seconds)";
  return buf;
}

std::string describe(const Certificate& c) {
  std::string groups;
  for (const auto& g : c.groups) groups += (groups.empty() ? "" : ", ") + g;
  std::string out;
  out += "certificate: " + std::string(to_string(c.role)) + "\n";
  out += "name:        " + c.name + "\n";
  out += "role:        " + std::string(to_string(c.role)) + "\n";
  out += "vip:         " + c.vip.to_string() + "\n";
  if (c.vip6) out += "vip6:        " + c.vip6->to_string() + "\n";
  out += "groups:      " + (groups.empty() ? std::string("(none)") : groups) + "\n";
  out += "not before:  " + format_utc(c.not_before) + "\n";
  out += "not after:   " + format_utc(c.not_after) + "\n";
  out += "public key:  " + to_base64(c.public_key) + " (X25519)\n";
  out += "fingerprint: " + fingerprint(c) + "\n";
  out += "issuer:      " + to_hex(c.issuer) + " (CA key id)\n";
  return out;
}

std::string describe(const CaCertificate& c) {
  std::string out;
  out += "certificate: CA (self-signed)\n";
  out += "name:        " + c.name + "\n";
  out += "not before:  " + format_utc(c.not_before) + "\n";
  out += "not after:   " + format_utc(c.not_after) + "\n";
  out += "public key:  " + to_base64(c.public_key) + " (Ed25519)\n";
  out += "fingerprint: " + fingerprint(c) + "\n";
  out += "key id:      " + to_hex(key_id(c.public_key)) + "\n";
  return out;
}

std::string to_armor(const Certificate& cert) {
  return armor(kCertificateLabel, encode(cert));
}
std::string to_armor(const CaCertificate& ca) {
  return armor(kCaCertificateLabel, encode(ca));
}

Expected<Certificate, CertError> certificate_from_armor(std::string_view text) {
  return from_armor<Certificate>(text, kCertificateLabel, decode_certificate);
}

Expected<CaCertificate, CertError> ca_certificate_from_armor(std::string_view text) {
  return from_armor<CaCertificate>(text, kCaCertificateLabel, decode_ca_certificate);
}

Expected<Certificate, CertError> load_certificate(const std::filesystem::path& path) {
  return load<Certificate>(path, certificate_from_armor);
}

Expected<CaCertificate, CertError> load_ca_certificate(const std::filesystem::path& path) {
  return load<CaCertificate>(path, ca_certificate_from_armor);
}

Expected<void, CertError> save_certificate(const std::filesystem::path& path,
                                           const Certificate& cert, bool overwrite) {
  return save(path, to_armor(cert), overwrite);
}

Expected<void, CertError> save_ca_certificate(const std::filesystem::path& path,
                                              const CaCertificate& ca, bool overwrite) {
  return save(path, to_armor(ca), overwrite);
}

#undef P2P_TRY

}  // namespace p2p::crypto
