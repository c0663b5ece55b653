#include "crypto/noise.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

namespace p2p::crypto::noise {
namespace {

using ByteSpan = std::span<const std::uint8_t>;

std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce_bytes(std::uint64_t n) {
  std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return nonce;
}

// libsodium declares the message pointers nonnull even for empty messages (never accessed).
std::uint8_t* non_null(std::span<std::uint8_t> data) {
  static std::uint8_t empty;
  return data.empty() ? &empty : data.data();
}

// HMAC-BLAKE2b (RFC 2104, HASHLEN 64, BLOCKLEN 128) of the concatenated `parts`.
// `key` is at most 128 bytes; `pad` is 128 bytes of secure scratch; `out` must not alias key.
void hmac(ByteSpan key, std::initializer_list<ByteSpan> parts, std::uint8_t* pad,
          std::uint8_t* out) {
  crypto_generichash_state st;
  for (const std::uint8_t fill : {std::uint8_t{0x36}, std::uint8_t{0x5c}}) {
    std::memset(pad, fill, 128);
    for (std::size_t i = 0; i < key.size(); ++i) pad[i] ^= key[i];
    crypto_generichash_init(&st, nullptr, 0, kHashLen);
    crypto_generichash_update(&st, pad, 128);
    if (fill == 0x36) {
      for (ByteSpan p : parts) crypto_generichash_update(&st, p.data(), p.size());
    } else {
      crypto_generichash_update(&st, out, kHashLen);  // the inner hash
    }
    crypto_generichash_final(&st, out, kHashLen);
  }
  sodium_memzero(&st, sizeof st);
  sodium_memzero(pad, 128);
}

bool contains(const std::vector<Token>& tokens, Token t) {
  return std::find(tokens.begin(), tokens.end(), t) != tokens.end();
}

}  // namespace

std::string_view to_string(Error e) {
  switch (e) {
    case Error::decrypt_failed: return "decrypt_failed";
    case Error::bad_length: return "bad_length";
    case Error::wrong_turn: return "wrong_turn";
    case Error::invalid_dh: return "invalid_dh";
    case Error::message_too_large: return "message_too_large";
    case Error::missing_key: return "missing_key";
    case Error::nonce_exhausted: return "nonce_exhausted";
    case Error::not_complete: return "not_complete";
    case Error::failed: return "failed";
  }
  return "unknown";
}

namespace {

// A key pair of either kind (guarded or wiped private half) from its private key.
template <class Pair, class Secret>
Pair derive_pair(Secret secret) {
  Pair kp{std::move(secret), {}};
  crypto_scalarmult_base(kp.public_key.data(), kp.private_key.data());
  return kp;
}

template <class Pair, class Secret>
Pair random_pair() {
  Secret secret;
  randombytes_buf(secret.data(), kDhLen);
  return derive_pair<Pair>(std::move(secret));
}

}  // namespace

KeyPair KeyPair::generate() {
  return random_pair<KeyPair, SecureBuffer<kDhLen>>();
}

KeyPair KeyPair::from_private(std::span<const std::uint8_t, kDhLen> private_key) {
  return derive_pair<KeyPair>(SecureBuffer<kDhLen>(private_key));
}

EphemeralKey EphemeralKey::generate() {
  return random_pair<EphemeralKey, Wiped<kDhLen>>();
}

EphemeralKey EphemeralKey::from_private(std::span<const std::uint8_t, kDhLen> private_key) {
  return derive_pair<EphemeralKey>(Wiped<kDhLen>(private_key));
}

void seal(std::span<const std::uint8_t, kKeyLen> key, std::uint64_t n, ByteSpan ad,
          std::span<std::uint8_t> data, std::span<std::uint8_t, kTagLen> tag) {
  const auto nonce = nonce_bytes(n);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(non_null(data), tag.data(), nullptr,
                                                     non_null(data), data.size(), ad.data(),
                                                     ad.size(), nullptr, nonce.data(), key.data());
}

bool open(std::span<const std::uint8_t, kKeyLen> key, std::uint64_t n, ByteSpan ad,
          std::span<std::uint8_t> data, std::span<const std::uint8_t, kTagLen> tag) {
  const auto nonce = nonce_bytes(n);
  return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
             non_null(data), nullptr, non_null(data), data.size(), tag.data(), ad.data(), ad.size(),
             nonce.data(), key.data()) == 0;
}

// --- CipherState -----------------------------------------------------------------------------

void CipherState::initialize_key(std::span<const std::uint8_t, kKeyLen> key) {
  std::memcpy(key_.data(), key.data(), kKeyLen);
  has_key_ = true;
  n_ = 0;
}

Expected<void, Error> CipherState::encrypt_with_ad(ByteSpan ad, ByteSpan plaintext, Bytes& out) {
  const std::size_t start = out.size();
  out.insert(out.end(), plaintext.begin(), plaintext.end());
  if (!has_key_) return {};
  if (n_ == UINT64_MAX) {
    out.resize(start);
    return fail(Error::nonce_exhausted);
  }
  out.resize(start + plaintext.size() + kTagLen);
  const auto data = std::span(out).subspan(start, plaintext.size());
  seal(key_.span(), n_++, ad, data,
       std::span(out).subspan(start + plaintext.size()).first<kTagLen>());
  return {};
}

Expected<void, Error> CipherState::decrypt_with_ad(ByteSpan ad, ByteSpan ciphertext, Bytes& out) {
  const std::size_t start = out.size();
  if (!has_key_) {
    out.insert(out.end(), ciphertext.begin(), ciphertext.end());
    return {};
  }
  if (n_ == UINT64_MAX) return fail(Error::nonce_exhausted);
  if (ciphertext.size() < kTagLen) return fail(Error::bad_length);
  const std::size_t len = ciphertext.size() - kTagLen;
  out.insert(out.end(), ciphertext.begin(), ciphertext.begin() + len);
  if (!open(key_.span(), n_, ad, std::span(out).subspan(start, len),
            ciphertext.subspan(len).first<kTagLen>())) {
    sodium_memzero(out.data() + start, len);
    out.resize(start);
    return fail(Error::decrypt_failed);
  }
  ++n_;
  return {};
}

// --- SymmetricState --------------------------------------------------------------------------

SymmetricState::SymmetricState(std::string_view protocol_name) {
  if (protocol_name.size() <= kHashLen) {
    std::copy(protocol_name.begin(), protocol_name.end(), h_.begin());
  } else {
    crypto_generichash(h_.data(), kHashLen,
                       reinterpret_cast<const unsigned char*>(protocol_name.data()),
                       protocol_name.size(), nullptr, 0);
  }
  std::memcpy(at(kCk), h_.data(), kHashLen);
}

void SymmetricState::hkdf2(ByteSpan ikm) {
  const std::uint8_t one = 0x01, two = 0x02;
  hmac({at(kCk), kHashLen}, {ikm}, at(kPad), at(kTemp));
  hmac({at(kTemp), kHashLen}, {{&one, 1}}, at(kPad), at(kOut1));
  hmac({at(kTemp), kHashLen}, {{at(kOut1), kHashLen}, {&two, 1}}, at(kPad), at(kOut2));
  sodium_memzero(at(kTemp), kHashLen);
}

void SymmetricState::mix_key(std::span<const std::uint8_t, kDhLen> input_key_material) {
  hkdf2(input_key_material);
  std::memcpy(at(kCk), at(kOut1), kHashLen);
  cipher_.initialize_key(std::span<const std::uint8_t, kKeyLen>(at(kOut2), kKeyLen));
  sodium_memzero(at(kPad), kStateLen - kPad);
}

void SymmetricState::mix_hash(ByteSpan data) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kHashLen);
  crypto_generichash_update(&st, h_.data(), kHashLen);
  crypto_generichash_update(&st, data.data(), data.size());
  crypto_generichash_final(&st, h_.data(), kHashLen);
}

Expected<void, Error> SymmetricState::encrypt_and_hash(ByteSpan plaintext, Bytes& out) {
  const std::size_t start = out.size();
  if (auto r = cipher_.encrypt_with_ad(h_, plaintext, out); !r) return r;
  mix_hash(std::span(out).subspan(start));
  return {};
}

Expected<void, Error> SymmetricState::decrypt_and_hash(ByteSpan ciphertext, Bytes& out) {
  if (auto r = cipher_.decrypt_with_ad(h_, ciphertext, out); !r) return r;
  mix_hash(ciphertext);
  return {};
}

std::pair<Wiped<kKeyLen>, Wiped<kKeyLen>> SymmetricState::split() {
  hkdf2({});
  using Key = std::span<const std::uint8_t, kKeyLen>;
  std::pair<Wiped<kKeyLen>, Wiped<kKeyLen>> keys{Key(at(kOut1), kKeyLen), Key(at(kOut2), kKeyLen)};
  state_.wipe();
  return keys;
}

// --- Patterns --------------------------------------------------------------------------------

const Pattern* find_pattern(std::string_view name) {
  using enum Token;
  static const std::vector<Pattern> kPatterns = {
      {"N", {}, {s}, {{e, es}}},
      {"K", {s}, {s}, {{e, es, ss}}},
      {"X", {}, {s}, {{e, es, s, ss}}},
      {"NN", {}, {}, {{e}, {e, ee}}},
      {"NK", {}, {s}, {{e, es}, {e, ee}}},
      {"NX", {}, {}, {{e}, {e, ee, s, es}}},
      {"XN", {}, {}, {{e}, {e, ee}, {s, se}}},
      {"XK", {}, {s}, {{e, es}, {e, ee}, {s, se}}},
      {"XX", {}, {}, {{e}, {e, ee, s, es}, {s, se}}},
      {"KN", {s}, {}, {{e}, {e, ee, se}}},
      {"KK", {s}, {s}, {{e, es, ss}, {e, ee, se}}},
      {"KX", {s}, {}, {{e}, {e, ee, se, s, es}}},
      {"IN", {}, {}, {{e, s}, {e, ee, se}}},
      {"IK", {}, {s}, {{e, es, s, ss}, {e, ee, se}}},
      {"IX", {}, {}, {{e, s}, {e, ee, se, s, es}}},
  };
  for (const Pattern& p : kPatterns) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// --- HandshakeState --------------------------------------------------------------------------

Expected<HandshakeState, Error> HandshakeState::create(HandshakeConfig config) {
  const Pattern& p = config.pattern;
  if (p.messages.empty()) return fail(Error::bad_length);
  for (const auto* pre : {&p.initiator_pre, &p.responder_pre}) {
    if (std::any_of(pre->begin(), pre->end(), [](Token t) { return t != Token::s; })) {
      return fail(Error::bad_length);
    }
  }
  const auto& my_pre = config.initiator ? p.initiator_pre : p.responder_pre;
  const auto& their_pre = config.initiator ? p.responder_pre : p.initiator_pre;
  bool needs_local = contains(my_pre, Token::s);
  for (std::size_t i = config.initiator ? 0 : 1; i < p.messages.size(); i += 2) {
    needs_local = needs_local || contains(p.messages[i], Token::s);
  }
  if (needs_local && !config.local_static) return fail(Error::missing_key);
  if (contains(their_pre, Token::s) && !config.remote_static) return fail(Error::missing_key);
  if (!contains(their_pre, Token::s)) config.remote_static.reset();

  const std::string name = "Noise_" + p.name + "_25519_ChaChaPoly_BLAKE2b";
  return HandshakeState(std::move(config), name);
}

HandshakeState::HandshakeState(HandshakeConfig&& config, std::string_view protocol_name)
    : pattern_(std::move(config.pattern)),
      initiator_(config.initiator),
      symmetric_(protocol_name),
      s_(config.local_static),
      injected_e_(std::move(config.ephemeral_private)),
      rs_(config.remote_static) {
  symmetric_.mix_hash(config.prologue);
  // Pre-messages: the initiator's first, then the responder's (only `s` is allowed).
  if (contains(pattern_.initiator_pre, Token::s)) {
    symmetric_.mix_hash(initiator_ ? s_->public_key : *rs_);
  }
  if (contains(pattern_.responder_pre, Token::s)) {
    symmetric_.mix_hash(initiator_ ? *rs_ : s_->public_key);
  }
}

bool HandshakeState::my_turn() const {
  return state_ == State::in_progress && ((next_message_ % 2 == 0) == initiator_);
}

template <class T>
Expected<T, Error> HandshakeState::fail_with(Error e) {
  state_ = State::failed;
  e_.reset();
  injected_e_.reset();
  return fail(e);
}

Expected<void, Error> HandshakeState::dh_into_key(Token token) {
  if (token == Token::e || token == Token::s) return fail(Error::missing_key);
  // ee: e/re; es: initiator e/rs, responder s/re; se: the mirror image; ss: s/rs.
  const bool es = token == Token::es, se = token == Token::se;
  const bool local_e = token == Token::ee || (es && initiator_) || (se && !initiator_);
  const bool remote_e = token == Token::ee || (es && !initiator_) || (se && initiator_);
  const std::uint8_t* local =
      local_e ? (e_ ? e_->private_key.data() : nullptr) : (s_ ? s_->private_key.data() : nullptr);
  const std::optional<PublicKey>& remote = remote_e ? re_ : rs_;
  if (!local || !remote) return fail(Error::missing_key);
  const int rc = crypto_scalarmult(dh_.data(), local, remote->data());
  // libsodium already refuses an all-zero result; the explicit check keeps the contract local.
  if (rc != 0 || sodium_is_zero(dh_.data(), kDhLen)) {
    dh_.wipe();
    return fail(Error::invalid_dh);
  }
  symmetric_.mix_key(dh_.span());
  dh_.wipe();
  return {};
}

Expected<Bytes, Error> HandshakeState::write_message(std::span<const std::uint8_t> payload) {
  if (state_ == State::failed) return fail(Error::failed);
  if (!my_turn()) return fail_with<Bytes>(Error::wrong_turn);
  if (payload.size() > kMaxMessageLen) return fail_with<Bytes>(Error::message_too_large);
  Bytes out;
  for (Token t : pattern_.messages[next_message_]) {
    switch (t) {
      case Token::e:
        e_ = injected_e_ ? EphemeralKey::from_private(injected_e_->span())
                         : EphemeralKey::generate();
        injected_e_.reset();
        out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
        symmetric_.mix_hash(e_->public_key);
        break;
      case Token::s:
        if (!s_) return fail_with<Bytes>(Error::missing_key);
        if (auto r = symmetric_.encrypt_and_hash(s_->public_key, out); !r) {
          return fail_with<Bytes>(r.error());
        }
        break;
      default:
        if (auto r = dh_into_key(t); !r) return fail_with<Bytes>(r.error());
    }
  }
  if (auto r = symmetric_.encrypt_and_hash(payload, out); !r) return fail_with<Bytes>(r.error());
  if (out.size() > kMaxMessageLen) return fail_with<Bytes>(Error::message_too_large);
  if (++next_message_ == pattern_.messages.size()) state_ = State::complete;
  return out;
}

Expected<Bytes, Error> HandshakeState::read_message(std::span<const std::uint8_t> message) {
  if (state_ == State::failed) return fail(Error::failed);
  if (state_ != State::in_progress || my_turn()) return fail_with<Bytes>(Error::wrong_turn);
  if (message.size() > kMaxMessageLen) return fail_with<Bytes>(Error::message_too_large);
  std::span<const std::uint8_t> rest = message;
  for (Token t : pattern_.messages[next_message_]) {
    switch (t) {
      case Token::e: {
        if (rest.size() < kDhLen) return fail_with<Bytes>(Error::bad_length);
        re_.emplace();
        std::copy_n(rest.begin(), kDhLen, re_->begin());
        symmetric_.mix_hash(*re_);
        rest = rest.subspan(kDhLen);
        break;
      }
      case Token::s: {
        const std::size_t len = kDhLen + (symmetric_.has_key() ? kTagLen : 0);
        if (rest.size() < len) return fail_with<Bytes>(Error::bad_length);
        Bytes key;
        if (auto r = symmetric_.decrypt_and_hash(rest.first(len), key); !r) {
          return fail_with<Bytes>(r.error());
        }
        rs_.emplace();
        std::copy_n(key.begin(), kDhLen, rs_->begin());
        rest = rest.subspan(len);
        break;
      }
      default:
        if (auto r = dh_into_key(t); !r) return fail_with<Bytes>(r.error());
    }
  }
  Bytes payload;
  if (auto r = symmetric_.decrypt_and_hash(rest, payload); !r) return fail_with<Bytes>(r.error());
  if (++next_message_ == pattern_.messages.size()) state_ = State::complete;
  return payload;
}

Expected<TransportKeys, Error> HandshakeState::split() {
  if (state_ == State::failed) return fail(Error::failed);
  if (split_done_) return fail_with<TransportKeys>(Error::failed);
  if (state_ != State::complete) return fail_with<TransportKeys>(Error::not_complete);
  split_done_ = true;
  auto [first, second] = symmetric_.split();
  if (initiator_) return TransportKeys{std::move(first), std::move(second)};
  return TransportKeys{std::move(second), std::move(first)};
}

}  // namespace p2p::crypto::noise
