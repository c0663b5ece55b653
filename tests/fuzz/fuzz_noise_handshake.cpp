// Fuzz target: hostile handshake messages into HandshakeState::read_message().
// The first input byte picks the situation, the rest is the message:
//   0  IK responder, message 1          1  XX responder, message 1 (then it writes message 2)
//   2  XX responder, message 3 after a genuine exchange
//   3  IK initiator, message 2 after a genuine message 1
// All keys are fixed and ephemerals injected, so runs are deterministic and a seed made of a
// genuine message (see seed_message()) decrypts. Invariants checked besides "no crash": an
// error leaves the state dead, a success leaves it alive, and a completed pair agrees on h.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "crypto/noise.hpp"

namespace {

using namespace p2p::crypto::noise;

constexpr std::array<std::uint8_t, 32> kKeys[] = {
    {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},  // initiator static
    {201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216,
     217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232},  // responder
                                                                                       // static
    {77, 1, 77, 2,  77, 3,  77, 4,  77, 5,  77, 6,  77, 7,  77, 8,
     77, 9, 77, 10, 77, 11, 77, 12, 77, 13, 77, 14, 77, 15, 77, 16},  // initiator ephemeral
    {99, 1, 99, 2,  99, 3,  99, 4,  99, 5,  99, 6,  99, 7,  99, 8,
     99, 9, 99, 10, 99, 11, 99, 12, 99, 13, 99, 14, 99, 15, 99, 16},  // responder ephemeral
};

p2p::crypto::Wiped<32> secret(int i) {
  return p2p::crypto::Wiped<32>(kKeys[i]);
}

HandshakeState side(const char* pattern, bool initiator) {
  HandshakeConfig c;
  c.pattern = *find_pattern(pattern);
  c.initiator = initiator;
  c.prologue = {'f', 'u', 'z', 'z'};
  static const KeyPair statics[2] = {KeyPair::from_private(kKeys[0]),
                                     KeyPair::from_private(kKeys[1])};
  c.local_static = &statics[initiator ? 0 : 1];
  if (initiator) c.remote_static = statics[1].public_key;
  c.ephemeral_private = secret(initiator ? 2 : 3);
  return std::move(HandshakeState::create(std::move(c))).value();
}

// Runs a genuine exchange of `count` messages between the two sides.
void exchange(HandshakeState& init, HandshakeState& resp, std::size_t count) {
  const Bytes payload = {'o', 'k'};
  for (std::size_t i = 0; i < count; ++i) {
    HandshakeState& from = i % 2 == 0 ? init : resp;
    HandshakeState& to = i % 2 == 0 ? resp : init;
    auto m = from.write_message(payload);
    if (!m || !to.read_message(*m)) __builtin_trap();
  }
}

// The state that reads the fuzzed message in `mode`, and its peer.
struct Scene {
  HandshakeState peer;
  HandshakeState reader;
};

Scene scene(int mode) {
  const char* pattern = mode == 0 || mode == 3 ? "IK" : "XX";
  HandshakeState init = side(pattern, true);
  HandshakeState resp = side(pattern, false);
  if (mode == 2) exchange(init, resp, 2);
  if (mode == 3) {
    exchange(init, resp, 1);
    return Scene{std::move(resp), std::move(init)};
  }
  return Scene{std::move(init), std::move(resp)};
}

}  // namespace

// A genuine message for `mode` (used to build the seed corpus: prefix it with the mode byte).
std::optional<Bytes> seed_message(int mode) {
  Scene s = scene(mode);
  auto m = s.peer.write_message(Bytes{'s', 'e', 'e', 'd'});
  if (!m) return std::nullopt;
  return *m;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 4;
  Scene s = scene(mode);
  auto got = s.reader.read_message(std::span(data + 1, size - 1));
  if (got.has_value() == s.reader.failed()) __builtin_trap();
  if (!got) {
    // Dead means dead: nothing more is produced.
    if (s.reader.write_message({}) || s.reader.split()) __builtin_trap();
    return 0;
  }
  // Accepted: carry on as a real peer would (mode 1 makes the responder DH with a fuzzed e).
  if (!s.reader.is_complete()) {
    auto reply = s.reader.write_message({});
    if (reply && s.peer.read_message(*reply) && s.peer.is_complete() &&
        s.peer.handshake_hash() != s.reader.handshake_hash()) {
      __builtin_trap();
    }
  } else if (!s.reader.split()) {
    __builtin_trap();
  }
  return 0;
}
