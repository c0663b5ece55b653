// Fuzz target: every parser of an incoming datagram that does not need a key - the outer
// packet headers and the control messages (which are only decoded after authentication, but
// are parsed as hostile all the same), and the hello of the coordinator's TCP assist port.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/control.hpp"
#include "net/packet.hpp"
#include "net/tcp_assist.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> d(data, size);
  (void)p2p::wire::classify(d);
  (void)p2p::wire::parse_handshake_init(d);
  (void)p2p::wire::parse_handshake_resp(d);
  (void)p2p::wire::parse_handshake_final(d);
  (void)p2p::wire::parse_data(d);
  (void)p2p::wire::parse_cookie_reply(d);
  if (auto f = p2p::wire::parse_relay(d)) {
    // The inner datagram is what follows the header, all of it.
    if (f->inner.data() != data + p2p::wire::kRelayHeaderSize ||
        f->inner.size() + p2p::wire::kRelayHeaderSize != size)
      __builtin_trap();
  }
  if (auto token = p2p::wire::parse_assist_hello(d)) {
    auto again = p2p::wire::encode_assist_hello(*token);
    if (!std::equal(again.begin(), again.end(), data)) __builtin_trap();
  }
  if (auto m = p2p::wire::decode_control(d)) {
    std::vector<std::uint8_t> again;
    p2p::wire::encode_control(again, *m);
    // The encoding is canonical: what decodes re-encodes to the same bytes.
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) __builtin_trap();
  }
  return 0;
}
