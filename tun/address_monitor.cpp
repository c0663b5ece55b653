#include "tun/address_monitor.hpp"

#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "tun/netlink.hpp"

namespace p2p::tun {
namespace {

constexpr unsigned kGroups =
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
constexpr unsigned kWatchedFlags = IFF_UP | IFF_RUNNING;

TunError os_error(std::string_view what, int err) {
  TunErrc code = (err == EPERM || err == EACCES) ? TunErrc::kNotPermitted : TunErrc::kSystem;
  return TunError{code, err, fmt::format("{}: {}", what, std::generic_category().message(err))};
}

// The first attribute of `type` after the fixed header of `header_size` bytes; nullptr when
// absent, when the attribute list is malformed before it, or when it fails `validate`.
const nlattr* find_attr(const nlmsghdr* nlh, std::size_t header_size, std::uint16_t type,
                        mnl_attr_data_type validate) {
  if (mnl_nlmsg_get_payload_len(nlh) < header_size) return nullptr;
  const auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, header_size));
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  // mnl_attr_ok checks the attribute's own length against what is left of the message.
  while (mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)))) {
    if (mnl_attr_get_type(attr) == type) {
      return mnl_attr_validate(attr, validate) >= 0 ? attr : nullptr;
    }
    attr = mnl_attr_next(attr);
  }
  return nullptr;
}

const char* find_string(const nlmsghdr* nlh, std::size_t header_size, std::uint16_t type) {
  const nlattr* a = find_attr(nlh, header_size, type, MNL_TYPE_NUL_STRING);
  return a ? mnl_attr_get_str(a) : nullptr;
}

// The fixed header that starts the payload, or nullptr when the message is too short for it.
template <class Header>
const Header* fixed_header(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(Header)) return nullptr;
  return static_cast<const Header*>(mnl_nlmsg_get_payload(nlh));
}

// Control messages (errors, DONE, overrun) never come on a multicast socket; should one
// appear, it is skipped rather than allowed to stop the walk through the datagram.
int skip_control(const nlmsghdr*, void*) {
  return MNL_CB_OK;
}

}  // namespace

AddressMonitor::AddressMonitor(mnl_socket* nl, std::string ignore)
    : nl_(nl), ignore_(std::move(ignore)), rx_(kRxBufferSize) {}

AddressMonitor::~AddressMonitor() {
  if (nl_) mnl_socket_close(nl_);
}

AddressMonitor::AddressMonitor(AddressMonitor&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)),
      ignore_(std::move(o.ignore_)),
      links_(std::move(o.links_)),
      rx_(std::move(o.rx_)) {}

AddressMonitor& AddressMonitor::operator=(AddressMonitor&& o) noexcept {
  if (this != &o) {
    if (nl_) mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
    ignore_ = std::move(o.ignore_);
    links_ = std::move(o.links_);
    rx_ = std::move(o.rx_);
  }
  return *this;
}

Expected<AddressMonitor, TunError> AddressMonitor::open(std::string_view ignore_interface) {
  if (ignore_interface.size() >= IFNAMSIZ) {
    return fail(TunError{TunErrc::kBadName, 0,
                         fmt::format("network change monitor: '{}' is too long for an "
                                     "interface name",
                                     ignore_interface)});
  }
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!nl) return fail(os_error("opening the network change monitor", errno));
  AddressMonitor monitor(nl, std::string(ignore_interface));
  if (mnl_socket_bind(nl, kGroups, MNL_SOCKET_AUTOPID) < 0) {
    return fail(os_error("subscribing to network change notifications", errno));
  }
  // Subscribed first, snapshot second: a change racing with open() is either already in the
  // snapshot or queued on our socket, never lost.
  auto nlr = Rtnetlink::open();
  if (!nlr) return fail(nlr.error());
  auto links = nlr->links();
  if (!links) return fail(links.error());
  for (const LinkInfo& l : *links)
    monitor.remember(l.index, l.flags, monitor.is_ignored_name(l.name.c_str()));
  return monitor;
}

int AddressMonitor::native_handle() const {
  return nl_ ? mnl_socket_get_fd(nl_) : -1;
}

Expected<std::size_t, TunError> AddressMonitor::drain() {
  if (!nl_) {
    return fail(TunError{TunErrc::kSystem, EBADF, "network change monitor: not open (moved from)"});
  }
  std::size_t events = 0;
  for (int i = 0; i < kMaxDatagramsPerDrain; ++i) {
    ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
    if (n >= 0) {
      events += count_datagram(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    // ENOBUFS: the kernel dropped notifications. ENOSPC: libmnl's word for a datagram cut to
    // the buffer (MSG_TRUNC). Both lose events we cannot see, so both count as a change.
    if (errno == ENOBUFS || errno == ENOSPC) {
      ++events;
      continue;
    }
    return fail(os_error("reading network change notifications", errno));
  }
  return events;
}

std::size_t AddressMonitor::count_datagram(std::size_t length) {
  struct Walk {
    AddressMonitor* self;
    std::size_t events;
  } walk{this, 0};
  mnl_cb_t on_message = [](const nlmsghdr* nlh, void* data) {
    auto* w = static_cast<Walk*>(data);
    if (w->self->is_change(nlh)) ++w->events;
    return MNL_CB_OK;
  };
  std::array<mnl_cb_t, NLMSG_MIN_TYPE> control;
  control.fill(skip_control);
  // seq and portid 0: notifications carry whichever the requester used; check neither.
  // mnl_cb_run2 stops at the first message whose length does not fit the datagram.
  mnl_cb_run2(rx_.data(), length, 0, 0, on_message, &walk, control.data(), control.size());
  return walk.events;
}

bool AddressMonitor::is_change(const nlmsghdr* nlh) {
  switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return link_changed(nlh);
    case RTM_NEWADDR:
    case RTM_DELADDR:
      return address_changed(nlh);
    case RTM_NEWROUTE:
    case RTM_DELROUTE:
      return default_route_changed(nlh);
    default:
      return false;
  }
}

bool AddressMonitor::link_changed(const nlmsghdr* nlh) {
  const auto* ifi = fixed_header<ifinfomsg>(nlh);
  // Other families are per-protocol details of a known link (IPv6 router advertisements,
  // bridge ports); the AF_UNSPEC message is the link itself.
  if (!ifi || ifi->ifi_family != AF_UNSPEC) return false;
  const char* name = find_string(nlh, sizeof(ifinfomsg), IFLA_IFNAME);
  auto known = links_.find(ifi->ifi_index);
  if (nlh->nlmsg_type == RTM_DELLINK) {
    bool ignored = known != links_.end() ? known->second.ignored : is_ignored_name(name);
    if (known != links_.end()) links_.erase(known);
    return !ignored;
  }
  if (known == links_.end()) {
    bool ignored = is_ignored_name(name);
    remember(ifi->ifi_index, ifi->ifi_flags, ignored);
    return !ignored;
  }
  Link& link = known->second;
  if (name) link.ignored = is_ignored_name(name);  // renamed to or from the ignored name
  bool flipped = ((link.flags ^ ifi->ifi_flags) & kWatchedFlags) != 0;
  link.flags = ifi->ifi_flags;
  return flipped && !link.ignored;
}

bool AddressMonitor::address_changed(const nlmsghdr* nlh) const {
  const auto* ifa = fixed_header<ifaddrmsg>(nlh);
  // Link- and host-scope addresses (fe80::/10 after DAD on every link that comes up, 127/8)
  // never carry traffic to a coordinator.
  if (!ifa || ifa->ifa_scope >= RT_SCOPE_LINK) return false;
  return !is_ignored_index(static_cast<int>(ifa->ifa_index));
}

bool AddressMonitor::default_route_changed(const nlmsghdr* nlh) const {
  const auto* rtm = fixed_header<rtmsg>(nlh);
  if (!rtm || rtm->rtm_dst_len != 0) return false;
  // Table ids above 255 travel only in RTA_TABLE (rtm_table is then RT_TABLE_COMPAT).
  std::uint32_t table = rtm->rtm_table;
  if (const nlattr* a = find_attr(nlh, sizeof(rtmsg), RTA_TABLE, MNL_TYPE_U32)) {
    table = mnl_attr_get_u32(a);
  }
  if (table != RT_TABLE_MAIN) return false;
  if (const nlattr* oif = find_attr(nlh, sizeof(rtmsg), RTA_OIF, MNL_TYPE_U32)) {
    return !is_ignored_index(static_cast<int>(mnl_attr_get_u32(oif)));
  }
  if (const nlattr* mp = find_attr(nlh, sizeof(rtmsg), RTA_MULTIPATH, MNL_TYPE_BINARY)) {
    return !all_next_hops_ignored(mp);
  }
  return true;
}

// RTA_MULTIPATH is a run of rtnexthop records, each rtnh_len long (its attributes included)
// and padded to RTNH_ALIGNTO. A malformed run is not "all ignored", so it counts.
bool AddressMonitor::all_next_hops_ignored(const nlattr* multipath) const {
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(multipath));
  std::size_t left = mnl_attr_get_payload_len(multipath);
  bool any = false;
  while (left >= sizeof(rtnexthop)) {
    rtnexthop hop;
    std::memcpy(&hop, p, sizeof hop);
    if (hop.rtnh_len < sizeof(rtnexthop) || hop.rtnh_len > left) return false;
    if (!is_ignored_index(hop.rtnh_ifindex)) return false;
    any = true;
    std::size_t step = RTNH_ALIGN(hop.rtnh_len);
    if (step >= left) break;
    p += step;
    left -= step;
  }
  return any;
}

bool AddressMonitor::is_ignored_name(const char* name) const {
  return !ignore_.empty() && name && ignore_ == name;
}

// Known links answer from the table; an unknown one (table full, or its link message was
// lost to an overrun) is looked up by index now.
bool AddressMonitor::is_ignored_index(int index) const {
  if (ignore_.empty()) return false;
  if (auto known = links_.find(index); known != links_.end()) return known->second.ignored;
  char name[IF_NAMESIZE] = {};
  return index > 0 && if_indextoname(static_cast<unsigned>(index), name) && ignore_ == name;
}

void AddressMonitor::remember(int index, unsigned flags, bool ignored) {
  if (links_.size() < kMaxTrackedLinks) links_.insert_or_assign(index, Link{flags, ignored});
}

}  // namespace p2p::tun
