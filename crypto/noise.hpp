// The Noise Protocol Framework (revision 34) for Noise_*_25519_ChaChaPoly_BLAKE2b.
//
// Flow: a HandshakeState is created from a Pattern (token lists, e.g. IK), the role, the
// prologue and the keys the pattern needs. The two sides then alternate write_message() and
// read_message() as the pattern dictates (initiator first). Once is_complete(), split() gives
// the two transport keys and handshake_hash() the channel binding.
//
// Error contract (as nebula's handshake machine): any error returned by write_message(),
// read_message() or split() leaves the HandshakeState dead. Every later call fails with
// Error::failed; failed() says so. A responder that reads a bad first message simply drops
// the object and starts afresh with the next one. Nothing is thrown on these paths.
//
// Primitives (libsodium): X25519, ChaCha20-Poly1305 IETF with nonce = 4 zero bytes || 64-bit
// little-endian counter, BLAKE2b-512, HMAC-BLAKE2b and HKDF as in section 4.3 of the spec.
// PSK patterns are not supported. The long-lived static key pair is the caller's (guarded
// memory, its public half derived once) and only borrowed; all per-handshake secret state
// (k, ck, the ephemeral private key, DH outputs, HKDF temporaries) and the transport keys live
// in Wiped memory: ordinary, wiped on destruction and move, no memory mapping per handshake.
// Not thread-safe; one object per handshake attempt.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/secure_buffer.hpp"
#include "crypto/wiped.hpp"
#include "net/expected.hpp"

namespace p2p::crypto::noise {

inline constexpr std::size_t kDhLen = 32;
inline constexpr std::size_t kKeyLen = 32;
inline constexpr std::size_t kHashLen = 64;
inline constexpr std::size_t kTagLen = 16;
inline constexpr std::size_t kMaxMessageLen = 65535;

using Bytes = std::vector<std::uint8_t>;
using PublicKey = std::array<std::uint8_t, kDhLen>;
using HandshakeHash = std::array<std::uint8_t, kHashLen>;

enum class Error {
  decrypt_failed,     // a MAC did not verify (tampered, wrong key, wrong prologue...)
  bad_length,         // a message is shorter than its tokens need
  wrong_turn,         // write/read called when it is the other side's turn, or after the end
  invalid_dh,         // a DH gave the all-zero output (low-order or zero public key)
  message_too_large,  // more than kMaxMessageLen bytes in or out
  missing_key,        // the pattern needs a static key (local or remote) that was not given
  nonce_exhausted,    // a CipherState reached nonce 2^64-1
  not_complete,       // split() before the handshake finished
  failed,             // the HandshakeState is dead after an earlier error
};
std::string_view to_string(Error e);

// A long-lived X25519 key pair. The private half lives in guarded memory.
struct KeyPair {
  SecureBuffer<kDhLen> private_key;
  PublicKey public_key{};

  static KeyPair generate();
  static KeyPair from_private(std::span<const std::uint8_t, kDhLen> private_key);
};
using StaticKey = KeyPair;

// A handshake's ephemeral key pair: ordinary memory, wiped.
struct EphemeralKey {
  Wiped<kDhLen> private_key;
  PublicKey public_key{};

  static EphemeralKey generate();
  static EphemeralKey from_private(std::span<const std::uint8_t, kDhLen> private_key);
};

// ChaCha20-Poly1305 IETF in place with the Noise nonce (counter n). seal() encrypts `data`
// and writes the 16-byte tag; open() verifies the tag before it decrypts, and leaves `data`
// unspecified (not plaintext) when it returns false. No allocation.
void seal(std::span<const std::uint8_t, kKeyLen> key, std::uint64_t n,
          std::span<const std::uint8_t> ad, std::span<std::uint8_t> data,
          std::span<std::uint8_t, kTagLen> tag);
[[nodiscard]] bool open(std::span<const std::uint8_t, kKeyLen> key, std::uint64_t n,
                        std::span<const std::uint8_t> ad, std::span<std::uint8_t> data,
                        std::span<const std::uint8_t, kTagLen> tag);

// Spec section 5.1. Without a key, encryption is the identity. Ciphertexts are appended to
// `out`; on error `out` keeps its old size.
class CipherState {
 public:
  CipherState() = default;

  void initialize_key(std::span<const std::uint8_t, kKeyLen> key);
  bool has_key() const { return has_key_; }
  void set_nonce(std::uint64_t n) { n_ = n; }
  Expected<void, Error> encrypt_with_ad(std::span<const std::uint8_t> ad,
                                        std::span<const std::uint8_t> plaintext, Bytes& out);
  Expected<void, Error> decrypt_with_ad(std::span<const std::uint8_t> ad,
                                        std::span<const std::uint8_t> ciphertext, Bytes& out);

 private:
  Wiped<kKeyLen> key_;
  bool has_key_ = false;
  std::uint64_t n_ = 0;
};

// Spec section 5.2 (without MixKeyAndHash, which only PSK patterns use).
class SymmetricState {
 public:
  explicit SymmetricState(std::string_view protocol_name);

  void mix_key(std::span<const std::uint8_t, kDhLen> input_key_material);
  void mix_hash(std::span<const std::uint8_t> data);
  bool has_key() const { return cipher_.has_key(); }
  Expected<void, Error> encrypt_and_hash(std::span<const std::uint8_t> plaintext, Bytes& out);
  Expected<void, Error> decrypt_and_hash(std::span<const std::uint8_t> ciphertext, Bytes& out);
  // The two transport keys: first for initiator->responder, second for the reverse.
  std::pair<Wiped<kKeyLen>, Wiped<kKeyLen>> split();
  const HandshakeHash& handshake_hash() const { return h_; }

 private:
  // HKDF(ck, ikm) with two outputs, into the state buffer at kOut1 and kOut2.
  void hkdf2(std::span<const std::uint8_t> ikm);
  std::uint8_t* at(std::size_t offset) { return state_.data() + offset; }

  // ck, the HMAC key block and the HKDF temporaries, in one wiped block.
  static constexpr std::size_t kBlockLen = 128;
  static constexpr std::size_t kCk = 0, kPad = kHashLen, kTemp = kPad + kBlockLen,
                               kOut1 = kTemp + kHashLen, kOut2 = kOut1 + kHashLen,
                               kStateLen = kOut2 + kHashLen;
  Wiped<kStateLen> state_;
  HandshakeHash h_{};
  CipherState cipher_;
};

enum class Token : std::uint8_t { e, s, ee, es, se, ss };

// A handshake pattern (spec section 7). Pre-messages may only hold `s` here. Messages
// alternate, the initiator sending messages[0].
struct Pattern {
  std::string name;  // "IK": goes into the protocol name
  std::vector<Token> initiator_pre;
  std::vector<Token> responder_pre;
  std::vector<std::vector<Token>> messages;
};

// The fundamental patterns of section 7.4/7.5: N K X NN NK NX XN XK XX KN KK KX IN IK IX.
// nullptr for an unknown name.
const Pattern* find_pattern(std::string_view name);

struct HandshakeConfig {
  Pattern pattern;
  bool initiator = false;
  Bytes prologue;
  // Required if the pattern sends or pre-shares our s. Borrowed: it must outlive the
  // handshake (it is the node's identity key, derived once).
  const StaticKey* local_static = nullptr;
  std::optional<PublicKey> remote_static;          // required (and only used) if the peer's s is a
                                                   // pre-message, e.g. the initiator of IK
  std::optional<Wiped<kDhLen>> ephemeral_private;  // test vectors only; else random
};

// The keys split() hands out, already oriented for this side.
struct TransportKeys {
  Wiped<kKeyLen> send;
  Wiped<kKeyLen> recv;
};

class HandshakeState {
 public:
  // Fails with missing_key when the pattern needs a key the config lacks, or bad_length when
  // a pattern is empty or has an unsupported pre-message token.
  static Expected<HandshakeState, Error> create(HandshakeConfig config);

  // Produces the next handshake message carrying `payload` (encrypted once a key exists).
  Expected<Bytes, Error> write_message(std::span<const std::uint8_t> payload);
  // Consumes the peer's next handshake message and returns its payload.
  Expected<Bytes, Error> read_message(std::span<const std::uint8_t> message);

  bool is_complete() const { return state_ == State::complete; }
  bool failed() const { return state_ == State::failed; }
  bool is_initiator() const { return initiator_; }
  // True when the next call must be write_message() (false once complete or failed).
  bool my_turn() const;
  // Transport keys (send/recv for this side). Only after is_complete(); the handshake keeps
  // no copy. May be called once: a second call fails with failed (and kills the state).
  Expected<TransportKeys, Error> split();
  // h: binds the whole transcript. Final once is_complete().
  const HandshakeHash& handshake_hash() const { return symmetric_.handshake_hash(); }
  // The peer's static key, once known (pre-message or decrypted from a message).
  const std::optional<PublicKey>& remote_static() const { return rs_; }

 private:
  enum class State { in_progress, complete, failed };
  HandshakeState(HandshakeConfig&& config, std::string_view protocol_name);

  Expected<void, Error> dh_into_key(Token token);
  template <class T>
  Expected<T, Error> fail_with(Error e);

  Pattern pattern_;
  bool initiator_;
  SymmetricState symmetric_;
  const StaticKey* s_;
  std::optional<EphemeralKey> e_;
  std::optional<Wiped<kDhLen>> injected_e_;
  std::optional<PublicKey> rs_;
  std::optional<PublicKey> re_;
  Wiped<kDhLen> dh_;  // DH output scratch
  std::size_t next_message_ = 0;
  State state_ = State::in_progress;
  bool split_done_ = false;
};

}  // namespace p2p::crypto::noise
