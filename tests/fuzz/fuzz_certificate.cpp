// Fuzz target for the certificate parsers: the same bytes as a binary node certificate, a
// binary CA certificate, and armoured text (certificate, CA certificate, public key).
//
// Invariants checked beyond "no crash": anything that decodes re-encodes to exactly the input
// (one encoding per certificate), verification against a fixed CA never succeeds for a
// certificate the fuzzer made up, and describe()/fingerprint() work on every decoded value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "crypto/armor.hpp"
#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"

namespace {

using namespace p2p::crypto;

constexpr p2p::UnixTime kNow = 1'750'000'000;

// A CA with a fixed seed: the fuzzer cannot forge its signatures.
const CaCertificate& fixed_ca() {
  static const CaCertificate ca = [] {
    SecureBuffer<32> seed;
    for (std::size_t i = 0; i < seed.size(); ++i) seed.data()[i] = static_cast<std::uint8_t>(i);
    auto key = Ed25519KeyPair::from_seed(seed);
    return *make_ca_certificate("fuzz-ca", key, 0, kNow * 2);
  }();
  return ca;
}

void check_node(const Certificate& c, std::span<const std::uint8_t> original) {
  auto enc = encode(c);
  if (!original.empty() && !std::equal(enc.begin(), enc.end(), original.begin(), original.end()))
    std::abort();  // two encodings for one certificate
  (void)describe(c);
  (void)fingerprint(c);
  if (verify(c, fixed_ca(), kNow)) std::abort();  // forged a signature?
}

void check_ca(const CaCertificate& c, std::span<const std::uint8_t> original) {
  auto enc = encode(c);
  if (!original.empty() && !std::equal(enc.begin(), enc.end(), original.begin(), original.end()))
    std::abort();
  (void)describe(c);
  (void)verify_ca(c, kNow);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  if (auto c = decode_certificate(bytes)) check_node(*c, bytes);
  if (auto c = decode_ca_certificate(bytes)) check_ca(*c, bytes);

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto c = certificate_from_armor(text)) check_node(*c, {});
  if (auto c = ca_certificate_from_armor(text)) check_ca(*c, {});
  (void)parse_public_key(text);
  (void)armor_label(text);
  SecureBuffer<32> secret;
  (void)dearmor_into(text, kX25519PrivateLabel, secret.span());
  return 0;
}
