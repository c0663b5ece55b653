// AddressMonitor: tells the daemon that the host's network may have changed, so it can re-run
// NAT discovery at once instead of waiting for its next poll of the interface addresses.
//
// Watches: one NETLINK_ROUTE socket (libmnl, non-blocking, close-on-exec) subscribed to the
// rtnetlink groups for links, IPv4/IPv6 addresses and IPv4/IPv6 routes.
//
// What counts, one event per kernel message:
//   - RTM_NEWADDR / RTM_DELADDR of an address of global (or site) scope; link-local and
//     host addresses (fe80::/10, 127/8) never reach a coordinator;
//   - RTM_NEWLINK for a link not seen before, or whose IFF_UP or IFF_RUNNING flag flipped
//     (the monitor remembers each link's flags: a carrier change carries no change mask),
//     and RTM_DELLINK;
//   - RTM_NEWROUTE / RTM_DELROUTE of a default route (prefix length 0) in the main table;
//   - a kernel overrun (ENOBUFS: notifications were dropped because we read too slowly) and
//     a datagram too large for the receive buffer: something may have changed, so each
//     counts as one event and neither is an error.
// Not counted: anything about the interface named at open() (the VPN's own TUN), including
// default routes whose every next hop leaves through it; other link changes (MTU, name,
// promiscuity); other routes; malformed or truncated messages, which are skipped.
// The count is a hint ("look again"), not a diff: the caller re-reads the addresses itself.
//
// Start: the monitor subscribes before it takes its snapshot of the links, so every change
// after open() returns is reported; a caller that reads its addresses after open() misses
// nothing.
//
// Memory: a fixed 8 KiB receive buffer, and one small entry per link (at most
// kMaxTrackedLinks; beyond that, every message about an unknown link counts).
//
// Threading: not thread-safe; one thread calls drain(). native_handle() may be watched for
// readability by poll() or a Boost.Asio descriptor (release() it, never let it close the fd).
// Move-only; a moved-from monitor has native_handle() == -1 and its drain() fails (EBADF).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/expected.hpp"
#include "tun/tun_error.hpp"

struct mnl_socket;
struct nlmsghdr;
struct nlattr;

namespace p2p::tun {

class AddressMonitor {
 public:
  static constexpr std::size_t kRxBufferSize = 8192;
  static constexpr std::size_t kMaxTrackedLinks = 4096;
  // drain() reads at most this many datagrams per call; the fd stays readable if more wait.
  static constexpr int kMaxDatagramsPerDrain = 256;

  // `ignore_interface` ("" for none) is matched by name; its index is learnt from the link
  // snapshot and link messages, so it may be created before or after open(). kBadName if it
  // is too long to be an interface name; kSystem (with errno) if the socket cannot be opened.
  static Expected<AddressMonitor, TunError> open(std::string_view ignore_interface = {});

  ~AddressMonitor();
  AddressMonitor(AddressMonitor&& o) noexcept;
  AddressMonitor& operator=(AddressMonitor&& o) noexcept;
  AddressMonitor(const AddressMonitor&) = delete;
  AddressMonitor& operator=(const AddressMonitor&) = delete;

  int native_handle() const;
  const std::string& ignored_interface() const { return ignore_; }

  // Reads every pending notification without blocking (up to kMaxDatagramsPerDrain
  // datagrams) and returns how many relevant change events they held; 0 when nothing
  // relevant happened. An error (a failed recvmsg other than EAGAIN/EINTR/ENOBUFS) means
  // the monitor cannot be trusted any more: treat it as a change and reopen.
  Expected<std::size_t, TunError> drain();

 private:
  struct Link {
    unsigned flags = 0;
    bool ignored = false;
  };

  AddressMonitor(mnl_socket* nl, std::string ignore);
  std::size_t count_datagram(std::size_t length);
  bool is_change(const nlmsghdr* nlh);
  bool link_changed(const nlmsghdr* nlh);
  bool address_changed(const nlmsghdr* nlh) const;
  bool default_route_changed(const nlmsghdr* nlh) const;
  bool all_next_hops_ignored(const nlattr* multipath) const;
  bool is_ignored_name(const char* name) const;
  bool is_ignored_index(int index) const;
  void remember(int index, unsigned flags, bool ignored);

  mnl_socket* nl_ = nullptr;
  std::string ignore_;
  std::unordered_map<int, Link> links_;
  std::vector<char> rx_;
};

}  // namespace p2p::tun
