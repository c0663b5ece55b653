#include "crypto/auth_handshake.hpp"

#include <cstring>
#include <string_view>

namespace p2p::crypto {
namespace {

constexpr std::uint8_t kPayloadVersion = 1;
constexpr std::size_t kPayloadHeader = 1 + 8 + 2;

const noise::Pattern& pattern_for(AuthHandshake::Kind kind) {
  return *noise::find_pattern(kind == AuthHandshake::Kind::kIK ? "IK" : "XX");
}

noise::Bytes prologue_for(AuthHandshake::Kind kind) {
  std::string_view p = kind == AuthHandshake::Kind::kIK ? "p2pvpn/1 IK" : "p2pvpn/1 XX";
  return noise::Bytes(p.begin(), p.end());
}

bool is_dh(noise::Token t) {
  return t != noise::Token::e && t != noise::Token::s;
}

}  // namespace

Identity Identity::make(noise::KeyPair key, Certificate cert) {
  auto encoded = encode(cert);
  return Identity{std::move(key), std::move(cert), std::move(encoded)};
}

AuthHandshake::AuthHandshake(noise::HandshakeState hs, const Identity& self,
                             CertificateVerifier verify)
    : noise_(std::move(hs)), self_(&self), verify_(std::move(verify)) {}

AuthHandshake AuthHandshake::initiator(Kind kind, const Identity& self, CertificateVerifier verify,
                                       std::optional<noise::PublicKey> responder_key) {
  noise::HandshakeConfig cfg;
  cfg.pattern = pattern_for(kind);
  cfg.initiator = true;
  cfg.prologue = prologue_for(kind);
  cfg.local_static = &self.key;
  cfg.remote_static = responder_key;
  // IK without a responder key is a programming error; create() reports missing_key, and
  // the state is then dead, so every write() fails cleanly.
  auto hs = noise::HandshakeState::create(std::move(cfg));
  if (!hs) {
    noise::HandshakeConfig dead;
    dead.pattern = pattern_for(Kind::kXX);
    dead.initiator = true;
    dead.local_static = &self.key;
    AuthHandshake h(noise::HandshakeState::create(std::move(dead)).value(), self,
                    std::move(verify));
    h.failed_ = true;
    return h;
  }
  AuthHandshake h(std::move(*hs), self, std::move(verify));
  h.pattern_ = &pattern_for(kind);
  return h;
}

AuthHandshake AuthHandshake::responder(Kind kind, const Identity& self,
                                       CertificateVerifier verify) {
  noise::HandshakeConfig cfg;
  cfg.pattern = pattern_for(kind);
  cfg.initiator = false;
  cfg.prologue = prologue_for(kind);
  cfg.local_static = &self.key;
  AuthHandshake h(noise::HandshakeState::create(std::move(cfg)).value(), self, std::move(verify));
  h.pattern_ = &pattern_for(kind);
  return h;
}

bool AuthHandshake::message_is_encrypted(std::size_t index) const {
  for (std::size_t i = 0; i <= index && i < pattern_->messages.size(); ++i) {
    for (auto t : pattern_->messages[i]) {
      if (is_dh(t)) return true;
    }
  }
  return false;
}

template <class T>
Expected<T, HandshakeFailure> AuthHandshake::fail(HandshakeFailureKind kind, std::string reason,
                                                  std::optional<CertError> cert) {
  failed_ = true;
  return p2p::fail(HandshakeFailure{kind, std::move(reason), std::move(cert)});
}

Expected<std::vector<std::uint8_t>, HandshakeFailure> AuthHandshake::write(
    std::uint64_t timestamp) {
  if (failed_)
    return fail<std::vector<std::uint8_t>>(HandshakeFailureKind::noise, "handshake failed earlier");
  std::vector<std::uint8_t> payload;
  if (!sent_certificate_ && message_is_encrypted(next_message_)) {
    const auto& cert = self_->encoded_certificate;
    payload.reserve(kPayloadHeader + cert.size());
    payload.push_back(kPayloadVersion);
    for (int i = 7; i >= 0; --i) payload.push_back(static_cast<std::uint8_t>(timestamp >> (8 * i)));
    payload.push_back(static_cast<std::uint8_t>(cert.size() >> 8));
    payload.push_back(static_cast<std::uint8_t>(cert.size()));
    payload.insert(payload.end(), cert.begin(), cert.end());
    sent_certificate_ = true;
  }
  auto msg = noise_.write_message(payload);
  if (!msg)
    return fail<std::vector<std::uint8_t>>(HandshakeFailureKind::noise,
                                           std::string(noise::to_string(msg.error())));
  ++next_message_;
  return std::move(msg).value();
}

Expected<void, HandshakeFailure> AuthHandshake::read(std::span<const std::uint8_t> message) {
  if (failed_) return fail<void>(HandshakeFailureKind::noise, "handshake failed earlier");
  auto payload = noise_.read_message(message);
  if (!payload)
    return fail<void>(HandshakeFailureKind::noise, std::string(noise::to_string(payload.error())));
  ++next_message_;
  if (payload->empty()) {
    // Only a message sent before encryption starts may come without a certificate, and the
    // handshake cannot complete without one.
    if (message_is_encrypted(next_message_ - 1) || noise_.is_complete())
      return fail<void>(HandshakeFailureKind::payload,
                        "encrypted handshake message without certificate");
    return {};
  }
  return consume_payload(*payload);
}

Expected<void, HandshakeFailure> AuthHandshake::consume_payload(std::span<const std::uint8_t> p) {
  if (peer_certificate_) return fail<void>(HandshakeFailureKind::payload, "second certificate");
  if (p.size() < kPayloadHeader || p[0] != kPayloadVersion)
    return fail<void>(HandshakeFailureKind::payload,
                      "unknown handshake payload version or short payload");
  std::uint64_t ts = 0;
  for (int i = 1; i <= 8; ++i) ts = ts << 8 | p[i];
  std::size_t len = std::size_t{p[9]} << 8 | p[10];
  if (len != p.size() - kPayloadHeader)
    return fail<void>(HandshakeFailureKind::payload, "certificate length does not match payload");
  auto cert = decode_certificate(p.subspan(kPayloadHeader));
  if (!cert)
    return fail<void>(HandshakeFailureKind::payload,
                      "malformed certificate: " + cert.error().message, cert.error());
  const auto& rs = noise_.remote_static();
  if (!rs || *rs != cert->public_key)
    return fail<void>(
        HandshakeFailureKind::key_mismatch,
        "certificate '" + cert->name + "' is for a different key than the handshake used");
  if (auto ok = verify_(*cert); !ok) {
    rejected_on_last_ = noise_.is_complete();
    peer_certificate_ = std::move(*cert);
    return fail<void>(
        HandshakeFailureKind::certificate,
        "certificate '" + peer_certificate_->name + "' refused: " + ok.error().message, ok.error());
  }
  peer_certificate_ = std::move(*cert);
  peer_timestamp_ = ts;
  return {};
}

std::optional<noise::TransportKeys> AuthHandshake::split_after_rejection() {
  if (!rejected_on_last_) return std::nullopt;
  rejected_on_last_ = false;
  auto keys = noise_.split();
  if (!keys) return std::nullopt;
  return std::move(keys).value();
}

}  // namespace p2p::crypto
