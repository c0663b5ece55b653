#include "net/asio/socket_address.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "net/asio/io_error.hpp"

namespace p2p::io {

IoError system_error(const std::string& what, int err) {
  return IoError{err, what + ": " + std::strerror(err)};
}

socklen_t to_sockaddr(const Endpoint& e, int family, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(sockaddr_in6));
  if (family == AF_INET) {
    const auto* v4 = std::get_if<Ipv4>(&e.address);
    if (!v4) return 0;
    auto& sin = reinterpret_cast<sockaddr_in&>(out);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(e.port);
    sin.sin_addr.s_addr = htonl(v4->value);
    return sizeof(sockaddr_in);
  }
  auto& sin6 = reinterpret_cast<sockaddr_in6&>(out);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(e.port);
  if (const auto* v4 = std::get_if<Ipv4>(&e.address)) {
    sin6.sin6_addr.s6_addr[10] = 0xff;
    sin6.sin6_addr.s6_addr[11] = 0xff;
    std::uint32_t be = htonl(v4->value);
    std::memcpy(&sin6.sin6_addr.s6_addr[12], &be, 4);
  } else {
    std::memcpy(sin6.sin6_addr.s6_addr, std::get<Ipv6>(e.address).bytes.data(), 16);
  }
  return sizeof(sockaddr_in6);
}

std::optional<Endpoint> from_sockaddr(const sockaddr_storage& sa, socklen_t length) {
  if (sa.ss_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(sa);
    return Endpoint{Ipv4{ntohl(sin.sin_addr.s_addr)}, ntohs(sin.sin_port)};
  }
  if (sa.ss_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(sa);
    const std::uint8_t* b = sin6.sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
      std::uint32_t be;
      std::memcpy(&be, b + 12, 4);
      return Endpoint{Ipv4{ntohl(be)}, ntohs(sin6.sin6_port)};
    }
    Ipv6 v6;
    std::memcpy(v6.bytes.data(), b, 16);
    return Endpoint{v6, ntohs(sin6.sin6_port)};
  }
  return std::nullopt;
}

bool is_unspecified(const IpAddress& a) {
  if (const auto* v4 = std::get_if<Ipv4>(&a)) return v4->value == 0;
  return std::get<Ipv6>(a) == Ipv6{};
}

}  // namespace p2p::io
