// Noise_*_25519_ChaChaPoly_BLAKE2b: the cacophony vectors byte for byte (handshake,
// transport, handshake hash), every fundamental pattern end to end, and hostile input:
// tampering, truncation, wrong keys, low-order points, oversize messages, misuse.
#include "crypto/noise.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "crypto/transport.hpp"

namespace p2p::crypto::noise {
namespace {

Bytes from_hex(const std::string& hex) {
  Bytes out(hex.size() / 2);
  size_t len = 0;
  EXPECT_EQ(sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, nullptr),
            0);
  out.resize(len);
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

template <std::size_t N>
std::array<std::uint8_t, N> array_of(const Bytes& b) {
  EXPECT_EQ(b.size(), N);
  std::array<std::uint8_t, N> a{};
  std::copy_n(b.begin(), std::min(N, b.size()), a.begin());
  return a;
}

KeyPair key_from_hex(const std::string& hex) {
  return KeyPair::from_private(std::span<const std::uint8_t, 32>(array_of<32>(from_hex(hex))));
}

Wiped<32> secret_from_hex(const std::string& hex) {
  const auto a = array_of<32>(from_hex(hex));
  return Wiped<32>(std::span<const std::uint8_t, 32>(a));
}

// A handshake borrows its static key: the tests' keys live until the end of the process.
const KeyPair* keep(KeyPair k) {
  static std::deque<KeyPair> keys;
  return &keys.emplace_back(std::move(k));
}

HandshakeState make(HandshakeConfig config) {
  auto hs = HandshakeState::create(std::move(config));
  EXPECT_TRUE(hs) << to_string(hs.error());
  return std::move(hs).value();
}

// --- The cacophony vectors -------------------------------------------------------------------

// One side of a vector: "init" or "resp" fields.
HandshakeConfig vector_side(const nlohmann::json& v, const std::string& side,
                            const Pattern& pattern) {
  HandshakeConfig c{pattern, side == "init", from_hex(v.at(side + "_prologue")), {}, {}, {}};
  if (v.contains(side + "_static")) c.local_static = keep(key_from_hex(v.at(side + "_static")));
  if (v.contains(side + "_remote_static")) {
    c.remote_static = array_of<32>(from_hex(v.at(side + "_remote_static")));
  }
  c.ephemeral_private = secret_from_hex(v.at(side + "_ephemeral"));
  return c;
}

TEST(NoiseVectors, CacophonyHandshakeTransportAndHashByteForByte) {
  std::ifstream in(P2P_TESTDATA_DIR "/noise/cacophony-25519-chachapoly-blake2b.json");
  ASSERT_TRUE(in) << "missing test vector file";
  const auto doc = nlohmann::json::parse(in);
  std::set<std::string> ran;
  for (const auto& v : doc.at("vectors")) {
    const std::string protocol = v.at("protocol_name");
    const std::string name = protocol.substr(6, protocol.find('_', 6) - 6);
    if (name != "NN" && name != "XX" && name != "IK" && name != "IX") continue;
    ASSERT_EQ(protocol, "Noise_" + name + "_25519_ChaChaPoly_BLAKE2b");
    SCOPED_TRACE(protocol);
    const Pattern& pattern = *find_pattern(name);
    HandshakeState init = make(vector_side(v, "init", pattern));
    HandshakeState resp = make(vector_side(v, "resp", pattern));

    const auto& messages = v.at("messages");
    const std::size_t n_handshake = pattern.messages.size();
    ASSERT_GT(messages.size(), n_handshake);
    for (std::size_t i = 0; i < n_handshake; ++i) {
      SCOPED_TRACE("handshake message " + std::to_string(i));
      HandshakeState& sender = i % 2 == 0 ? init : resp;
      HandshakeState& receiver = i % 2 == 0 ? resp : init;
      const Bytes payload = from_hex(messages[i].at("payload"));
      auto wire = sender.write_message(payload);
      ASSERT_TRUE(wire) << to_string(wire.error());
      EXPECT_EQ(to_hex(*wire), messages[i].at("ciphertext").get<std::string>());
      auto got = receiver.read_message(*wire);
      ASSERT_TRUE(got) << to_string(got.error());
      EXPECT_EQ(*got, payload);
    }
    ASSERT_TRUE(init.is_complete());
    ASSERT_TRUE(resp.is_complete());
    EXPECT_EQ(to_hex(init.handshake_hash()), v.at("handshake_hash").get<std::string>());
    EXPECT_EQ(init.handshake_hash(), resp.handshake_hash());
    if (v.contains("resp_static")) {
      EXPECT_EQ(init.remote_static(), key_from_hex(v.at("resp_static")).public_key);
    }
    if (v.contains("init_static")) {
      EXPECT_EQ(resp.remote_static(), key_from_hex(v.at("init_static")).public_key);
    }

    // Transport: the first split key carries initiator->responder, directions alternate.
    const Time t0{};
    auto init_keys = init.split();
    auto resp_keys = resp.split();
    ASSERT_TRUE(init_keys && resp_keys);
    TransportSession init_session(std::move(init_keys).value(), t0, true);
    TransportSession resp_session(std::move(resp_keys).value(), t0, false);
    for (std::size_t i = n_handshake; i < messages.size(); ++i) {
      SCOPED_TRACE("transport message " + std::to_string(i));
      TransportSession& sender = i % 2 == 0 ? init_session : resp_session;
      TransportSession& receiver = i % 2 == 0 ? resp_session : init_session;
      const Bytes payload = from_hex(messages[i].at("payload"));
      Bytes buf = payload;
      buf.resize(payload.size() + kTagLen);
      auto counter = sender.encrypt(t0, buf, payload.size());
      ASSERT_TRUE(counter);
      EXPECT_EQ(to_hex(buf), messages[i].at("ciphertext").get<std::string>());
      auto len = receiver.decrypt(t0, *counter, buf);
      ASSERT_TRUE(len) << to_string(len.error());
      EXPECT_EQ(Bytes(buf.begin(), buf.begin() + *len), payload);
    }
    ran.insert(name);
  }
  EXPECT_EQ(ran, (std::set<std::string>{"NN", "XX", "IK", "IX"}));
}

// --- Every fundamental pattern, fresh random keys --------------------------------------------

struct Pair {
  HandshakeState init;
  HandshakeState resp;
};

// Both sides of `name` with random static keys wherever the pattern may use them.
Pair make_pair(const std::string& name, const Bytes& prologue = bytes_of("p2pvpn")) {
  const Pattern& p = *find_pattern(name);
  KeyPair is = KeyPair::generate(), rs = KeyPair::generate();
  const PublicKey is_pub = is.public_key, rs_pub = rs.public_key;
  return Pair{make({p, true, prologue, keep(std::move(is)), rs_pub, {}}),
              make({p, false, prologue, keep(std::move(rs)), is_pub, {}})};
}

// Runs the handshake to completion; returns false at the first error.
bool run_handshake(Pair& pair) {
  for (int i = 0; !pair.init.is_complete(); ++i) {
    HandshakeState& sender = i % 2 == 0 ? pair.init : pair.resp;
    HandshakeState& receiver = i % 2 == 0 ? pair.resp : pair.init;
    auto wire = sender.write_message(bytes_of("payload " + std::to_string(i)));
    if (!wire) return false;
    auto got = receiver.read_message(*wire);
    if (!got || *got != bytes_of("payload " + std::to_string(i))) return false;
  }
  return pair.resp.is_complete();
}

TEST(Noise, EveryFundamentalPatternCompletesAndAgrees) {
  for (const char* name :
       {"N", "K", "X", "NN", "NK", "NX", "XN", "XK", "XX", "KN", "KK", "KX", "IN", "IK", "IX"}) {
    SCOPED_TRACE(name);
    Pair pair = make_pair(name);
    ASSERT_TRUE(run_handshake(pair));
    EXPECT_EQ(pair.init.handshake_hash(), pair.resp.handshake_hash());
    auto a = pair.init.split();
    auto b = pair.resp.split();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(0, sodium_memcmp(a->send.data(), b->recv.data(), 32));
    EXPECT_EQ(0, sodium_memcmp(a->recv.data(), b->send.data(), 32));
    EXPECT_NE(0, sodium_memcmp(a->send.data(), a->recv.data(), 32));
  }
  EXPECT_EQ(find_pattern("IKpsk2"), nullptr);
}

TEST(Noise, DifferentProloguesDoNotAgree) {
  const Pattern& p = *find_pattern("NN");
  HandshakeState init = make({p, true, bytes_of("one"), {}, {}, {}});
  HandshakeState resp = make({p, false, bytes_of("two"), {}, {}, {}});
  auto m1 = init.write_message({});
  ASSERT_TRUE(m1 && resp.read_message(*m1));
  auto m2 = resp.write_message({});
  ASSERT_TRUE(m2);
  auto r = init.read_message(*m2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::decrypt_failed);
}

// --- Hostile input ---------------------------------------------------------------------------

// Drives a fresh `name` handshake up to message `index`, hands that message to `mutate`, and
// returns what the receiver says about the mutated message.
template <class Mutate>
Expected<Bytes, Error> deliver_mutated(const std::string& name, std::size_t index, Mutate mutate,
                                       Pair& pair) {
  for (std::size_t i = 0;; ++i) {
    HandshakeState& sender = i % 2 == 0 ? pair.init : pair.resp;
    HandshakeState& receiver = i % 2 == 0 ? pair.resp : pair.init;
    auto wire = sender.write_message(bytes_of("hello"));
    EXPECT_TRUE(wire) << name;
    if (i == index) {
      mutate(*wire);
      return receiver.read_message(*wire);
    }
    EXPECT_TRUE(receiver.read_message(*wire));
  }
}

TEST(Noise, EveryFlippedBitOfAnEncryptedMessageIsRejected) {
  for (const std::string name : {"IK", "XX", "IX"}) {
    const std::size_t count = find_pattern(name)->messages.size();
    for (std::size_t index = 0; index < count; ++index) {
      for (std::size_t pos = 0;; ++pos) {
        Pair pair = make_pair(name);
        bool in_range = true;
        auto r = deliver_mutated(
            name, index,
            [&](Bytes& m) {
              in_range = pos < m.size();
              if (in_range) m[pos] ^= 0x01;
            },
            pair);
        if (!in_range) break;
        // Messages carrying no key yet (XX/IX message 1) are only caught by the next one.
        if (r && index == 0 && name != "IK") {
          auto reply = pair.resp.write_message({});
          ASSERT_TRUE(reply);
          r = pair.init.read_message(*reply);
        }
        ASSERT_FALSE(r) << name << " message " << index << " byte " << pos;
        EXPECT_TRUE(r.error() == Error::decrypt_failed || r.error() == Error::invalid_dh)
            << to_string(r.error());
      }
    }
  }
}

TEST(Noise, TruncatedMessagesFailCleanly) {
  for (const std::string name : {"IK", "XX", "NN"}) {
    const std::size_t count = find_pattern(name)->messages.size();
    for (std::size_t index = 0; index < count; ++index) {
      for (std::size_t keep = 0;; ++keep) {
        Pair pair = make_pair(name);
        bool shorter = true;
        auto r = deliver_mutated(
            name, index,
            [&](Bytes& m) {
              shorter = keep < m.size();
              m.resize(std::min(keep, m.size()));
            },
            pair);
        if (!shorter) break;
        HandshakeState& receiver = index % 2 == 0 ? pair.resp : pair.init;
        if (r) {
          // Only an unencrypted payload (NN/XX message 1) can lose bytes without a MAC noticing.
          EXPECT_EQ(index, 0u);
          EXPECT_GE(keep, 32u);
          continue;
        }
        EXPECT_TRUE(r.error() == Error::bad_length || r.error() == Error::decrypt_failed);
        if (keep < 32) {
          EXPECT_EQ(r.error(), Error::bad_length);
        }
        EXPECT_TRUE(receiver.failed());
      }
    }
  }
}

TEST(Noise, IkWithWrongResponderStaticKeyFails) {
  const Pattern& p = *find_pattern("IK");
  KeyPair resp_key = KeyPair::generate();
  const PublicKey wrong = KeyPair::generate().public_key;
  HandshakeState init = make({p, true, {}, keep(KeyPair::generate()), wrong, {}});
  HandshakeState resp = make({p, false, {}, keep(std::move(resp_key)), {}, {}});
  auto m1 = init.write_message(bytes_of("cert"));
  ASSERT_TRUE(m1);
  auto r = resp.read_message(*m1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::decrypt_failed);
  EXPECT_FALSE(resp.remote_static().has_value());
}

TEST(Noise, DeadStateRefusesEverything) {
  Pair pair = make_pair("IK");
  auto m1 = pair.init.write_message({});
  ASSERT_TRUE(m1);
  (*m1)[40] ^= 0x80;
  ASSERT_FALSE(pair.resp.read_message(*m1));
  EXPECT_TRUE(pair.resp.failed());
  (*m1)[40] ^= 0x80;  // even the genuine message is refused now
  auto again = pair.resp.read_message(*m1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Error::failed);
  auto w = pair.resp.write_message({});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), Error::failed);
  auto s = pair.resp.split();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Error::failed);
}

TEST(Noise, LowOrderAndZeroEphemeralKeysAreRejected) {
  // The all-zero point and a point of order 8: X25519 with either gives the all-zero output.
  for (const std::string& bad :
       {std::string(64, '0'),
        std::string("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")}) {
    // IK: the responder's first DH (es) uses the initiator's ephemeral.
    Pair ik = make_pair("IK");
    auto m1 = ik.init.write_message({});
    ASSERT_TRUE(m1);
    const Bytes point = from_hex(bad);
    std::copy(point.begin(), point.end(), m1->begin());
    auto r = ik.resp.read_message(*m1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Error::invalid_dh);

    // XX: message 1 carries no DH, so the responder notices when writing message 2 (ee).
    Pair xx = make_pair("XX");
    Bytes x1 = point;
    ASSERT_TRUE(xx.resp.read_message(x1));
    auto w = xx.resp.write_message({});
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), Error::invalid_dh);
    EXPECT_TRUE(xx.resp.failed());
  }
}

TEST(Noise, MessageSizeLimits) {
  const Pattern& nn = *find_pattern("NN");
  // 32 bytes of e + 65503 bytes of plain payload is exactly the limit.
  HandshakeState a = make({nn, true, {}, {}, {}, {}});
  auto max = a.write_message(Bytes(kMaxMessageLen - 32, 0xab));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->size(), kMaxMessageLen);
  HandshakeState b = make({nn, false, {}, {}, {}, {}});
  ASSERT_TRUE(b.read_message(*max));

  HandshakeState c = make({nn, true, {}, {}, {}, {}});
  auto over = c.write_message(Bytes(kMaxMessageLen - 31, 0));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error(), Error::message_too_large);
  HandshakeState d = make({nn, false, {}, {}, {}, {}});
  auto big = d.read_message(Bytes(kMaxMessageLen + 1, 0));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error(), Error::message_too_large);
}

TEST(Noise, TurnsAndSplitAreEnforced) {
  Pair pair = make_pair("XX");
  EXPECT_TRUE(pair.init.my_turn());
  EXPECT_FALSE(pair.resp.my_turn());
  auto w = pair.resp.write_message({});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), Error::wrong_turn);
  auto r = pair.init.read_message(Bytes(48, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::wrong_turn);

  Pair early = make_pair("XX");
  ASSERT_TRUE(early.init.write_message({}));
  auto s = early.init.split();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Error::not_complete);

  Pair done = make_pair("NN");
  ASSERT_TRUE(run_handshake(done));
  auto extra = done.init.write_message({});
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error(), Error::wrong_turn);
  Pair twice = make_pair("NN");
  ASSERT_TRUE(run_handshake(twice));
  ASSERT_TRUE(twice.resp.split());
  auto second = twice.resp.split();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), Error::failed);
}

TEST(Noise, CreateRefusesMissingKeys) {
  auto ik =
      HandshakeState::create({*find_pattern("IK"), true, {}, keep(KeyPair::generate()), {}, {}});
  ASSERT_FALSE(ik);
  EXPECT_EQ(ik.error(), Error::missing_key);
  auto xx = HandshakeState::create({*find_pattern("XX"), false, {}, {}, {}, {}});
  ASSERT_FALSE(xx);
  EXPECT_EQ(xx.error(), Error::missing_key);
  auto empty = HandshakeState::create({Pattern{"Z", {}, {}, {}}, true, {}, {}, {}, {}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), Error::bad_length);
  // An NN initiator needs no keys at all.
  EXPECT_TRUE(HandshakeState::create({*find_pattern("NN"), true, {}, {}, {}, {}}));
}

TEST(Noise, CipherStateRefusesTheLastNonceAndBadLengths) {
  CipherState cs;
  Bytes out;
  ASSERT_TRUE(cs.encrypt_with_ad({}, bytes_of("abc"), out));
  EXPECT_EQ(out, bytes_of("abc"));  // no key: identity
  std::array<std::uint8_t, 32> key{};
  key[0] = 7;
  cs.initialize_key(key);
  cs.set_nonce(UINT64_MAX - 1);
  out.clear();
  ASSERT_TRUE(cs.encrypt_with_ad({}, bytes_of("abc"), out));
  EXPECT_EQ(out.size(), 3 + kTagLen);
  auto r = cs.encrypt_with_ad({}, bytes_of("abc"), out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::nonce_exhausted);
  EXPECT_EQ(out.size(), 3 + kTagLen);

  CipherState rx;
  rx.initialize_key(key);
  rx.set_nonce(UINT64_MAX - 1);
  Bytes plain;
  auto short_ct = rx.decrypt_with_ad({}, Bytes(15, 0), plain);
  ASSERT_FALSE(short_ct);
  EXPECT_EQ(short_ct.error(), Error::bad_length);
  ASSERT_TRUE(rx.decrypt_with_ad({}, out, plain));
  EXPECT_EQ(plain, bytes_of("abc"));
}

TEST(Noise, ErrorNamesAreDistinct) {
  std::set<std::string_view> names;
  for (Error e : {Error::decrypt_failed, Error::bad_length, Error::wrong_turn, Error::invalid_dh,
                  Error::message_too_large, Error::missing_key, Error::nonce_exhausted,
                  Error::not_complete, Error::failed}) {
    names.insert(to_string(e));
  }
  EXPECT_EQ(names.size(), 9u);
  EXPECT_EQ(to_string(Error::invalid_dh), "invalid_dh");
}

}  // namespace
}  // namespace p2p::crypto::noise
