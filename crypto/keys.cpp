#include "crypto/keys.hpp"

#include <sodium.h>

#include "crypto/armor.hpp"

namespace p2p::crypto {
namespace {

static_assert(crypto_scalarmult_BYTES == kPublicKeySize);
static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeySize);
static_assert(crypto_sign_BYTES == kSignatureSize);
static_assert(crypto_sign_SEEDBYTES == 32 && crypto_sign_SECRETKEYBYTES == 64);

KeyError key_error(std::string message) {
  return KeyError{std::move(message)};
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string file_prefix(const std::filesystem::path& path) {
  return "'" + path.string() + "': ";
}

Expected<void, KeyError> write_secret(const std::filesystem::path& path, std::string text,
                                      bool overwrite) {
  WipeGuard wipe{text};
  auto ok = write_armored_file(path, text, 0600, overwrite);
  if (!ok) return fail(key_error(ok.error().message));
  return {};
}

// Reads a private key file (permission-checked), parses it, wipes the text.
template <class Key, class Parse>
Expected<Key, KeyError> load_private(const std::filesystem::path& path, Parse parse) {
  auto text = read_armored_file(path, true);
  if (!text) return fail(key_error(text.error().message));
  WipeGuard wipe{*text};
  auto key = parse(*text);
  if (!key) return fail(key_error(file_prefix(path) + key.error().message));
  return std::move(key).value();
}

}  // namespace

X25519KeyPair X25519KeyPair::generate() {
  SecureBuffer<32> sk;
  randombytes_buf(sk.data(), sk.size());
  return from_private(std::move(sk));
}

X25519KeyPair X25519KeyPair::from_private(SecureBuffer<32> private_key) {
  PublicKey pk{};
  crypto_scalarmult_base(pk.data(), private_key.data());
  return X25519KeyPair(std::move(private_key), pk);
}

Ed25519KeyPair Ed25519KeyPair::generate() {
  SecureBuffer<32> seed;
  randombytes_buf(seed.data(), seed.size());
  return from_seed(seed);
}

Ed25519KeyPair Ed25519KeyPair::from_seed(const SecureBuffer<32>& seed) {
  SecureBuffer<64> sk;
  PublicKey pk{};
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  return Ed25519KeyPair(std::move(sk), pk);
}

Signature Ed25519KeyPair::sign(std::span<const std::uint8_t> message) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

bool ed25519_verify(const PublicKey& public_key, std::span<const std::uint8_t> message,
                    const Signature& signature) {
  init_sodium();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::string to_base64(std::span<const std::uint8_t> bytes) {
  init_sodium();
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();
  return out;
}

std::optional<PublicKey> public_key_from_hex(std::string_view hex) {
  PublicKey pk{};
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != kPublicKeySize * 2 ||
      sodium_hex2bin(pk.data(), pk.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != pk.size() || end != hex.data() + hex.size())
    return std::nullopt;
  return pk;
}

std::optional<PublicKey> public_key_from_base64(std::string_view b64) {
  init_sodium();
  PublicKey pk{};
  std::size_t len = 0;
  const char* end = nullptr;
  if (b64.size() != sodium_base64_encoded_len(kPublicKeySize, sodium_base64_VARIANT_ORIGINAL) - 1 ||
      sodium_base642bin(pk.data(), pk.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != pk.size() || end != b64.data() + b64.size())
    return std::nullopt;
  return pk;
}

std::string private_key_to_armor(const X25519KeyPair& key) {
  return armor(kX25519PrivateLabel, key.private_key().span());
}

std::string private_key_to_armor(const Ed25519KeyPair& key) {
  SecureBuffer<32> seed;
  crypto_sign_ed25519_sk_to_seed(seed.data(), key.secret_key().data());
  return armor(kEd25519PrivateLabel, seed.span());
}

Expected<X25519KeyPair, KeyError> x25519_from_armor(std::string_view text) {
  SecureBuffer<32> sk;
  auto ok = dearmor_into(text, kX25519PrivateLabel, sk.span());
  if (!ok) return fail(key_error("X25519 private key: " + ok.error().message));
  return X25519KeyPair::from_private(std::move(sk));
}

Expected<Ed25519KeyPair, KeyError> ed25519_from_armor(std::string_view text) {
  SecureBuffer<32> seed;
  auto ok = dearmor_into(text, kEd25519PrivateLabel, seed.span());
  if (!ok) return fail(key_error("Ed25519 private key: " + ok.error().message));
  return Ed25519KeyPair::from_seed(seed);
}

Expected<void, KeyError> save_private_key(const std::filesystem::path& path,
                                          const X25519KeyPair& key, bool overwrite) {
  return write_secret(path, private_key_to_armor(key), overwrite);
}

Expected<void, KeyError> save_private_key(const std::filesystem::path& path,
                                          const Ed25519KeyPair& key, bool overwrite) {
  return write_secret(path, private_key_to_armor(key), overwrite);
}

Expected<X25519KeyPair, KeyError> load_x25519_private_key(const std::filesystem::path& path) {
  return load_private<X25519KeyPair>(path, x25519_from_armor);
}

Expected<Ed25519KeyPair, KeyError> load_ed25519_private_key(const std::filesystem::path& path) {
  return load_private<Ed25519KeyPair>(path, ed25519_from_armor);
}

std::string public_key_to_armor(const PublicKey& key) {
  return armor(kX25519PublicLabel, key);
}

Expected<PublicKey, KeyError> parse_public_key(std::string_view text) {
  text = trim(text);
  if (auto label = armor_label(text)) {
    if (label->find("PRIVATE") != std::string::npos)
      return fail(key_error("this is a private key (" + *label +
                            "); give the public key instead (p2pvpnctl key public FILE)"));
    auto bytes = dearmor(text, kX25519PublicLabel);
    if (!bytes) return fail(key_error("X25519 public key: " + bytes.error().message));
    if (bytes->size() != kPublicKeySize)
      return fail(key_error("X25519 public key: payload is " + std::to_string(bytes->size()) +
                            " bytes, expected 32"));
    PublicKey pk{};
    std::copy(bytes->begin(), bytes->end(), pk.begin());
    return pk;
  }
  if (auto pk = public_key_from_base64(text)) return *pk;
  if (auto pk = public_key_from_hex(text)) return *pk;
  return fail(key_error(
      "not an X25519 public key: expected an armoured public key, 44 characters of base64 or 64 "
      "hex digits"));
}

Expected<void, KeyError> save_public_key(const std::filesystem::path& path, const PublicKey& key,
                                         bool overwrite) {
  auto ok = write_armored_file(path, public_key_to_armor(key), 0644, overwrite);
  if (!ok) return fail(key_error(ok.error().message));
  return {};
}

Expected<PublicKey, KeyError> load_public_key(const std::filesystem::path& path) {
  auto text = read_armored_file(path, false);
  if (!text) return fail(key_error(text.error().message));
  WipeGuard wipe{*text};  // the user may have handed us a private key by mistake
  auto key = parse_public_key(*text);
  if (!key) return fail(key_error(file_prefix(path) + key.error().message));
  return *key;
}

}  // namespace p2p::crypto
