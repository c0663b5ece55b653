// Fuzz target for the STUN codec, server and discovery machine.
// - parse() never crashes; when it succeeds, is_stun() agrees, and encode() -> parse() gives the
//   same message back (minus unknown attributes, which encode() does not carry) and encoding
//   that again gives the same bytes.
// - The server, with and without an alternate address, on every socket, answers only with
//   well-formed messages carrying the request's transaction id.
// - A started Discovery (transaction ids all zero, so inputs can match) swallows anything.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "daemon/nat/nat_discovery.hpp"
#include "net/stun.hpp"

using namespace p2p;
using namespace p2p::wire::stun;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

const Server& server(bool alternate) {
  static const Server with = [] {
    ServerConfig c;
    c.primary = *Endpoint::parse("198.51.100.1:3478");
    c.alternate_address = *parse_ip("198.51.100.2");
    c.alternate_port = 3479;
    return Server::create(c).value();
  }();
  static const Server without = [] {
    ServerConfig c;
    c.primary = *Endpoint::parse("198.51.100.1:3478");
    return Server::create(c).value();
  }();
  return alternate ? with : without;
}

struct NullEffects : nat::Effects {
  void send(const Endpoint&, std::span<const std::uint8_t>) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  const bool looks_like_stun = is_stun(in);
  auto m = parse(in);
  if (m) {
    check(looks_like_stun);
    Message expected = *m;
    expected.unknown_required.clear();
    const auto bytes = encode(expected);
    auto again = parse(bytes);
    check(again.has_value());
    check(*again == expected);
    check(encode(*again) == bytes);
  }

  const Endpoint source = *Endpoint::parse("203.0.113.9:40000");
  for (bool alternate : {false, true}) {
    for (unsigned s = 0; s < 4; ++s) {
      auto reply = server(alternate).on_request(static_cast<ServerSocket>(s), source, in);
      if (!reply) continue;
      check(m.has_value() && m->cls == MessageClass::kRequest);
      auto answer = parse(reply->bytes);
      check(answer.has_value() && answer->fingerprint);
      check(answer->transaction_id == m->transaction_id);
      check(answer->cls == MessageClass::kSuccess || answer->cls == MessageClass::kError);
    }
  }

  NullEffects effects;
  nat::DiscoveryConfig config;
  config.server = *Endpoint::parse("198.51.100.1:3478");
  nat::Discovery d(config, effects, [](std::span<std::uint8_t> out) {
    for (auto& b : out) b = 0;
  });
  const Time t0{};
  d.start(t0);
  d.on_response(t0, config.server, in);
  d.on_tick(t0 + std::chrono::seconds(10));
  return 0;
}
