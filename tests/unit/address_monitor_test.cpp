// AddressMonitor against the real kernel, driven the way the daemon drives it: open it, watch
// its fd with poll(), drain() when readable, and expect a count > 0 exactly when something
// the daemon's NAT discovery depends on changed.
//
// Every kernel-facing test runs in a forked child inside a fresh network namespace (veth
// pairs and routes made there vanish with it), with IPv6 link-local generation and DAD off so
// the kernel adds no addresses of its own behind the test's back. The parent waits a bounded
// time, kills a hung child, and skips the test when it cannot create the namespace.
// "Filtered" steps first wait for the notification to arrive (the fd becomes readable), then
// expect drain() to count 0: silence because the monitor saw and dropped it, not deafness.
#include "tun/address_monitor.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

constexpr int kChildLimitMs = 60'000;
constexpr int kChangeMs = 2'000;  // for a notification to arrive
constexpr int kQuietMs = 200;     // to conclude that none is coming
constexpr const char* kIgnored = "p2p0";

void write_sysctl(const char* path, const char* value) {
  if (FILE* f = std::fopen(path, "w")) {
    std::fputs(value, f);
    std::fclose(f);
  }
}

// Runs `body` in a forked child inside a fresh network namespace with lo up and IPv6
// link-local generation and DAD off (see tests/support/netns.hpp); kChildLimitMs for all of it.
void in_fresh_netns(const std::function<void()>& body) {
  test::NetnsOptions options;
  options.loopback_up = true;
  options.setup = [] {
    write_sysctl("/proc/sys/net/ipv6/conf/default/addr_gen_mode", "1");  // no link-local
    write_sysctl("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
  };
  options.limit = std::chrono::milliseconds(kChildLimitMs);
  test::in_fresh_netns(body, options);
}

// Runs an `ip` command line inside the test's namespace.
void ip(const std::string& args) {
  std::string cmd = "ip " + args;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

bool readable(const AddressMonitor& m, int timeout_ms) {
  pollfd p{m.native_handle(), POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

// What the daemon does on readiness: drain, and treat an error as a test failure here.
std::size_t drain(AddressMonitor& m) {
  auto n = m.drain();
  EXPECT_TRUE(n) << n.error().message;
  return n ? *n : 0;
}

// Drains until kQuietMs pass without a notification (bounded: 100 rounds); returns the sum.
// Some notifications come from the kernel's link watcher a moment after the command that
// caused them returned (carrier and operational state), so one step is "until quiet".
std::size_t drain_until_quiet(AddressMonitor& m) {
  std::size_t total = 0;
  for (int i = 0; i < 100 && readable(m, kQuietMs); ++i) total += drain(m);
  return total;
}

// One step of a test: waits up to kChangeMs for the first notification, then counts what
// drain() reports until things are quiet. A drain right after that finds nothing.
std::size_t changes(AddressMonitor& m) {
  if (!readable(m, kChangeMs)) return 0;
  std::size_t n = drain(m) + drain_until_quiet(m);
  EXPECT_EQ(drain(m), 0u) << "a drain after a quiet spell found more";
  return n;
}

// A change the monitor must see arrive and then not count.
void expect_filtered(AddressMonitor& m, const char* what) {
  EXPECT_TRUE(readable(m, kChangeMs)) << what << ": no notification arrived at all";
  EXPECT_EQ(drain(m) + drain_until_quiet(m), 0u) << what << " was counted";
}

AddressMonitor open_monitor(std::string_view ignore = kIgnored) {
  auto m = AddressMonitor::open(ignore);
  if (!m) {
    ADD_FAILURE() << m.error().message;
    std::abort();  // in the child: the parent reports the signal
  }
  return std::move(*m);
}

// --- opening and moving -----------------------------------------------------------------------

TEST(AddressMonitor, OpensNonBlockingCloseOnExecAndMovesHarmlessly) {
  auto opened = AddressMonitor::open(kIgnored);
  ASSERT_TRUE(opened) << opened.error().message;
  AddressMonitor a = std::move(*opened);
  int fd = a.native_handle();
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);

  AddressMonitor b(std::move(a));
  EXPECT_EQ(b.native_handle(), fd);
  EXPECT_EQ(b.ignored_interface(), kIgnored);
  EXPECT_EQ(a.native_handle(), -1);  // NOLINT(bugprone-use-after-move): the point of the test
  auto moved_from = a.drain();
  ASSERT_FALSE(moved_from);
  EXPECT_EQ(moved_from.error().sys_errno, EBADF);
  EXPECT_TRUE(b.drain()) << "the monitor stopped working when moved";

  // Assigning over an open monitor closes its socket; self-assignment keeps it.
  auto other = AddressMonitor::open();
  ASSERT_TRUE(other);
  int other_fd = other->native_handle();
  *other = std::move(b);
  EXPECT_EQ(other->native_handle(), fd);
  EXPECT_EQ(fcntl(other_fd, F_GETFD), -1) << "the overwritten monitor's fd leaked";
  AddressMonitor& self = *other;
  *other = std::move(self);
  EXPECT_EQ(other->native_handle(), fd);
  EXPECT_TRUE(other->drain());
}

TEST(AddressMonitor, RejectsAnIgnoredNameNoInterfaceCanHave) {
  auto m = AddressMonitor::open("a-name-far-too-long-for-linux");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, TunErrc::kBadName);
  EXPECT_NE(m.error().message.find("a-name-far-too-long-for-linux"), std::string::npos);
}

// --- what counts ------------------------------------------------------------------------------

// One `ip` command and whether the monitor must count what it caused.
enum Expect { kCounted, kFiltered };
struct Step {
  std::string command;
  Expect expect;
  const char* what;
};

void run_steps(AddressMonitor& m, const std::vector<Step>& steps) {
  for (const Step& step : steps) {
    ip(step.command);
    if (step.expect == kCounted) {
      EXPECT_GT(changes(m), 0u) << step.what << " was not counted";
    } else {
      expect_filtered(m, step.what);
    }
  }
  EXPECT_FALSE(readable(m, kQuietMs)) << "notifications after the last change";
}

TEST(AddressMonitor, CountsAddressLinkAndDefaultRouteChanges) {
  in_fresh_netns([] {
    AddressMonitor m = open_monitor();
    EXPECT_FALSE(readable(m, kQuietMs)) << "notifications with nothing happening";
    EXPECT_EQ(drain(m), 0u);
    run_steps(
        m, {
               {"link add d0 type veth peer name d1", kCounted, "new links"},
               {"link set d0 mtu 1400", kFiltered, "an MTU change"},
               {"addr add 192.0.2.1/24 dev d0", kCounted, "IPv4 address added"},
               {"link set d0 up", kCounted, "link up (no carrier yet)"},
               {"link set d1 up", kCounted, "peer up, carrier on"},
               {"route add 198.51.100.0/24 via 192.0.2.254", kFiltered, "a non-default route"},
               {"route add default via 192.0.2.254 table 100", kFiltered, "default in table 100"},
               // A table id above 255 travels in RTA_TABLE only.
               {"route add default via 192.0.2.254 table 1000", kFiltered, "default in 1000"},
               {"route add default via 192.0.2.254", kCounted, "IPv4 default route added"},
               {"route del default", kCounted, "IPv4 default route removed"},
               {"-6 addr add 2001:db8::1/64 dev d0 nodad", kCounted, "IPv6 address added"},
               {"-6 addr add fe80::1/64 dev d0 nodad", kFiltered, "an IPv6 link-local address"},
               {"addr add 127.0.0.2/8 dev lo", kFiltered, "a host-scope address"},
               {"-6 route add default via 2001:db8::fe dev d0", kCounted, "IPv6 default added"},
               {"addr del 192.0.2.1/24 dev d0", kCounted, "IPv4 address removed"},
               {"link set d0 down", kCounted, "link down"},
               {"link del d0", kCounted, "links deleted"},
           });
  });
}

// The peer of d0 is the ignored interface: its own changes count for nothing, so a count
// when it goes down or up can only come from d0's IFF_RUNNING (carrier) flipping, a change
// the kernel announces without a change mask.
TEST(AddressMonitor, CountsCarrierChangesAndNothingOfTheIgnoredInterface) {
  in_fresh_netns([] {
    AddressMonitor m = open_monitor();
    const std::string peer = kIgnored;
    run_steps(m, {
                     {"link add d0 type veth peer name " + peer, kCounted, "d0 created"},
                     {"addr add 10.77.0.2/24 dev " + peer, kFiltered, "an ignored address"},
                     {"link set " + peer + " mtu 1300", kFiltered, "an ignored MTU change"},
                     // d0 is down, so its carrier stays off.
                     {"link set " + peer + " up", kFiltered, "the ignored interface going up"},
                     {"link set d0 up", kCounted, "d0 up"},
                     {"link set " + peer + " down", kCounted, "d0 losing its carrier"},
                     {"link set " + peer + " up", kCounted, "d0 getting its carrier back"},
                 });
  });
}

// The daemon's own TUN, created by TunDevice as the daemon does, before or after open().
TEST(AddressMonitor, IgnoresTheVpnOwnTunAndItsRoutes) {
  if (access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/net/tun";
  in_fresh_netns([] {
    ip("link add d0 type veth peer name d1");
    ip("link set d0 up");
    ip("link set d1 up");
    ip("addr add 192.0.2.1/24 dev d0");
    AddressMonitor before = open_monitor();

    auto tun = TunDevice::open(kIgnored, 1400, *Ipv4Prefix::parse("10.77.0.2/24"),
                               *Ipv6Prefix::parse("fd00:77::2/64"));
    ASSERT_TRUE(tun) << tun.error().message;
    expect_filtered(before, "the TUN being created, configured and brought up");
    AddressMonitor after = open_monitor();  // learns the TUN's index from its snapshot

    ip("route add default dev p2p0");
    ip("-6 route add default dev p2p0");
    ip("route add 0.0.0.0/1 dev p2p0");
    ip("addr add 10.77.0.9/24 dev p2p0");
    for (AddressMonitor* m : {&before, &after}) expect_filtered(*m, "routes/addresses via the TUN");

    ip("route replace default nexthop via 10.77.0.1 dev p2p0 nexthop via 10.77.0.3 dev p2p0");
    for (AddressMonitor* m : {&before, &after}) {
      expect_filtered(*m, "a multipath default route all through the TUN");
    }
    ip("route replace default nexthop via 10.77.0.1 dev p2p0 nexthop via 192.0.2.254 dev d0");
    for (AddressMonitor* m : {&before, &after}) {
      EXPECT_GT(changes(*m), 0u) << "a multipath default route partly through d0";
    }

    tun->close();
    ip("route add default via 192.0.2.254");  // the multipath route went with the TUN
    for (AddressMonitor* m : {&before, &after}) {
      EXPECT_GT(changes(*m), 0u) << "d0's default route after the TUN went away";
    }
  });
}

// --- lost notifications and hostile input -----------------------------------------------------

// A burst of host routes (which do not count) overflows a tiny receive buffer: the kernel
// drops notifications and says so with ENOBUFS. That alone must count, and is no error.
TEST(AddressMonitor, OverrunCountsAsAChangeAndIsNoError) {
  in_fresh_netns([] {
    ip("link add d0 type veth peer name d1");
    ip("link set d0 up");
    AddressMonitor roomy = open_monitor();
    AddressMonitor tiny = open_monitor();
    auto set_rcvbuf = [](const AddressMonitor& m, int bytes) {
      EXPECT_EQ(setsockopt(m.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes), 0)
          << std::strerror(errno);
    };
    set_rcvbuf(roomy, 4 << 20);
    set_rcvbuf(tiny, 0);  // the kernel rounds it up to its minimum, a couple of KiB

    FILE* batch = popen("ip -batch -", "w");
    ASSERT_NE(batch, nullptr);
    for (int i = 0; i < 300; ++i)
      std::fprintf(batch, "route add 10.2.%d.%d/32 dev d0\n", i / 200, i % 200);
    ASSERT_EQ(pclose(batch), 0);

    EXPECT_EQ(drain_until_quiet(roomy), 0u) << "host routes counted (the control)";
    EXPECT_GT(drain_until_quiet(tiny), 0u) << "an overrun was not counted";
    ip("addr add 192.0.2.1/24 dev d0");
    EXPECT_GT(changes(tiny), 0u) << "the monitor is deaf after an overrun";
  });
}

// Forged notifications: root in the namespace may send to the rtnetlink multicast groups,
// and the monitor receives exactly those bytes. NLM_F_REQUEST is left out, so the kernel
// itself ignores them.
class Forger {
 public:
  Forger() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
    EXPECT_GE(fd_, 0) << std::strerror(errno);
  }
  ~Forger() { ::close(fd_); }
  void send(const Bytes& datagram) {
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    to.nl_groups = RTMGRP_LINK;
    EXPECT_EQ(sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof to),
              static_cast<ssize_t>(datagram.size()))
        << std::strerror(errno);
  }

 private:
  int fd_;
};

template <class T>
Bytes bytes_of(const T& v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

void pad4(Bytes& b) {
  b.resize((b.size() + 3) & ~std::size_t{3}, 0);
}

// An attribute whose length field says `declared` (0: the true length).
Bytes attr(std::uint16_t type, const Bytes& data, std::uint16_t declared = 0) {
  nlattr h{static_cast<std::uint16_t>(declared ? declared : sizeof(nlattr) + data.size()), type};
  Bytes b = bytes_of(h);
  b.insert(b.end(), data.begin(), data.end());
  pad4(b);
  return b;
}

// Appends a message whose length field says `declared` (0: the true length).
void message(Bytes& datagram, std::uint16_t type, const Bytes& payload,
             std::uint32_t declared = 0) {
  nlmsghdr h{};
  h.nlmsg_len = declared ? declared : static_cast<std::uint32_t>(sizeof h + payload.size());
  h.nlmsg_type = type;
  Bytes b = bytes_of(h);
  b.insert(b.end(), payload.begin(), payload.end());
  pad4(b);
  datagram.insert(datagram.end(), b.begin(), b.end());
}

Bytes link_payload(int index, const Bytes& attrs = {}) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  Bytes b = bytes_of(ifi);
  b.insert(b.end(), attrs.begin(), attrs.end());
  return b;
}

Bytes address_payload(unsigned index) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_index = index;
  return bytes_of(ifa);
}

Bytes default_route_payload(const Bytes& attrs) {
  rtmsg rtm{};
  rtm.rtm_family = AF_INET;
  rtm.rtm_table = RT_TABLE_MAIN;
  Bytes b = bytes_of(rtm);
  b.insert(b.end(), attrs.begin(), attrs.end());
  return b;
}

Bytes name(const char* s, bool nul) {
  return Bytes(s, s + std::strlen(s) + (nul ? 1 : 0));
}

TEST(AddressMonitor, SkipsMalformedNotificationsAndCountsWellFormedOnes) {
  in_fresh_netns([] {
    AddressMonitor m = open_monitor();
    Forger forger;
    struct Case {
      const char* what;
      Bytes datagram;
      std::size_t expected;
    };
    std::vector<Case> cases;
    auto add = [&](const char* what, std::size_t expected, auto build) {
      Bytes d;
      build(d);
      cases.push_back({what, std::move(d), expected});
    };
    add("length beyond the datagram", 0,
        [](Bytes& d) { message(d, RTM_NEWADDR, bytes_of(ifaddrmsg{}), 1000); });
    add("length shorter than a header", 0, [](Bytes& d) {
      message(d, RTM_NEWADDR, bytes_of(ifaddrmsg{}));
      reinterpret_cast<nlmsghdr*>(d.data())->nlmsg_len = 8;
    });
    add("address payload too short", 0, [](Bytes& d) { message(d, RTM_NEWADDR, Bytes(4)); });
    add("link payload too short", 0, [](Bytes& d) { message(d, RTM_NEWLINK, Bytes(8)); });
    add("route payload too short", 0, [](Bytes& d) { message(d, RTM_NEWROUTE, Bytes(4)); });
    add("short address, then a good one", 1, [](Bytes& d) {
      message(d, RTM_NEWADDR, Bytes(4));
      message(d, RTM_DELADDR, address_payload(100001));
    });
    add("a message type nobody watches", 0,
        [](Bytes& d) { message(d, RTM_NEWNEIGH, Bytes(sizeof(ndmsg))); });
    add("new link, name attribute overrunning the message", 1, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100002, attr(IFLA_IFNAME, name("d9", true), 200)));
    });
    add("the same link again, flags unchanged", 0,
        [](Bytes& d) { message(d, RTM_NEWLINK, link_payload(100002)); });
    add("new link named like the ignored one but unterminated", 1, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100003, attr(IFLA_IFNAME, name(kIgnored, false))));
    });
    add("new link named exactly like the ignored one", 0, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100004, attr(IFLA_IFNAME, name(kIgnored, true))));
    });
    add("an address on that link", 0,
        [](Bytes& d) { message(d, RTM_NEWADDR, address_payload(100004)); });
    add("default route with a zero-length next hop", 1, [](Bytes& d) {
      rtnexthop hop{};
      hop.rtnh_ifindex = 100004;
      message(d, RTM_NEWROUTE, default_route_payload(attr(RTA_MULTIPATH, bytes_of(hop))));
    });
    add("default route with a next hop longer than its list", 1, [](Bytes& d) {
      rtnexthop hop{};
      hop.rtnh_len = 0xffff;
      hop.rtnh_ifindex = 100004;
      message(d, RTM_NEWROUTE, default_route_payload(attr(RTA_MULTIPATH, bytes_of(hop))));
    });
    add("default route, every next hop via the ignored link", 0, [](Bytes& d) {
      rtnexthop hop{sizeof(rtnexthop), 0, 0, 100004};
      Bytes hops = bytes_of(hop);
      Bytes second = bytes_of(hop);
      hops.insert(hops.end(), second.begin(), second.end());
      message(d, RTM_NEWROUTE, default_route_payload(attr(RTA_MULTIPATH, hops)));
    });
    add("default route whose table attribute is too short", 0, [](Bytes& d) {
      rtmsg rtm{};
      rtm.rtm_table = RT_TABLE_COMPAT;
      Bytes p = bytes_of(rtm);
      Bytes a = attr(RTA_TABLE, Bytes{RT_TABLE_MAIN, 0});
      p.insert(p.end(), a.begin(), a.end());
      message(d, RTM_NEWROUTE, p);
    });
    add("default route via an ordinary link", 1, [](Bytes& d) {
      std::uint32_t oif = 100002;
      message(d, RTM_NEWROUTE, default_route_payload(attr(RTA_OIF, bytes_of(oif))));
    });
    add("an IPv6 detail of a new link (not the link itself)", 0, [](Bytes& d) {
      Bytes p = link_payload(100006);
      reinterpret_cast<ifinfomsg*>(p.data())->ifi_family = AF_INET6;
      message(d, RTM_NEWLINK, p);
    });
    add("another new link", 1, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100005, attr(IFLA_IFNAME, name("eth9", true))));
    });
    add("that link renamed to the ignored name", 0, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100005, attr(IFLA_IFNAME, name(kIgnored, true))));
      message(d, RTM_NEWADDR, address_payload(100005));
    });
    add("and back: its addresses count again", 1, [](Bytes& d) {
      message(d, RTM_NEWLINK, link_payload(100005, attr(IFLA_IFNAME, name("eth9", true))));
      message(d, RTM_NEWADDR, address_payload(100005));
    });
    add("the ignored link deleted", 0,
        [](Bytes& d) { message(d, RTM_DELLINK, link_payload(100004)); });
    add("trailing garbage after a good message", 1, [](Bytes& d) {
      message(d, RTM_DELLINK, link_payload(100002));
      d.insert(d.end(), {0xde, 0xad, 0xbe});
    });

    for (const Case& c : cases) {
      forger.send(c.datagram);
      ASSERT_TRUE(readable(m, kChangeMs)) << c.what << ": not delivered";
      EXPECT_EQ(drain(m), c.expected) << c.what;
    }
  });
}

// Links are remembered up to kMaxTrackedLinks; a flood of made-up ones costs no more memory
// and every message about a link beyond the table counts.
TEST(AddressMonitor, AFloodOfLinksStaysBounded) {
  in_fresh_netns([] {
    AddressMonitor m = open_monitor();
    auto nl = Rtnetlink::open();
    ASSERT_TRUE(nl);
    auto existing = nl->links();
    ASSERT_TRUE(existing);
    const std::size_t kFlood = AddressMonitor::kMaxTrackedLinks + 300;
    const std::size_t kPerDatagram = 100;
    Forger forger;
    auto flood = [&] {
      std::size_t counted = 0;
      for (std::size_t first = 0; first < kFlood; first += kPerDatagram) {
        Bytes d;
        for (std::size_t i = first; i < std::min(kFlood, first + kPerDatagram); ++i) {
          message(d, RTM_NEWLINK, link_payload(static_cast<int>(200000 + i)));
        }
        forger.send(d);
        if (readable(m, kChangeMs)) counted += drain(m);
      }
      return counted;
    };
    EXPECT_EQ(flood(), kFlood) << "every new link counts";
    std::size_t remembered = AddressMonitor::kMaxTrackedLinks - existing->size();
    EXPECT_EQ(flood(), kFlood - remembered) << "links beyond the table count every time";
  });
}

}  // namespace
}  // namespace p2p::tun
