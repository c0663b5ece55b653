// Conversions between p2p::Endpoint and the kernel's socket addresses.
//
// A socket is IPv4 (AF_INET) or dual-stack IPv6 (AF_INET6). On an IPv6 socket IPv4 peers
// appear as v4-mapped addresses (::ffff:a.b.c.d); they are turned back into Ipv4 on receive and
// mapped again on send, so the cores only ever see plain IPv4 endpoints. No allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>

#include "net/ip.hpp"

namespace p2p::io {

// Writes `e` as an address of `family` into `out`; returns its length, or 0 when `e` cannot
// be reached from a socket of that family (an IPv6 address on an IPv4 socket).
socklen_t to_sockaddr(const Endpoint& e, int family, sockaddr_storage& out);

// The endpoint in `sa`; nullopt for a family other than AF_INET/AF_INET6 or a short length.
std::optional<Endpoint> from_sockaddr(const sockaddr_storage& sa, socklen_t length);

// True for 0.0.0.0 and ::.
bool is_unspecified(const IpAddress& a);

}  // namespace p2p::io
