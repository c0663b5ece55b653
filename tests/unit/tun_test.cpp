// TUN device and rtnetlink helper, against the real kernel.
//
// Every test body runs in a forked child that first enters a fresh network namespace
// (unshare(CLONE_NEWNET)), so nothing touches the host's interfaces and everything the test
// created vanishes with the child, even when it fails or crashes. The child uses the normal
// GoogleTest assertions and the parent reports them (tests/support/netns.hpp); the parent waits
// a bounded time and kills it otherwise. Needs root and /dev/net/tun; skipped with a message
// otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"
#include "tun/netlink.hpp"
#include "tun/tun_device.hpp"

namespace p2p::tun {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr int kChildTimeoutMs = 30'000;
constexpr int kWaitMs = 3'000;  // for one packet to show up
constexpr const char* kTun = "p2ptest0";

Ipv4 v4(const char* s) {
  return *Ipv4::parse(s);
}
Ipv6 v6(const char* s) {
  return *Ipv6::parse(s);
}
Ipv4Prefix v4p(const char* s) {
  return *Ipv4Prefix::parse(s);
}
Ipv6Prefix v6p(const char* s) {
  return *Ipv6Prefix::parse(s);
}

// Runs `body` in a forked child inside a fresh network namespace (see tests/support/netns.hpp).
void run_isolated(const std::function<void()>& body) {
  test::NetnsOptions options;
  options.limit = std::chrono::milliseconds(kChildTimeoutMs);
  test::in_fresh_netns(body, options);
}

// The same, with a private mount namespace whose /dev/net is empty: as on a host without the
// TUN driver.
void run_isolated_without_tun_node(const std::function<void()>& body) {
  test::NetnsOptions options;
  options.limit = std::chrono::milliseconds(kChildTimeoutMs);
  options.setup = [] {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/dev/net", "tmpfs", 0, nullptr) != 0) {
      GTEST_SKIP() << "cannot make a mount namespace with an empty /dev/net";
    }
  };
  test::in_fresh_netns(body, options);
}

class TunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "TUN tests need root (they create network namespaces and TUN devices)";
    }
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "TUN tests need /dev/net/tun (modprobe tun)";
    }
  }
};

// --- packet helpers -------------------------------------------------------------------------

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n % 2) sum += p[n - 1] << 8;
  return sum;
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = v >> 8;
  p[1] = v & 0xff;
}
std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
std::uint32_t get32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// An IPv4/UDP packet with correct header and UDP checksums (or a broken UDP checksum).
Bytes ipv4_udp(Ipv4 src, std::uint16_t sport, Ipv4 dst, std::uint16_t dport,
               const std::string& payload, bool bad_udp_checksum = false) {
  Bytes pkt(20 + 8 + payload.size());
  std::uint8_t* ip = pkt.data();
  ip[0] = 0x45;
  put16(ip + 2, static_cast<std::uint16_t>(pkt.size()));
  ip[8] = 64;  // TTL
  ip[9] = IPPROTO_UDP;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<std::uint8_t>(src.value >> (24 - 8 * i));
    ip[16 + i] = static_cast<std::uint8_t>(dst.value >> (24 - 8 * i));
  }
  put16(ip + 10, fold(sum16(ip, 20)));
  std::uint8_t* udp = ip + 20;
  put16(udp, sport);
  put16(udp + 2, dport);
  put16(udp + 4, static_cast<std::uint16_t>(8 + payload.size()));
  std::memcpy(udp + 8, payload.data(), payload.size());
  // Pseudo-header: addresses, protocol, UDP length.
  std::uint32_t sum = sum16(ip + 12, 8) + IPPROTO_UDP + 8 + payload.size();
  std::uint16_t check = fold(sum16(udp, 8 + payload.size(), sum));
  put16(udp + 6, static_cast<std::uint16_t>((check == 0 ? 0xffff : check) ^ bad_udp_checksum));
  return pkt;
}

// A pool-like buffer: headroom and tailroom filled with a sentinel the device must not touch.
struct PoolBuffer {
  static constexpr std::size_t kHeadroom = 32, kCapacity = 2048, kTailroom = 16;
  std::array<std::uint8_t, kHeadroom + kCapacity + kTailroom> bytes{};
  PoolBuffer() { bytes.fill(0xa5); }
  PacketSlot slot() { return {bytes.data() + kHeadroom, kCapacity, 0}; }
  bool margins_intact() const {
    auto untouched = [](auto b, auto e) {
      return std::all_of(b, e, [](std::uint8_t x) { return x == 0xa5; });
    };
    return untouched(bytes.begin(), bytes.begin() + kHeadroom) &&
           untouched(bytes.end() - kTailroom, bytes.end());
  }
};

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

int udp_socket(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  return fd;
}

sockaddr_in sockaddr_v4(Ipv4 a, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(a.value);
  return sa;
}

void send_udp_v4(int fd, Ipv4 to, std::uint16_t port, const std::string& payload) {
  sockaddr_in sa = sockaddr_v4(to, port);
  EXPECT_EQ(
      sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa),
      static_cast<ssize_t>(payload.size()))
      << std::strerror(errno);
}

// Without IPv6 in the namespace the kernel sends nothing of its own (router solicitations,
// MLD) into a new TUN, so packet counts are exact.
void disable_ipv6() {
  for (const char* path : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                           "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
    if (FILE* f = std::fopen(path, "w")) {
      std::fputs("1", f);
      std::fclose(f);
    }
  }
}

bool has_address(const std::vector<InterfaceAddress>& all, int index, const IpAddress& a,
                 std::uint8_t prefix) {
  return std::any_of(all.begin(), all.end(), [&](const InterfaceAddress& x) {
    return x.index == index && x.address == a && x.prefix_length == prefix;
  });
}

// Drops CAP_NET_ADMIN from the effective and permitted sets, staying uid 0.
void drop_cap_net_admin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
  data[0].effective &= ~(1u << CAP_NET_ADMIN);
  data[0].permitted &= ~(1u << CAP_NET_ADMIN);
  ASSERT_EQ(syscall(SYS_capset, &header, data), 0) << std::strerror(errno);
}

// --- opening and configuring ----------------------------------------------------------------

TEST_F(TunTest, OpenConfiguresAddressesMtuAndLink) {
  run_isolated([] {
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"), v6p("fd00:9::1/64"));
    ASSERT_TRUE(dev) << dev.error().message;
    EXPECT_EQ(dev->name(), kTun);
    EXPECT_EQ(dev->mtu(), 1400u);
    EXPECT_TRUE(dev->is_open());
    EXPECT_TRUE(fcntl(dev->native_handle(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(dev->native_handle(), F_GETFD) & FD_CLOEXEC);

    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl) << nl.error().message;
    auto link = nl->link(kTun);
    ASSERT_TRUE(link) << link.error().message;
    EXPECT_EQ(link->index, dev->index());
    EXPECT_EQ(link->name, kTun);
    EXPECT_EQ(link->mtu, 1400u);
    EXPECT_TRUE(link->is_up());
    EXPECT_FALSE(link->is_loopback());
    EXPECT_TRUE(link->flags & IFF_POINTOPOINT) << "not a TUN (IFF_TUN) device";
    EXPECT_EQ(if_nametoindex(kTun), static_cast<unsigned>(dev->index()));

    auto addrs = nl->addresses();
    ASSERT_TRUE(addrs) << addrs.error().message;
    EXPECT_TRUE(has_address(*addrs, dev->index(), v4("10.9.0.1"), 24));
    EXPECT_TRUE(has_address(*addrs, dev->index(), v6("fd00:9::1"), 64));
  });
}

// Without an IPv6 address the TUN has no IPv6 at all: the kernel sends it no router
// solicitations or MLD reports (which used to show as "dropped: 4 no_route" on every node).
TEST_F(TunTest, NoIpv6ChatterWithoutAnIpv6Address) {
  run_isolated([] {
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(dev) << dev.error().message;
    FILE* f = std::fopen("/proc/sys/net/ipv6/conf/p2ptest0/disable_ipv6", "r");
    if (f == nullptr) GTEST_SKIP() << "no IPv6 in this kernel";
    EXPECT_EQ(std::fgetc(f), '1');
    std::fclose(f);
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto addrs = nl->addresses();
    ASSERT_TRUE(addrs);
    for (const auto& a : *addrs) {
      EXPECT_FALSE(a.index == dev->index() && std::holds_alternative<Ipv6>(a.address))
          << "an IPv6 address on the TUN: " << to_string(a.address);
    }
    // The kernel solicits within ~2 s of link-up (DAD, then up to rtr_solicit_delay).
    std::array<PoolBuffer, 4> pool;
    std::array<PacketSlot, 4> slots{pool[0].slot(), pool[1].slot(), pool[2].slot(), pool[3].slot()};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!wait_readable(dev->native_handle(), 100)) continue;
      auto n = dev->read_batch(slots);
      ASSERT_TRUE(n);
      for (std::size_t i = 0; i < *n; ++i) {
        EXPECT_NE(slots[i].data[0] >> 4, 6) << "the kernel sent an IPv6 packet into the TUN";
      }
    }
  });
}

TEST_F(TunTest, DeviceDisappearsWhenClosedOrDestroyed) {
  run_isolated([] {
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    {
      auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
      ASSERT_TRUE(dev) << dev.error().message;
      EXPECT_TRUE(nl->link(kTun));
    }
    auto gone = nl->link(kTun);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, TunErrc::kNoSuchInterface) << gone.error().message;

    // Moving hands over ownership: only the last owner's close deletes the interface.
    auto first = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(first) << first.error().message;
    TunDevice owner = std::move(*first);
    first->close();  // moved-from: a no-op
    TunDevice other;
    other = std::move(owner);
    EXPECT_FALSE(owner.is_open());
    auto still = nl->link(kTun);
    ASSERT_TRUE(still) << still.error().message;
    EXPECT_TRUE(still->is_up());
    other.close();
    other.close();  // idempotent
    EXPECT_FALSE(other.is_open());
    EXPECT_FALSE(nl->link(kTun));
  });
}

TEST_F(TunTest, NameCollisionIsReported) {
  run_isolated([] {
    auto first = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(first) << first.error().message;
    auto second = TunDevice::open(kTun, 1400, v4p("10.9.1.1/24"));
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, TunErrc::kNameInUse);
    EXPECT_NE(second.error().message.find("p2ptest0"), std::string::npos) << second.error().message;
    EXPECT_NE(second.error().message.find("already exists"), std::string::npos)
        << second.error().message;

    // Not a TUN at all: still a collision, never an attach.
    auto lo = TunDevice::open("lo", 1400, v4p("10.9.2.1/24"));
    ASSERT_FALSE(lo);
    EXPECT_EQ(lo.error().code, TunErrc::kNameInUse) << lo.error().message;

    // The first device is untouched: still up, still only its own address.
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto link = nl->link(kTun);
    ASSERT_TRUE(link);
    EXPECT_TRUE(link->is_up());
    auto addrs = nl->addresses();
    ASSERT_TRUE(addrs);
    EXPECT_TRUE(has_address(*addrs, first->index(), v4("10.9.0.1"), 24));
    EXPECT_FALSE(has_address(*addrs, first->index(), v4("10.9.1.1"), 24));
  });
}

TEST_F(TunTest, InvalidNamesAreRejectedBeforeAnythingIsCreated) {
  run_isolated([] {
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto before = nl->links();
    ASSERT_TRUE(before);
    for (const char* name :
         {"", "sixteen-chars-xx", ".", "..", "bad/name", "a:b", "sp ace", "tab\tname", "tun%d"}) {
      auto dev = TunDevice::open(name, 1400, v4p("10.9.0.1/24"));
      ASSERT_FALSE(dev) << "accepted '" << name << "'";
      EXPECT_EQ(dev.error().code, TunErrc::kBadName) << name;
      EXPECT_NE(dev.error().message.find("invalid interface name"), std::string::npos)
          << dev.error().message;
    }
    auto longest = TunDevice::open("fifteen-chars-x", 1400, v4p("10.9.0.1/24"));
    EXPECT_TRUE(longest) << longest.error().message;
    longest->close();
    auto after = nl->links();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->size(), before->size());
  });
}

TEST_F(TunTest, BadSettingsFailAndLeaveNothingBehind) {
  run_isolated([] {
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto expect_bad = [&](Expected<TunDevice, TunError> dev, const char* what) {
      ASSERT_FALSE(dev) << what;
      EXPECT_EQ(dev.error().code, TunErrc::kBadArgument) << what << ": " << dev.error().message;
      EXPECT_NE(dev.error().message.find(kTun), std::string::npos) << dev.error().message;
      EXPECT_FALSE(nl->link(kTun)) << what << " left the interface behind";
    };
    expect_bad(TunDevice::open(kTun, 20, v4p("10.9.0.1/24")), "MTU 20");
    expect_bad(TunDevice::open(kTun, 70000, v4p("10.9.0.1/24")), "MTU 70000");
    expect_bad(TunDevice::open(kTun, 1000, v4p("10.9.0.1/24"), v6p("fd00:9::1/64")),
               "IPv6 with MTU 1000");
    // Found only after the device exists (netlink step): it must still vanish.
    expect_bad(TunDevice::open(kTun, 1400, Ipv4Prefix{v4("10.9.0.1"), 33}), "prefix /33");
  });
}

// --- privileges and the driver --------------------------------------------------------------

void expect_not_permitted(const Expected<TunDevice, TunError>& dev) {
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code, TunErrc::kNotPermitted) << dev.error().message;
  EXPECT_NE(dev.error().message.find("needs root or CAP_NET_ADMIN"), std::string::npos)
      << dev.error().message;
}

TEST_F(TunTest, UnprivilegedUserGetsClearError) {
  run_isolated([] {
    ASSERT_EQ(setgroups(0, nullptr), 0);
    ASSERT_EQ(setgid(65534), 0);
    ASSERT_EQ(setuid(65534), 0);
    expect_not_permitted(TunDevice::open(kTun, 1400, v4p("10.9.0.1/24")));
  });
}

TEST_F(TunTest, RootWithoutCapNetAdminGetsClearError) {
  run_isolated([] {
    auto nl = Rtnetlink::open();  // opening and querying needs no privilege
    ASSERT_TRUE(nl);
    auto lo = nl->link("lo");
    ASSERT_TRUE(lo) << lo.error().message;
    drop_cap_net_admin();
    expect_not_permitted(TunDevice::open(kTun, 1400, v4p("10.9.0.1/24")));
    auto r = nl->set_mtu(lo->index, 1500);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, TunErrc::kNotPermitted) << r.error().message;
    EXPECT_NE(r.error().message.find("needs root or CAP_NET_ADMIN"), std::string::npos);
  });
}

TEST_F(TunTest, MissingTunNodeSuggestsModprobe) {
  run_isolated_without_tun_node([] {
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_FALSE(dev);
    EXPECT_EQ(dev.error().code, TunErrc::kNoDriver) << dev.error().message;
    EXPECT_EQ(dev.error().sys_errno, ENOENT);
    EXPECT_NE(dev.error().message.find("modprobe tun"), std::string::npos) << dev.error().message;
  });
}

// --- packets --------------------------------------------------------------------------------

// UDP datagrams sent to 10.9.0.2 leave through the TUN: read them back in batches.
TEST_F(TunTest, ReadBatchReturnsPacketsRoutedIntoTheTun) {
  run_isolated([] {
    disable_ipv6();
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(dev) << dev.error().message;

    std::array<PoolBuffer, 2> pool;
    std::array<PacketSlot, 2> slots{pool[0].slot(), pool[1].slot()};
    auto none = dev->read_batch(slots);
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_EQ(*none, 0u);
    auto empty = dev->read_batch({});
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, 0u);

    int sock = udp_socket(AF_INET);
    constexpr int kCount = 5;
    for (int i = 0; i < kCount; ++i) {
      send_udp_v4(sock, v4("10.9.0.2"), 5555, "datagram " + std::to_string(i));
    }

    // The batch never overfills its two slots; packets come out in order.
    int seen = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    while (seen < kCount && std::chrono::steady_clock::now() < deadline) {
      if (!wait_readable(dev->native_handle(), 200)) continue;
      auto n = dev->read_batch(slots);
      ASSERT_TRUE(n) << n.error().message;
      ASSERT_LE(*n, slots.size());
      for (std::size_t i = 0; i < *n; ++i, ++seen) {
        const std::uint8_t* ip = slots[i].data;
        std::string expected = "datagram " + std::to_string(seen);
        ASSERT_EQ(slots[i].length, 28 + expected.size());
        EXPECT_EQ(ip[0], 0x45);
        EXPECT_EQ(get16(ip + 2), slots[i].length);
        EXPECT_EQ(ip[9], IPPROTO_UDP);
        EXPECT_EQ(get32(ip + 12), v4("10.9.0.1").value);
        EXPECT_EQ(get32(ip + 16), v4("10.9.0.2").value);
        EXPECT_EQ(get16(ip + 22), 5555);
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(ip + 28), expected.size()), expected);
      }
    }
    EXPECT_EQ(seen, kCount);
    EXPECT_TRUE(pool[0].margins_intact() && pool[1].margins_intact());
    auto drained = dev->read_batch(slots);
    ASSERT_TRUE(drained);
    EXPECT_EQ(*drained, 0u);

    // A slot too small for the packet: dropped and counted, never handed out truncated. One
    // that fits exactly is delivered whole.
    std::array<std::uint8_t, 64> small{};
    std::array<PacketSlot, 1> small_slot{PacketSlot{small.data(), small.size(), 0}};
    send_udp_v4(sock, v4("10.9.0.2"), 5555, std::string(65 - 28, 'x'));
    send_udp_v4(sock, v4("10.9.0.2"), 5555, std::string(64 - 28, 'y'));
    ASSERT_TRUE(wait_readable(dev->native_handle(), kWaitMs));
    auto n = dev->read_batch(small_slot);
    ASSERT_TRUE(n);
    if (*n == 0) {  // the second datagram may not be queued yet
      ASSERT_TRUE(wait_readable(dev->native_handle(), kWaitMs));
      n = dev->read_batch(small_slot);
      ASSERT_TRUE(n);
    }
    ASSERT_EQ(*n, 1u);
    EXPECT_EQ(small_slot[0].length, 64u);
    EXPECT_EQ(small[63], 'y');
    EXPECT_EQ(dev->oversize_drops(), 1u);
    ::close(sock);
  });
}

TEST_F(TunTest, ReadBatchSeesIpv6Packets) {
  run_isolated([] {
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"), v6p("fd00:9::1/64"));
    ASSERT_TRUE(dev) << dev.error().message;
    int sock = udp_socket(AF_INET6);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(5556);
    Ipv6 dst = v6("fd00:9::2");
    std::memcpy(&to.sin6_addr, dst.bytes.data(), 16);
    const std::string payload = "hello over v6";
    ASSERT_EQ(sendto(sock, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof to),
              static_cast<ssize_t>(payload.size()))
        << std::strerror(errno);

    // The kernel may also send its own ICMPv6 (router solicitation, MLD): skip those.
    PoolBuffer buf;
    std::array<PacketSlot, 1> slot{buf.slot()};
    bool found = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    while (!found && std::chrono::steady_clock::now() < deadline) {
      if (!wait_readable(dev->native_handle(), 200)) continue;
      auto n = dev->read_batch(slot);
      ASSERT_TRUE(n) << n.error().message;
      if (*n == 0 || slot[0].data[6] != IPPROTO_UDP) continue;
      const std::uint8_t* ip = slot[0].data;
      EXPECT_EQ(ip[0] >> 4, 6);
      EXPECT_EQ(std::memcmp(ip + 8, v6("fd00:9::1").bytes.data(), 16), 0);
      EXPECT_EQ(std::memcmp(ip + 24, dst.bytes.data(), 16), 0);
      EXPECT_EQ(get16(ip + 42), 5556);
      ASSERT_EQ(slot[0].length, 48 + payload.size());
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(ip + 48), payload.size()), payload);
      found = true;
    }
    EXPECT_TRUE(found) << "no IPv6 UDP packet came out of the TUN";
    ::close(sock);
  });
}

// Packets written into the TUN are delivered by the kernel as if they came from 10.9.0.2.
TEST_F(TunTest, WrittenPacketsReachLocalSockets) {
  run_isolated([] {
    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(dev) << dev.error().message;
    int sock = udp_socket(AF_INET);
    sockaddr_in local = sockaddr_v4(v4("10.9.0.1"), 6000);
    ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&local), sizeof local), 0)
        << std::strerror(errno);
    auto receive = [&]() -> std::string {
      if (!wait_readable(sock, kWaitMs)) return "<nothing>";
      char buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(sock, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      EXPECT_EQ(ntohl(from.sin_addr.s_addr), v4("10.9.0.2").value);
      EXPECT_EQ(ntohs(from.sin_port), 7000);
      return n < 0 ? "<error>" : std::string(buf, static_cast<std::size_t>(n));
    };
    auto packet = [](const std::string& payload, bool bad_checksum = false) {
      return ipv4_udp(v4("10.9.0.2"), 7000, v4("10.9.0.1"), 6000, payload, bad_checksum);
    };

    auto one = packet("single");
    auto w = dev->write_packet(one);
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(receive(), "single");

    // Not an IP packet: the kernel refuses it, and says so.
    Bytes garbage(40, 0x00);
    auto bad = dev->write_packet(garbage);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, TunErrc::kRejectedPacket) << bad.error().message;

    // A batch: the refused packet is counted and skipped, the corrupted one is accepted by the
    // TUN but dropped by UDP, the rest arrive in order.
    std::vector<Bytes> packets{packet("first"), garbage, packet("corrupt", true), packet("second")};
    std::vector<PacketSlot> slots;
    for (auto& p : packets) slots.push_back({p.data(), p.size(), p.size()});
    WriteResult r = dev->write_batch(slots);
    EXPECT_EQ(r.written, 3u);
    EXPECT_EQ(r.rejected, 1u);
    EXPECT_FALSE(r.would_block);
    EXPECT_EQ(receive(), "first");
    EXPECT_EQ(receive(), "second");
    ::close(sock);
  });
}

// --- the rtnetlink helper on its own --------------------------------------------------------

TEST_F(TunTest, NetlinkReportsClearErrors) {
  run_isolated([] {
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto missing = nl->link("nope0");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, TunErrc::kNoSuchInterface);
    EXPECT_NE(missing.error().message.find("nope0"), std::string::npos);
    EXPECT_FALSE(nl->interface_index("nope0"));

    auto bogus = nl->set_mtu(987654, 1400);
    ASSERT_FALSE(bogus);
    EXPECT_EQ(bogus.error().code, TunErrc::kNoSuchInterface) << bogus.error().message;

    auto dev = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"));
    ASSERT_TRUE(dev) << dev.error().message;
    auto tiny = nl->set_mtu(dev->index(), 10);
    ASSERT_FALSE(tiny);
    EXPECT_EQ(tiny.error().code, TunErrc::kBadArgument) << tiny.error().message;
    auto again = nl->add_address(dev->index(), v4p("10.9.0.1/24"));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().sys_errno, EEXIST) << again.error().message;

    ASSERT_TRUE(nl->set_mtu(dev->index(), 1280));
    auto link = nl->link(kTun);
    ASSERT_TRUE(link);
    EXPECT_EQ(link->mtu, 1280u);
    auto lo = nl->interface_index("lo");
    ASSERT_TRUE(lo);
    EXPECT_EQ(*lo, static_cast<int>(if_nametoindex("lo")));
  });
}

TEST_F(TunTest, ListLocalAddressesSkipsTunLoopbackAndLinkLocal) {
  run_isolated([] {
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto lo = nl->interface_index("lo");
    ASSERT_TRUE(lo);
    ASSERT_TRUE(nl->set_link_up(*lo));  // 127.0.0.1 and ::1 now exist, and must not show

    auto vpn = TunDevice::open(kTun, 1400, v4p("10.9.0.1/24"), v6p("fd00:9::1/64"));
    ASSERT_TRUE(vpn) << vpn.error().message;
    // A stand-in for the host's uplink, addressed through the helper.
    // (With an IPv6 address: a TUN without one has IPv6 disabled.)
    auto uplink = TunDevice::open("uplink0", 1400, v4p("192.0.2.7/24"), v6p("2001:db8::7/64"));
    ASSERT_TRUE(uplink) << uplink.error().message;
    int up = uplink->index();
    ASSERT_TRUE(nl->add_address(up, v4p("198.51.100.7/24")));
    ASSERT_TRUE(nl->add_address(up, v6p("fe80::1234/64")));

    auto got = list_local_addresses(kTun);
    ASSERT_TRUE(got) << got.error().message;
    std::vector<InterfaceAddress> want{
        {"uplink0", up, v4("192.0.2.7"), 24},
        {"uplink0", up, v4("198.51.100.7"), 24},
        {"uplink0", up, v6("2001:db8::7"), 64},
    };
    EXPECT_EQ(*got, want);

    // Without the skip, the VPN's own addresses are candidates too.
    auto all = list_local_addresses();
    ASSERT_TRUE(all) << all.error().message;
    EXPECT_TRUE(has_address(*all, vpn->index(), v4("10.9.0.1"), 24));
    EXPECT_TRUE(has_address(*all, vpn->index(), v6("fd00:9::1"), 64));
    EXPECT_EQ(all->size(), 5u);

    // The raw dump does include loopback and link-local.
    auto raw = nl->addresses();
    ASSERT_TRUE(raw);
    EXPECT_TRUE(has_address(*raw, *lo, v4("127.0.0.1"), 8));
    EXPECT_TRUE(has_address(*raw, up, v6("fe80::1234"), 64));
  });
}

}  // namespace
}  // namespace p2p::tun
