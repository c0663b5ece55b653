#include "tun/tun_device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "net/offload.hpp"
#include "tun/netlink.hpp"

namespace p2p::tun {
namespace {

constexpr const char* kTunPath = "/dev/net/tun";

// True if the IP header claims more bytes than `n`: the kernel silently cuts a packet that
// does not fit the read buffer, so a read that fills the buffer exactly may be a cut one.
bool truncated(const std::uint8_t* p, std::size_t n, std::size_t skip) {
  if (n < skip) return true;
  p += skip;
  n -= skip;
  if (n >= 4 && (p[0] >> 4) == 4) return (std::size_t{p[2]} << 8 | p[3]) > n;
  if (n >= 6 && (p[0] >> 4) == 6) return 40 + (std::size_t{p[4]} << 8 | p[5]) > n;
  return n < 6;
}

// Asks for the most the kernel grants: TSO and USO, then TSO, then checksums only.
TunOffloads enable_offloads(int fd) {
  constexpr unsigned kUso4 = 0x20, kUso6 = 0x40;  // TUN_F_USO4/6, newer than Debian 12's headers
  constexpr unsigned kTso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  TunOffloads got{.vnet_hdr = true};
  if (::ioctl(fd, TUNSETOFFLOAD, kTso | kUso4 | kUso6) == 0) {
    got.tso = got.uso = true;
  } else if (::ioctl(fd, TUNSETOFFLOAD, kTso) == 0) {
    got.tso = true;
  } else {
    (void)::ioctl(fd, TUNSETOFFLOAD, 0u);
  }
  return got;
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// The kernel's dev_valid_name() rules, plus '%' (which would make the kernel pick a name).
bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || c == '%' || c == ' ' || (c >= '\t' && c <= '\r') || c == '\0';
  });
}

TunError open_error(int err) {
  switch (err) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return {TunErrc::kNoDriver, err,
              fmt::format("cannot open {}: {} (is the tun module loaded? try: modprobe tun)",
                          kTunPath, errno_text(err))};
    case EACCES:
    case EPERM:
      return {TunErrc::kNotPermitted, err,
              fmt::format("cannot open {}: creating a TUN device needs root or CAP_NET_ADMIN",
                          kTunPath)};
    default:
      return {TunErrc::kSystem, err, fmt::format("cannot open {}: {}", kTunPath, errno_text(err))};
  }
}

TunError setiff_error(int err, std::string_view name) {
  switch (err) {
    case EPERM:
    case EACCES:
      return {TunErrc::kNotPermitted, err,
              fmt::format("cannot create TUN device '{}': needs root or CAP_NET_ADMIN", name)};
    case EBUSY:
    case EEXIST:
      return {TunErrc::kNameInUse, err,
              fmt::format("cannot create TUN device '{}': an interface with that name already "
                          "exists",
                          name)};
    case EINVAL:
      return {TunErrc::kBadName, err,
              fmt::format("cannot create TUN device '{}': the kernel rejected the name", name)};
    default:
      return {TunErrc::kSystem, err,
              fmt::format("cannot create TUN device '{}': {}", name, errno_text(err))};
  }
}

TunError in_context(std::string_view name, TunError e) {
  e.message = fmt::format("TUN device '{}': {}", name, e.message);
  return e;
}

// No IPv6 on a link that has no IPv6 address: else the kernel gives it a link-local address
// and sends router solicitations and MLD reports into the tunnel, which no peer can route.
// There is no netlink attribute for it. Best effort: a kernel without IPv6, or a read-only
// /proc/sys (some containers), leaves the link as it was.
void disable_ipv6(std::string_view name) {
  const std::string path = fmt::format("/proc/sys/net/ipv6/conf/{}/disable_ipv6", name);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  [[maybe_unused]] const ssize_t n = ::write(fd, "1", 1);
  ::close(fd);
}

}  // namespace

TunDevice::TunDevice(int fd, std::string name, std::uint32_t mtu)
    : fd_(fd), name_(std::move(name)), mtu_(mtu) {}

TunDevice::~TunDevice() {
  close();
}

TunDevice::TunDevice(TunDevice&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      name_(std::move(o.name_)),
      index_(std::exchange(o.index_, 0)),
      mtu_(std::exchange(o.mtu_, 0)),
      oversize_drops_(std::exchange(o.oversize_drops_, 0)),
      offloads_(std::exchange(o.offloads_, {})) {}

TunDevice& TunDevice::operator=(TunDevice&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    name_ = std::move(o.name_);
    index_ = std::exchange(o.index_, 0);
    mtu_ = std::exchange(o.mtu_, 0);
    oversize_drops_ = std::exchange(o.oversize_drops_, 0);
    offloads_ = std::exchange(o.offloads_, {});
  }
  return *this;
}

void TunDevice::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Expected<TunDevice, TunError> TunDevice::open(std::string_view name, std::uint32_t mtu,
                                              const Ipv4Prefix& v4,
                                              const std::optional<Ipv6Prefix>& v6, bool offload) {
  if (!valid_interface_name(name)) {
    return fail(TunError{TunErrc::kBadName, 0,
                         fmt::format("invalid interface name '{}': use 1 to {} characters, "
                                     "without '/', ':', '%' or whitespace",
                                     name, IFNAMSIZ - 1)});
  }
  if (mtu < kMinMtu || mtu > kMaxMtu) {
    return fail(TunError{
        TunErrc::kBadArgument, 0,
        fmt::format("TUN device '{}': MTU {} is outside {}..{}", name, mtu, kMinMtu, kMaxMtu)});
  }
  if (v6 && mtu < kMinMtuIpv6) {
    return fail(TunError{TunErrc::kBadArgument, 0,
                         fmt::format("TUN device '{}': IPv6 needs an MTU of at least {}, not {}",
                                     name, kMinMtuIpv6, mtu)});
  }

  auto nl = Rtnetlink::open();
  if (!nl) return fail(in_context(name, nl.error()));
  int fd = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(open_error(errno));
  TunDevice dev(fd, std::string(name), mtu);  // from here on, failure closes and deletes it

  ifreq ifr{};
  // IFF_TUN_EXCL: fail on an existing interface instead of attaching to a persistent one.
  ifr.ifr_flags = static_cast<short>(static_cast<std::uint16_t>(IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL |
                                                                (offload ? IFF_VNET_HDR : 0)));
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) return fail(setiff_error(errno, name));
  if (offload) dev.offloads_ = enable_offloads(fd);

  auto index = nl->interface_index(name);
  if (!index) return fail(in_context(name, index.error()));
  dev.index_ = *index;
  // MTU first: the kernel drops IPv6 from a link whose MTU falls below 1280.
  if (auto r = nl->set_mtu(dev.index_, mtu); !r) return fail(in_context(name, r.error()));
  if (auto r = nl->add_address(dev.index_, v4); !r) return fail(in_context(name, r.error()));
  if (v6) {
    if (auto r = nl->add_address(dev.index_, *v6); !r) return fail(in_context(name, r.error()));
  } else {
    disable_ipv6(name);
  }
  if (auto r = nl->set_link_up(dev.index_); !r) return fail(in_context(name, r.error()));
  return dev;
}

Expected<std::size_t, TunError> TunDevice::read_batch(std::span<PacketSlot> slots) {
  std::size_t n = 0;
  while (n < slots.size()) {
    PacketSlot& slot = slots[n];
    ssize_t r = ::read(fd_, slot.data, slot.capacity);
    if (r >= 0) {
      if (static_cast<std::size_t>(r) == slot.capacity &&
          truncated(slot.data, slot.capacity,
                    offloads_.vnet_hdr ? offload::kVirtioNetHdrSize : 0)) {
        ++oversize_drops_;
        continue;
      }
      slot.length = static_cast<std::size_t>(r);
      ++n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || n > 0) break;  // a hard error shows up again on the next call
    int err = errno;
    return fail(TunError{TunErrc::kSystem, err,
                         fmt::format("reading from TUN device '{}': {}", name_, errno_text(err))});
  }
  return n;
}

int TunDevice::write_raw(std::span<const std::uint8_t> packet) {
  iovec iov[2] = {
      {const_cast<std::uint8_t*>(offload::kPlainHeader.data()), offload::kPlainHeader.size()},
      {const_cast<std::uint8_t*>(packet.data()), packet.size()}};
  const bool hdr = offloads_.vnet_hdr;
  for (;;) {
    if (::writev(fd_, hdr ? iov : iov + 1, hdr ? 2 : 1) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

Expected<void, TunError> TunDevice::write_frame(
    std::span<const std::span<const std::uint8_t>> parts) {
  std::array<iovec, kMaxFrameParts> iov;
  std::size_t n = 0, size = 0;
  for (const auto& part : parts) {
    if (n == kMaxFrameParts) return write_error(EINVAL, size);
    iov[n++] = iovec{const_cast<std::uint8_t*>(part.data()), part.size()};
    size += part.size();
  }
  for (;;) {
    if (::writev(fd_, iov.data(), static_cast<int>(n)) >= 0) return {};
    if (errno != EINTR) return write_error(errno, size);
  }
}

Expected<void, TunError> TunDevice::write_error(int err, std::size_t size) const {
  TunErrc code = err == EAGAIN   ? TunErrc::kWouldBlock
                 : err == EINVAL ? TunErrc::kRejectedPacket
                                 : TunErrc::kSystem;
  return fail(TunError{code, err,
                       fmt::format("writing a {}-byte packet to TUN device '{}': {}", size, name_,
                                   errno_text(err))});
}

Expected<void, TunError> TunDevice::write_packet(std::span<const std::uint8_t> packet) {
  int err = write_raw(packet);
  if (err == 0) return {};
  return write_error(err, packet.size());
}

WriteResult TunDevice::write_batch(std::span<const PacketSlot> slots) {
  WriteResult result;
  for (const PacketSlot& slot : slots) {
    int err = write_raw({slot.data, slot.length});
    if (err == EAGAIN) {
      result.would_block = true;
      break;
    }
    if (err == 0) {
      ++result.written;
    } else {
      ++result.rejected;
    }
  }
  return result;
}

}  // namespace p2p::tun
