#include "net/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace p2p {
namespace {

bool parse_u(std::string_view s, unsigned max, unsigned& out) {
  if (s.empty() || s.size() > 5) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

}  // namespace

std::optional<Ipv4> Ipv4::parse(std::string_view s) {
  if (s.size() > 15) return std::nullopt;
  char buf[16] = {};
  std::memcpy(buf, s.data(), s.size());
  in_addr a{};
  if (inet_pton(AF_INET, buf, &a) != 1) return std::nullopt;
  return Ipv4{ntohl(a.s_addr)};
}

std::string Ipv4::to_string() const {
  in_addr a{htonl(value)};
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::optional<Ipv6> Ipv6::parse(std::string_view s) {
  if (s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, s.data(), s.size());
  Ipv6 out;
  if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return std::nullopt;
  return out;
}

std::string Ipv6::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Ipv4Prefix> Ipv4Prefix::parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = Ipv4::parse(s.substr(0, slash));
  unsigned len = 0;
  if (!addr || !parse_u(s.substr(slash + 1), 32, len)) return std::nullopt;
  return Ipv4Prefix{*addr, static_cast<std::uint8_t>(len)};
}

std::string Ipv4Prefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

Ipv4 Ipv4Prefix::network() const {
  std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
  return Ipv4{address.value & mask};
}

bool Ipv4Prefix::contains(Ipv4 a) const {
  std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
  return (a.value & mask) == (address.value & mask);
}

std::optional<Ipv6Prefix> Ipv6Prefix::parse(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = Ipv6::parse(s.substr(0, slash));
  unsigned len = 0;
  if (!addr || !parse_u(s.substr(slash + 1), 128, len)) return std::nullopt;
  return Ipv6Prefix{*addr, static_cast<std::uint8_t>(len)};
}

std::string Ipv6Prefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

bool Ipv6Prefix::contains(const Ipv6& a) const {
  unsigned full = length / 8, rest = length % 8;
  if (std::memcmp(a.bytes.data(), address.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (address.bytes[full] & mask);
}

std::optional<IpAddress> parse_ip(std::string_view s) {
  if (auto v4 = Ipv4::parse(s)) return IpAddress{*v4};
  if (auto v6 = Ipv6::parse(s)) return IpAddress{*v6};
  return std::nullopt;
}

std::string to_string(const IpAddress& a) {
  return std::visit([](const auto& x) { return x.to_string(); }, a);
}

std::optional<Endpoint> Endpoint::parse(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    auto v6 = Ipv6::parse(host);
    unsigned p = 0;
    if (!v6 || !parse_u(port, 65535, p)) return std::nullopt;
    return Endpoint{*v6, static_cast<std::uint16_t>(p)};
  }
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto v4 = Ipv4::parse(s.substr(0, colon));
  unsigned p = 0;
  if (!v4 || !parse_u(s.substr(colon + 1), 65535, p)) return std::nullopt;
  return Endpoint{*v4, static_cast<std::uint16_t>(p)};
}

std::string Endpoint::to_string() const {
  if (auto* v4 = std::get_if<Ipv4>(&address)) return v4->to_string() + ":" + std::to_string(port);
  return "[" + std::get<Ipv6>(address).to_string() + "]:" + std::to_string(port);
}

bool is_private(const IpAddress& a) {
  if (auto* v4 = std::get_if<Ipv4>(&a)) {
    auto in = [&](const char* p) { return Ipv4Prefix::parse(p)->contains(*v4); };
    return in("10.0.0.0/8") || in("172.16.0.0/12") || in("192.168.0.0/16") ||
           in("127.0.0.0/8") || in("169.254.0.0/16") || in("100.64.0.0/10");
  }
  const auto& b = std::get<Ipv6>(a).bytes;
  bool loopback = b == Ipv6::parse("::1")->bytes;
  return loopback || (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

}  // namespace p2p
