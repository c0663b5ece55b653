// Plain IP value types shared by certificates, config, wire formats and the cores.
// No Asio here: these headers are compiled by the clang fuzz build too.
//
// Ipv4 is kept in host byte order (a == 10.0.0.1 -> 0x0a000001); Ipv6 as its 16 bytes.
// Endpoint is an address (v4 or v6) and a UDP/TCP port. Parsers accept only literals and
// return std::nullopt on anything else; they never throw.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace p2p {

struct Ipv4 {
  std::uint32_t value = 0;
  auto operator<=>(const Ipv4&) const = default;
  static std::optional<Ipv4> parse(std::string_view s);
  std::string to_string() const;
};

struct Ipv6 {
  std::array<std::uint8_t, 16> bytes{};
  auto operator<=>(const Ipv6&) const = default;
  static std::optional<Ipv6> parse(std::string_view s);
  std::string to_string() const;
};

// An address with its prefix length, as on an interface: 10.77.0.2/24.
struct Ipv4Prefix {
  Ipv4 address;
  std::uint8_t length = 32;  // 0..32
  auto operator<=>(const Ipv4Prefix&) const = default;
  static std::optional<Ipv4Prefix> parse(std::string_view s);  // "a.b.c.d/len"
  std::string to_string() const;
  Ipv4 network() const;
  bool contains(Ipv4 a) const;
};

struct Ipv6Prefix {
  Ipv6 address;
  std::uint8_t length = 128;  // 0..128
  auto operator<=>(const Ipv6Prefix&) const = default;
  static std::optional<Ipv6Prefix> parse(std::string_view s);
  std::string to_string() const;
  bool contains(const Ipv6& a) const;
};

using IpAddress = std::variant<Ipv4, Ipv6>;

std::optional<IpAddress> parse_ip(std::string_view s);
std::string to_string(const IpAddress& a);

// A transport endpoint. Text form: "1.2.3.4:7400" or "[2001:db8::1]:7400".
struct Endpoint {
  IpAddress address = Ipv4{};
  std::uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
  bool is_v4() const { return std::holds_alternative<Ipv4>(address); }
  static std::optional<Endpoint> parse(std::string_view s);
  std::string to_string() const;
};

// True for RFC 1918, loopback, link-local, CGNAT (100.64/10) and ULA/link-local v6.
bool is_private(const IpAddress& a);

}  // namespace p2p
