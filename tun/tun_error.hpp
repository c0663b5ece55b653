// TunError: what went wrong opening, configuring or using a TUN device, or talking rtnetlink.
//
// `code` is for the caller to branch on; `message` is a complete sentence-like text for the
// operator (it names the interface and the operation, says what to do when there is a known
// remedy, and carries the kernel's extended-ACK text when there is one); `sys_errno` is the
// underlying errno, 0 when the error was found before any system call.
#pragma once

#include <string>

namespace p2p::tun {

enum class TunErrc {
  kNotPermitted,     // no root / CAP_NET_ADMIN
  kNoDriver,         // /dev/net/tun missing or the tun module not loaded
  kNameInUse,        // an interface with that name already exists
  kBadName,          // not a valid Linux interface name
  kBadArgument,      // MTU, prefix length or similar out of range
  kNoSuchInterface,  // netlink: no interface with that name or index
  kWouldBlock,       // non-blocking write could not proceed now (retry when writable)
  kRejectedPacket,   // the kernel refused a packet written to the TUN (not IPv4/IPv6, ...)
  kSystem,           // any other system or netlink failure; see message
};

struct TunError {
  TunErrc code = TunErrc::kSystem;
  int sys_errno = 0;
  std::string message;
};

}  // namespace p2p::tun
