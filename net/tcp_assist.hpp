// The coordinator's TCP assist port: the one thing a node ever sends there is a fixed-size
// hello from the local port it punches from, so that the coordinator observes that port's
// public TCP endpoint (its NAT's mapping) and ties it, by the token, to an authenticated
// TcpPunchRequest or TcpPunchOffer (net/control.hpp). The coordinator never answers on the
// assist port: a reply could never be larger than an unauthenticated request if there is none.
//
//   AssistHello = "p2pA" (4 bytes) | version u8 (1) | token (16 bytes)     21 bytes, no more
//
// The token is 128 random bits, sent before only inside an encrypted control session: a
// stranger who connects to the assist port cannot name anyone's punch.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "net/control.hpp"

namespace p2p::wire {

inline constexpr std::size_t kAssistHelloSize = 21;
using AssistHello = std::array<std::uint8_t, kAssistHelloSize>;

AssistHello encode_assist_hello(const PunchToken& token);
// The token, or nullopt for anything but exactly one well-formed hello.
std::optional<PunchToken> parse_assist_hello(std::span<const std::uint8_t> bytes);

}  // namespace p2p::wire
