#include "tun/netlink.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>
#include <utility>

namespace p2p::tun {
namespace {

// Dumps come in multi-part datagrams of up to ~32 KiB; requests are tiny.
constexpr std::size_t kRxBufferSize = 32768;
constexpr std::size_t kTxBufferSize = 512;
constexpr int kReplyTimeoutSeconds = 5;
constexpr std::size_t kMaxAttr = 128;

using AttrTable = std::array<const nlattr*, kMaxAttr>;

int collect_attr(const nlattr* attr, void* data) {
  auto* table = static_cast<AttrTable*>(data);
  auto type = mnl_attr_get_type(attr);
  if (type < kMaxAttr) (*table)[type] = attr;
  return MNL_CB_OK;
}

const nlattr* valid_attr(const AttrTable& tb, unsigned type, mnl_attr_data_type kind) {
  const nlattr* a = tb[type];
  return (a && mnl_attr_validate(a, kind) >= 0) ? a : nullptr;
}

// State shared by the data and NLMSG_ERROR callbacks of one transaction.
struct Exchange {
  void (*on_message)(const nlmsghdr*, void*) = nullptr;
  void* ctx = nullptr;
  int error = 0;
  std::string kernel_message;
};

int on_data(const nlmsghdr* nlh, void* data) {
  auto* ex = static_cast<Exchange*>(data);
  if (ex->on_message) ex->on_message(nlh, ex->ctx);
  return MNL_CB_OK;
}

int on_ext_ack_attr(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
      mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
    static_cast<Exchange*>(data)->kernel_message = mnl_attr_get_str(attr);
  }
  return MNL_CB_OK;
}

// NLMSG_ERROR: error 0 is the ACK; otherwise keep errno and the extended-ACK text, if any.
int on_error(const nlmsghdr* nlh, void* data) {
  auto* ex = static_cast<Exchange*>(data);
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    ex->error = EBADMSG;
    return MNL_CB_ERROR;
  }
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) return MNL_CB_STOP;
  ex->error = -err->error;
  if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
    // The TLVs follow the echoed request, which is only the header when NLM_F_CAPPED.
    std::size_t offset = sizeof(nlmsgerr);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
    std::size_t payload = mnl_nlmsg_get_payload_len(nlh);
    if (offset < payload) {
      mnl_attr_parse_payload(reinterpret_cast<const char*>(err) + offset, payload - offset,
                             on_ext_ack_attr, ex);
    }
  }
  return MNL_CB_ERROR;
}

// NLMSG_DONE ends a dump; it may carry the dump's error as an int.
int on_done(const nlmsghdr* nlh, void* data) {
  if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
    int err = 0;
    std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
    if (err < 0) {
      static_cast<Exchange*>(data)->error = -err;
      return MNL_CB_ERROR;
    }
  }
  return MNL_CB_STOP;
}

int on_overrun(const nlmsghdr*, void* data) {
  static_cast<Exchange*>(data)->error = ENOBUFS;
  return MNL_CB_ERROR;
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

TunError netlink_error(std::string_view what, int err, const std::string& kernel_message) {
  TunErrc code = TunErrc::kSystem;
  std::string text = errno_text(err);
  switch (err) {
    case EPERM:
      code = TunErrc::kNotPermitted;
      text = "needs root or CAP_NET_ADMIN";
      break;
    case ENODEV:
      code = TunErrc::kNoSuchInterface;
      text = "no such interface";
      break;
    case EINVAL:
    case ERANGE:
      code = TunErrc::kBadArgument;
      break;
    default:
      break;
  }
  std::string msg = fmt::format("{}: {}", what, text);
  if (!kernel_message.empty()) msg += fmt::format(" (kernel: {})", kernel_message);
  return TunError{code, err, std::move(msg)};
}

nlmsghdr* put_header(char* buf, std::uint16_t type, std::uint16_t flags) {
  std::memset(buf, 0, kTxBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  return nlh;
}

LinkInfo parse_link(const nlmsghdr* nlh) {
  LinkInfo info;
  if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) {
    return info;
  }
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  AttrTable tb{};
  mnl_attr_parse(nlh, sizeof(ifinfomsg), collect_attr, &tb);
  info.index = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  if (const nlattr* a = valid_attr(tb, IFLA_IFNAME, MNL_TYPE_NUL_STRING)) {
    info.name = mnl_attr_get_str(a);
  }
  if (const nlattr* a = valid_attr(tb, IFLA_MTU, MNL_TYPE_U32)) info.mtu = mnl_attr_get_u32(a);
  return info;
}

void collect_link(const nlmsghdr* nlh, void* ctx) {
  LinkInfo info = parse_link(nlh);
  if (info.index > 0) static_cast<std::vector<LinkInfo>*>(ctx)->push_back(std::move(info));
}

// One parsed RTM_NEWADDR with the flags and scope list_local_addresses filters on.
struct RawAddress {
  InterfaceAddress address;
  unsigned flags = 0;
  unsigned scope = 0;
};

void collect_address(const nlmsghdr* nlh, void* ctx) {
  if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
    return;
  }
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  AttrTable tb{};
  mnl_attr_parse(nlh, sizeof(ifaddrmsg), collect_attr, &tb);
  RawAddress raw;
  raw.address.index = static_cast<int>(ifa->ifa_index);
  raw.address.prefix_length = ifa->ifa_prefixlen;
  raw.flags = ifa->ifa_flags;
  raw.scope = ifa->ifa_scope;
  if (const nlattr* a = valid_attr(tb, IFA_FLAGS, MNL_TYPE_U32)) raw.flags = mnl_attr_get_u32(a);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
  // IPv4 links, and the only one present for IPv6.
  const nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (!a) return;
  if (ifa->ifa_family == AF_INET && mnl_attr_get_payload_len(a) == 4) {
    std::uint32_t be;
    std::memcpy(&be, mnl_attr_get_payload(a), 4);
    raw.address.address = Ipv4{ntohl(be)};
  } else if (ifa->ifa_family == AF_INET6 && mnl_attr_get_payload_len(a) == 16) {
    Ipv6 v6;
    std::memcpy(v6.bytes.data(), mnl_attr_get_payload(a), 16);
    raw.address.address = v6;
  } else {
    return;
  }
  static_cast<std::vector<RawAddress>*>(ctx)->push_back(std::move(raw));
}

bool is_link_local_or_loopback(const IpAddress& a) {
  if (const auto* v4 = std::get_if<Ipv4>(&a)) {
    return (v4->value >> 24) == 127 || (v4->value >> 16) == 0xa9fe;
  }
  const auto& b = std::get<Ipv6>(a).bytes;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10
  Ipv6 loopback;
  loopback.bytes[15] = 1;
  return b == loopback.bytes;
}

}  // namespace

bool LinkInfo::is_up() const {
  return (flags & IFF_UP) != 0;
}
bool LinkInfo::is_loopback() const {
  return (flags & IFF_LOOPBACK) != 0;
}

Rtnetlink::Rtnetlink(mnl_socket* nl)
    : nl_(nl),
      portid_(mnl_socket_get_portid(nl)),
      seq_(static_cast<unsigned>(std::time(nullptr))),
      rx_(kRxBufferSize) {}

Rtnetlink::~Rtnetlink() {
  if (nl_) mnl_socket_close(nl_);
}

Rtnetlink::Rtnetlink(Rtnetlink&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), portid_(o.portid_), seq_(o.seq_), rx_(std::move(o.rx_)) {}

Rtnetlink& Rtnetlink::operator=(Rtnetlink&& o) noexcept {
  if (this != &o) {
    if (nl_) mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
    portid_ = o.portid_;
    seq_ = o.seq_;
    rx_ = std::move(o.rx_);
  }
  return *this;
}

Expected<Rtnetlink, TunError> Rtnetlink::open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl) return fail(netlink_error("opening rtnetlink socket", errno, {}));
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return fail(netlink_error("binding rtnetlink socket", err, {}));
  }
  // Best effort: older kernels lack extended ACKs; the errno alone still gets through.
  int one = 1;
  mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one);
  timeval timeout{kReplyTimeoutSeconds, 0};
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return Rtnetlink(nl);
}

Expected<void, TunError> Rtnetlink::transact(nlmsghdr* nlh, std::string_view what,
                                             MessageFn on_message, void* ctx) {
  nlh->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
    return fail(netlink_error(what, errno, {}));
  }
  // libmnl 1.0.4 ignores its defaults for any type this table covers, so all are set here.
  std::array<mnl_cb_t, NLMSG_MIN_TYPE> ctl{};
  ctl[NLMSG_ERROR] = on_error;
  ctl[NLMSG_DONE] = on_done;
  ctl[NLMSG_OVERRUN] = on_overrun;
  Exchange ex{on_message, ctx, 0, {}};
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN)
        return fail(TunError{TunErrc::kSystem, ETIMEDOUT,
                             fmt::format("{}: no reply from the kernel", what)});
      return fail(netlink_error(what, errno, {}));
    }
    int ret = mnl_cb_run2(rx_.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq, portid_, on_data,
                          &ex, ctl.data(), ctl.size());
    if (ret == MNL_CB_STOP) return {};
    if (ret == MNL_CB_ERROR) {
      return fail(netlink_error(what, ex.error != 0 ? ex.error : errno, ex.kernel_message));
    }
  }
}

Expected<LinkInfo, TunError> Rtnetlink::link(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return fail(TunError{TunErrc::kNoSuchInterface, ENODEV,
                         fmt::format("looking up interface '{}': no such interface", name)});
  }
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_header(buf, RTM_GETLINK, NLM_F_ACK);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, std::string(name).c_str());
  std::vector<LinkInfo> found;
  auto r = transact(nlh, fmt::format("looking up interface '{}'", name), collect_link, &found);
  if (!r) return fail(r.error());
  if (found.empty()) {
    return fail(TunError{TunErrc::kSystem, EBADMSG,
                         fmt::format("looking up interface '{}': empty reply", name)});
  }
  return std::move(found.front());
}

Expected<int, TunError> Rtnetlink::interface_index(std::string_view name) {
  auto l = link(name);
  if (!l) return fail(l.error());
  return l->index;
}

Expected<std::vector<LinkInfo>, TunError> Rtnetlink::links() {
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_header(buf, RTM_GETLINK, NLM_F_DUMP);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  std::vector<LinkInfo> out;
  auto r = transact(nlh, "listing interfaces", collect_link, &out);
  if (!r) return fail(r.error());
  return out;
}

Expected<void, TunError> Rtnetlink::set_mtu(int index, std::uint32_t mtu) {
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_header(buf, RTM_NEWLINK, NLM_F_ACK);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  return transact(nlh, fmt::format("setting MTU {} on interface #{}", mtu, index));
}

Expected<void, TunError> Rtnetlink::set_link_up(int index) {
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_header(buf, RTM_NEWLINK, NLM_F_ACK);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return transact(nlh, fmt::format("bringing interface #{} up", index));
}

namespace {

// Fills an RTM_NEWADDR for `len` bytes of address in network order.
nlmsghdr* put_new_address(char* buf, int index, int family, const void* addr, std::size_t len,
                          std::uint8_t prefix, std::uint8_t flags) {
  nlmsghdr* nlh = put_header(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<std::uint8_t>(family);
  ifa->ifa_prefixlen = prefix;
  ifa->ifa_flags = flags;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<unsigned>(index);
  mnl_attr_put(nlh, IFA_LOCAL, len, addr);
  mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
  return nlh;
}

}  // namespace

Expected<void, TunError> Rtnetlink::add_address(int index, const Ipv4Prefix& prefix) {
  if (prefix.length > 32) {
    return fail(TunError{TunErrc::kBadArgument, 0,
                         fmt::format("adding {}: prefix length over 32", prefix.to_string())});
  }
  char buf[kTxBufferSize];
  std::uint32_t be = htonl(prefix.address.value);
  nlmsghdr* nlh = put_new_address(buf, index, AF_INET, &be, 4, prefix.length, 0);
  return transact(nlh,
                  fmt::format("adding address {} to interface #{}", prefix.to_string(), index));
}

Expected<void, TunError> Rtnetlink::add_address(int index, const Ipv6Prefix& prefix) {
  if (prefix.length > 128) {
    return fail(TunError{TunErrc::kBadArgument, 0,
                         fmt::format("adding {}: prefix length over 128", prefix.to_string())});
  }
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_new_address(buf, index, AF_INET6, prefix.address.bytes.data(), 16,
                                  prefix.length, IFA_F_NODAD);
  return transact(nlh,
                  fmt::format("adding address {} to interface #{}", prefix.to_string(), index));
}

Expected<void, TunError> Rtnetlink::dump_addresses(MessageFn on_message, void* ctx) {
  char buf[kTxBufferSize];
  nlmsghdr* nlh = put_header(buf, RTM_GETADDR, NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  return transact(nlh, "listing addresses", on_message, ctx);
}

Expected<std::vector<InterfaceAddress>, TunError> Rtnetlink::addresses() {
  std::vector<RawAddress> raw;
  auto r = dump_addresses(collect_address, &raw);
  if (!r) return fail(r.error());
  std::vector<InterfaceAddress> out;
  out.reserve(raw.size());
  for (auto& a : raw) out.push_back(std::move(a.address));
  return out;
}

Expected<std::vector<InterfaceAddress>, TunError> Rtnetlink::local_addresses(
    std::string_view skip_interface) {
  auto all_links = links();
  if (!all_links) return fail(all_links.error());
  std::vector<RawAddress> raw;
  auto r = dump_addresses(collect_address, &raw);
  if (!r) return fail(r.error());

  std::vector<InterfaceAddress> out;
  for (auto& a : raw) {
    auto link = std::find_if(all_links->begin(), all_links->end(),
                             [&](const LinkInfo& l) { return l.index == a.address.index; });
    if (link == all_links->end() || !link->is_up() || link->is_loopback()) continue;
    if (link->name == skip_interface) continue;
    if (a.scope >= RT_SCOPE_LINK || is_link_local_or_loopback(a.address.address)) continue;
    if (a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) continue;
    a.address.interface = link->name;
    out.push_back(std::move(a.address));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::vector<InterfaceAddress>, TunError> list_local_addresses(
    std::string_view skip_interface) {
  auto nl = Rtnetlink::open();
  if (!nl) return fail(nl.error());
  return nl->local_addresses(skip_interface);
}

}  // namespace p2p::tun
