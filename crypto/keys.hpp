// Long-term key pairs and their files.
//
//   X25519KeyPair   a node's static Noise key (NAME.key, armour "X25519 PRIVATE KEY").
//   Ed25519KeyPair  the network CA's signing key (ca.key, armour "ED25519 PRIVATE KEY"; the
//                   file holds the 32-byte seed, the pair is derived from it).
//
// Private parts live only in SecureBuffer (guarded, wiped). Files holding them are created
// with mode 0600 and refused on load when group or others have any access. Nothing here logs
// or prints private key bytes; error messages name files, never contents.
// Public keys are plain 32-byte arrays with hex/base64 helpers for display and exchange.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "crypto/secure_buffer.hpp"
#include "net/expected.hpp"

namespace p2p::crypto {

inline constexpr std::size_t kPublicKeySize = 32;
inline constexpr std::size_t kSignatureSize = 64;

using PublicKey = std::array<std::uint8_t, kPublicKeySize>;
using Signature = std::array<std::uint8_t, kSignatureSize>;

inline constexpr std::string_view kX25519PrivateLabel = "X25519 PRIVATE KEY";
inline constexpr std::string_view kX25519PublicLabel = "X25519 PUBLIC KEY";
inline constexpr std::string_view kEd25519PrivateLabel = "ED25519 PRIVATE KEY";

struct KeyError {
  std::string message;
};

class X25519KeyPair {
 public:
  static X25519KeyPair generate();
  // Derives the public key from a private scalar.
  static X25519KeyPair from_private(SecureBuffer<32> private_key);

  const SecureBuffer<32>& private_key() const { return private_; }
  const PublicKey& public_key() const { return public_; }

 private:
  X25519KeyPair(SecureBuffer<32> sk, const PublicKey& pk) : private_(std::move(sk)), public_(pk) {}
  SecureBuffer<32> private_;
  PublicKey public_;
};

class Ed25519KeyPair {
 public:
  static Ed25519KeyPair generate();
  static Ed25519KeyPair from_seed(const SecureBuffer<32>& seed);

  // libsodium's 64-byte secret key (seed followed by the public key).
  const SecureBuffer<64>& secret_key() const { return secret_; }
  const PublicKey& public_key() const { return public_; }
  Signature sign(std::span<const std::uint8_t> message) const;

 private:
  Ed25519KeyPair(SecureBuffer<64> sk, const PublicKey& pk) : secret_(std::move(sk)), public_(pk) {}
  SecureBuffer<64> secret_;
  PublicKey public_;
};

bool ed25519_verify(const PublicKey& public_key, std::span<const std::uint8_t> message,
                    const Signature& signature);

// Display / exchange forms of public data.
std::string to_hex(std::span<const std::uint8_t> bytes);
std::string to_base64(std::span<const std::uint8_t> bytes);  // standard, padded
std::optional<PublicKey> public_key_from_hex(std::string_view hex);
std::optional<PublicKey> public_key_from_base64(std::string_view b64);

// Armoured text of a private key. The caller must wipe the string (sodium_memzero) after use.
std::string private_key_to_armor(const X25519KeyPair& key);
std::string private_key_to_armor(const Ed25519KeyPair& key);
Expected<X25519KeyPair, KeyError> x25519_from_armor(std::string_view text);
Expected<Ed25519KeyPair, KeyError> ed25519_from_armor(std::string_view text);

// Files. save_* create the file with mode 0600 and refuse an existing one unless `overwrite`.
// load_* refuse a file that group or others can access, a wrong label or a bad length.
Expected<void, KeyError> save_private_key(const std::filesystem::path& path,
                                          const X25519KeyPair& key, bool overwrite = false);
Expected<void, KeyError> save_private_key(const std::filesystem::path& path,
                                          const Ed25519KeyPair& key, bool overwrite = false);
Expected<X25519KeyPair, KeyError> load_x25519_private_key(const std::filesystem::path& path);
Expected<Ed25519KeyPair, KeyError> load_ed25519_private_key(const std::filesystem::path& path);

// An X25519 public key as exchanged with an admin: armoured ("X25519 PUBLIC KEY"), or one line
// of base64 or hex. Public key files are written with mode 0644.
std::string public_key_to_armor(const PublicKey& key);
Expected<PublicKey, KeyError> parse_public_key(std::string_view text);
Expected<void, KeyError> save_public_key(const std::filesystem::path& path, const PublicKey& key,
                                         bool overwrite = false);
Expected<PublicKey, KeyError> load_public_key(const std::filesystem::path& path);

}  // namespace p2p::crypto
