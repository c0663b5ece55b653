#include "net/tcp_assist.hpp"

#include <algorithm>

namespace p2p::wire {
namespace {
constexpr std::array<std::uint8_t, 5> kMagic{'p', '2', 'p', 'A', 1};
}

AssistHello encode_assist_hello(const PunchToken& token) {
  AssistHello h{};
  std::copy(kMagic.begin(), kMagic.end(), h.begin());
  std::copy(token.begin(), token.end(), h.begin() + kMagic.size());
  return h;
}

std::optional<PunchToken> parse_assist_hello(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kAssistHelloSize || !std::equal(kMagic.begin(), kMagic.end(), bytes.begin()))
    return std::nullopt;
  PunchToken t{};
  std::copy(bytes.begin() + kMagic.size(), bytes.end(), t.begin());
  return t;
}

}  // namespace p2p::wire
