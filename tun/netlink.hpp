// A small rtnetlink client (libmnl) for the few things p2pvpn asks of the kernel: look up a
// link, set its MTU and bring it up, add IPv4/IPv6 addresses, and list the host's addresses.
//
// Contract: every request is sent with NLM_F_ACK and waits for the kernel's answer to that
// sequence number (bounded by a receive timeout), so a returned success means the change is
// in effect. Failures carry the errno and the kernel's extended-ACK text when it sends one.
// An Rtnetlink object owns one NETLINK_ROUTE socket; it is move-only and not thread-safe
// (use one per thread, they are cheap). Control path only: calls may allocate.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/expected.hpp"
#include "net/ip.hpp"
#include "tun/tun_error.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace p2p::tun {

// A network interface as RTM_GETLINK reports it.
struct LinkInfo {
  int index = 0;
  std::string name;
  unsigned flags = 0;  // IFF_* from <net/if.h>
  std::uint32_t mtu = 0;
  bool is_up() const;
  bool is_loopback() const;
};

// One address on an interface, as RTM_GETADDR reports it.
struct InterfaceAddress {
  std::string interface;
  int index = 0;
  IpAddress address;
  std::uint8_t prefix_length = 0;
  auto operator<=>(const InterfaceAddress&) const = default;
};

class Rtnetlink {
 public:
  static Expected<Rtnetlink, TunError> open();
  ~Rtnetlink();
  Rtnetlink(Rtnetlink&& o) noexcept;
  Rtnetlink& operator=(Rtnetlink&& o) noexcept;
  Rtnetlink(const Rtnetlink&) = delete;
  Rtnetlink& operator=(const Rtnetlink&) = delete;

  // kNoSuchInterface when no link has that name.
  Expected<LinkInfo, TunError> link(std::string_view name);
  Expected<int, TunError> interface_index(std::string_view name);
  Expected<std::vector<LinkInfo>, TunError> links();

  Expected<void, TunError> set_mtu(int index, std::uint32_t mtu);
  Expected<void, TunError> set_link_up(int index);
  // IPv6 addresses are added with IFA_F_NODAD: usable at once (a TUN has no neighbours).
  Expected<void, TunError> add_address(int index, const Ipv4Prefix& prefix);
  Expected<void, TunError> add_address(int index, const Ipv6Prefix& prefix);
  // Every address of every interface, unfiltered; `interface` is left empty.
  Expected<std::vector<InterfaceAddress>, TunError> addresses();
  // See list_local_addresses() below.
  Expected<std::vector<InterfaceAddress>, TunError> local_addresses(
      std::string_view skip_interface);

 private:
  explicit Rtnetlink(mnl_socket* nl);
  using MessageFn = void (*)(const nlmsghdr*, void*);
  // Sends the request in `nlh` (seq filled in here) and reads replies until its ACK or DONE;
  // each data message goes to on_message(msg, ctx). `what` prefixes error messages.
  Expected<void, TunError> transact(nlmsghdr* nlh, std::string_view what,
                                    MessageFn on_message = nullptr, void* ctx = nullptr);
  Expected<void, TunError> dump_addresses(MessageFn on_message, void* ctx);

  mnl_socket* nl_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
  std::vector<char> rx_;
};

// The host's addresses usable as local endpoint candidates: interfaces that are up and not
// loopback, minus `skip_interface` (the VPN's own TUN), minus loopback, link-local (v4
// 169.254/16 and v6 fe80::/10) and host-scope addresses, and minus IPv6 addresses that are
// still tentative or failed DAD. Sorted (interface name, then address). Opens its own socket.
Expected<std::vector<InterfaceAddress>, TunError> list_local_addresses(
    std::string_view skip_interface = {});

}  // namespace p2p::tun
