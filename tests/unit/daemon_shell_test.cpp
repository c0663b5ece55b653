// The daemons' shells: identity loading at start-up (every refusal the daemon must make), and
// p2pvpnd's NodeShell with p2pvpn-coordinator's CoordinatorShell in one process, on loopback
// inside a private network namespace: registration, goodbye, the control-socket commands,
// and the TUN and socket files disappearing on stop.
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "config/startup.hpp"
#include "coordinator/shell/coordinator_shell.hpp"
#include "crypto/keys.hpp"
#include "daemon/shell/node_shell.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/sim_net.hpp"
#include "tests/support/temp_dir.hpp"
#include "tun/netlink.hpp"

namespace p2p {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

UnixTime wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct IdentityFiles {
  fs::path key, cert;
};

IdentityFiles write_identity(const fs::path& dir, const std::string& name,
                             const crypto::Identity& id) {
  IdentityFiles f{dir / (name + ".key"), dir / (name + ".crt")};
  auto pair = crypto::X25519KeyPair::from_private(id.key.private_key.clone());
  EXPECT_TRUE(crypto::save_private_key(f.key, pair, true).has_value());
  EXPECT_TRUE(crypto::save_certificate(f.cert, id.certificate, true).has_value());
  return f;
}

class LoadIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::init_sodium();
    ASSERT_TRUE(crypto::save_ca_certificate(ca_file_, ca_.cert).has_value());
  }
  std::string refusal(const IdentityFiles& f, crypto::Role role = crypto::Role::node,
                      std::vector<std::string> revoked = {}) {
    auto r = config::load_identity(f.key, f.cert, ca_file_, role, revoked, now_);
    return r ? std::string("accepted") : r.error();
  }

  UnixTime now_ = wall_now();
  test::TempDir dir_{"p2p-shell-test"};
  sim::TestCa ca_{now_};
  fs::path ca_file_ = dir_ / "ca.crt";
};

TEST_F(LoadIdentityTest, AcceptsAMatchingValidIdentity) {
  auto id = ca_.issue("alpha", "10.77.0.2/24");
  auto f = write_identity(dir_.path(), "alpha", id);
  auto loaded = config::load_identity(f.key, f.cert, ca_file_, crypto::Role::node, {}, now_);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  EXPECT_EQ(loaded->identity.certificate, id.certificate);
  EXPECT_EQ(loaded->identity.key.public_key, id.key.public_key);
  EXPECT_EQ(loaded->ca, ca_.cert);
}

TEST_F(LoadIdentityTest, RefusesEveryBadIdentityWithAReason) {
  auto alpha = write_identity(dir_.path(), "alpha", ca_.issue("alpha", "10.77.0.2/24"));
  auto beta = write_identity(dir_.path(), "beta", ca_.issue("beta", "10.77.0.3/24"));
  // The key of another node.
  auto mixed = IdentityFiles{beta.key, alpha.cert};
  EXPECT_NE(refusal(mixed).find("does not match"), std::string::npos) << refusal(mixed);
  // A certificate from another network's CA.
  sim::TestCa other(now_, "other-ca");
  auto foreign = write_identity(dir_.path(), "foreign", other.issue("alpha", "10.77.0.2/24"));
  EXPECT_NE(refusal(foreign).find("wrong CA"), std::string::npos) << refusal(foreign);
  // Expired, and not yet valid.
  auto old = write_identity(
      dir_.path(), "old",
      ca_.issue("old", "10.77.0.4/24", crypto::Role::node, now_ - 7200, now_ - 3600));
  EXPECT_NE(refusal(old).find("expired"), std::string::npos) << refusal(old);
  // A coordinator certificate where a node one is needed, and the other way round.
  auto coord = write_identity(dir_.path(), "coord",
                              ca_.issue("coord", "10.77.0.1/24", crypto::Role::coordinator));
  EXPECT_NE(refusal(coord), "accepted");
  EXPECT_NE(refusal(alpha, crypto::Role::coordinator), "accepted");
  EXPECT_EQ(refusal(coord, crypto::Role::coordinator), "accepted");
  // Revoked.
  auto cert = crypto::load_certificate(alpha.cert);
  ASSERT_TRUE(cert.has_value());
  auto revoked = refusal(alpha, crypto::Role::node, {crypto::fingerprint(*cert)});
  EXPECT_NE(revoked.find("revoked"), std::string::npos) << revoked;
  // A key file others can read.
  fs::permissions(alpha.key,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  EXPECT_NE(refusal(alpha), "accepted");
  // Missing files name themselves.
  EXPECT_NE(refusal(IdentityFiles{dir_ / "nope.key", alpha.cert}), "accepted");
  auto missing = refusal(IdentityFiles{beta.key, dir_ / "nope.crt"});
  EXPECT_NE(missing.find("nope.crt"), std::string::npos) << missing;
}

// ---------------------------------------------------------------------------------------
// Both shells in a private network namespace (root only).

// One request on a fresh connection to a control socket; the answer, or null on failure.
json ask(const fs::path& socket_path, const json& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, socket_path.c_str(), sizeof sa.sun_path - 1);
  std::string line = request.dump() + "\n", in;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    return nullptr;
  }
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (in.find('\n') == std::string::npos && ::poll(&p, 1, 10'000) > 0) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

// Asks until `done(answer)` holds or 5 s passed.
bool eventually(const fs::path& socket_path, const json& request,
                const std::function<bool(const json&)>& done) {
  for (int i = 0; i < 50; ++i) {
    if (auto a = ask(socket_path, request); !a.is_null() && done(a)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Polls `done` every 10 ms until it holds or `limit` passed.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
  for (auto end = std::chrono::steady_clock::now() + limit; !done();) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Runs `body` in a forked child inside a fresh network namespace with loopback up (see
// tests/support/netns.hpp); a child still running after 60 s is killed and the test fails.
void in_namespace(const std::function<void()>& body) {
  test::NetnsOptions options;
  options.loopback_up = true;
  options.limit = 60s;
  test::in_fresh_netns(body, options);
}

TEST(Shells, NodeRegistersAnswersControlRequestsAndCleansUp) {
  if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/net/tun";
  }
  in_namespace([] {
    crypto::init_sodium();
    test::TempDir dir("p2p-shells");
    const UnixTime now = wall_now();
    sim::TestCa ca(now);
    ASSERT_TRUE(crypto::save_ca_certificate(dir / "ca.crt", ca.cert).has_value());
    auto coord_files = write_identity(dir.path(), "coord",
                                      ca.issue("coord", "10.77.0.1/24", crypto::Role::coordinator));
    auto node_files = write_identity(dir.path(), "n1", ca.issue("n1", "10.77.0.2/24"));
    const Ipv4 loopback = *Ipv4::parse("127.0.0.1");

    boost::asio::io_context io;
    config::CoordinatorConfig cc;
    cc.key = coord_files.key;
    cc.cert = coord_files.cert;
    cc.ca = dir / "ca.crt";
    cc.listen = Endpoint{loopback, 0};
    cc.control_socket = dir / "coord.sock";
    auto coord_id = config::load_identity(cc.key, cc.cert, cc.ca, crypto::Role::coordinator, {}, now);
    ASSERT_TRUE(coord_id.has_value()) << coord_id.error();
    auto coordinator =
        coord::CoordinatorShell::create(io, cc, std::move(*coord_id),
                                        {config::make_logger("coord", config::LogLevel::warn),
                                         config::make_logger("ctl", config::LogLevel::warn)});
    ASSERT_TRUE(coordinator.has_value()) << coordinator.error();

    config::MeshConfig mc;
    mc.node = {node_files.key, node_files.cert};
    mc.ca = dir / "ca.crt";
    mc.coordinators = {(*coordinator)->endpoint()};
    mc.tun = {"p2pshell0", 1400};
    mc.listen = {0, loopback};
    mc.control_socket = dir / "run" / "n1.sock";
    auto logger = config::make_logger("node", config::LogLevel::warn);
    // The NAT logger's messages are kept: what the shell did about network news.
    auto nat_sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
    nat_sink->set_pattern("%v");
    auto nat_logger = std::make_shared<spdlog::logger>("nat", nat_sink);
    nat_logger->set_level(spdlog::level::debug);
    daemon::NodeLoggers logs{logger, logger, logger, nat_logger};
    auto node_id = config::load_identity(mc.node.key, mc.node.cert, mc.ca, crypto::Role::node, {}, now);
    ASSERT_TRUE(node_id.has_value()) << node_id.error();
    auto node = daemon::NodeShell::create(io, mc, std::move(*node_id), logs);
    ASSERT_TRUE(node.has_value()) << node.error();
    // A second daemon with the same TUN name is refused.
    auto twin_config = mc;
    twin_config.control_socket = mc.control_socket.string() + ".twin";
    auto again = config::load_identity(mc.node.key, mc.node.cert, mc.ca, crypto::Role::node, {}, now);
    auto twin = daemon::NodeShell::create(io, twin_config, std::move(*again), logs);
    ASSERT_FALSE(twin.has_value());
    EXPECT_NE(twin.error().find("p2pshell0"), std::string::npos) << twin.error();
    // One on the same control socket is refused before it raises its TUN.
    twin_config = mc;
    twin_config.tun.name = "p2pshell9";
    again = config::load_identity(mc.node.key, mc.node.cert, mc.ca, crypto::Role::node, {}, now);
    twin = daemon::NodeShell::create(io, twin_config, std::move(*again), logs);
    ASSERT_FALSE(twin.has_value());
    EXPECT_NE(twin.error().find(mc.control_socket.string()), std::string::npos) << twin.error();
    EXPECT_EQ(if_nametoindex("p2pshell9"), 0u) << "the TUN was raised before the socket check";

    (*coordinator)->start();
    (*node)->start();
    std::thread loop([&] { io.run(); });
    const std::string node_endpoint = (*node)->udp_endpoint().to_string();

    // Registered, and the coordinator sees the node at its socket's address.
    EXPECT_TRUE(eventually(mc.control_socket, {{"cmd", "status"}}, [](const json& a) {
      return a["node"]["coordinator"]["state"] == "registered";
    }));
    auto status = ask(mc.control_socket, {{"cmd", "status"}});
    EXPECT_EQ(status["node"]["public_endpoint"], node_endpoint);
    EXPECT_EQ(status["node"]["local_endpoints"], json::array({node_endpoint}));
    auto registry = ask(cc.control_socket, {{"cmd", "status"}});
    ASSERT_EQ(registry["nodes"].size(), 1u) << registry.dump();
    EXPECT_EQ(registry["nodes"][0]["name"], "n1");
    EXPECT_EQ(registry["nodes"][0]["observed"], node_endpoint);
    EXPECT_GT(registry["counters"]["stun_answered"], 0);  // discovery ran at start
    EXPECT_EQ(ask(cc.control_socket, {{"cmd", "reboot"}})["error"], "unknown command");

    // netcheck re-runs discovery against the coordinator and answers with the report.
    auto netcheck = ask(mc.control_socket, {{"cmd", "netcheck"}});
    EXPECT_EQ(netcheck["ok"], true) << netcheck.dump();
    EXPECT_EQ(netcheck["report"]["public_endpoint"], node_endpoint);
    EXPECT_EQ(netcheck["report"]["server_rfc5780"], false);  // no alternate address here
    EXPECT_TRUE(netcheck["report"]["description"].is_string());
    EXPECT_EQ(netcheck["report"]["server"], (*coordinator)->endpoint().to_string());

    // netcheck against another STUN server: a second coordinator with an RFC 5780 second
    // address. Two asks at once are both answered; the node's own NAT state stays as it was.
    config::CoordinatorConfig sc = cc;
    sc.listen = *Endpoint::parse("127.0.0.3:3478");
    sc.alternate_address = *Ipv4::parse("127.0.0.4");
    sc.alternate_port = 3479;
    sc.control_socket = dir / "stun.sock";
    auto stun_id = config::load_identity(sc.key, sc.cert, sc.ca, crypto::Role::coordinator, {}, now);
    ASSERT_TRUE(stun_id.has_value()) << stun_id.error();
    auto stun_server =
        coord::CoordinatorShell::create(io, sc, std::move(*stun_id),
                                        {config::make_logger("stun", config::LogLevel::warn),
                                         config::make_logger("ctl", config::LogLevel::warn)});
    ASSERT_TRUE(stun_server.has_value()) << stun_server.error();
    boost::asio::post(io, [&] { (*stun_server)->start(); });
    const auto nat_before = ask(mc.control_socket, {{"cmd", "status"}})["node"]["nat"];
    const json other{{"cmd", "netcheck"}, {"server", "127.0.0.3:3478"}};
    json first_answer;
    std::thread first([&] { first_answer = ask(mc.control_socket, other); });
    auto second_answer = ask(mc.control_socket, other);
    first.join();
    for (const auto& answer : {first_answer, second_answer}) {
      ASSERT_EQ(answer["ok"], true) << answer.dump();
      EXPECT_EQ(answer["report"]["server"], "127.0.0.3:3478");
      EXPECT_EQ(answer["report"]["server_rfc5780"], true);
      EXPECT_EQ(answer["report"]["behind_nat"], false);
      EXPECT_EQ(answer["report"]["filtering"], "endpoint-independent");
      EXPECT_EQ(answer["report"]["type"], "open internet");
    }
    auto stun_status = ask(sc.control_socket, {{"cmd", "status"}});
    EXPECT_GT(stun_status["counters"]["stun_answered"], 0);
    EXPECT_EQ(ask(mc.control_socket, {{"cmd", "status"}})["node"]["nat"], nat_before);
    for (const json& bad : {json("stun.example.org:3478"), json(3478), json("0.0.0.0:3478"),
                            json("127.0.0.3:0"), json("[::1]:3478")}) {
      auto answer = ask(mc.control_socket, {{"cmd", "netcheck"}, {"server", bad}});
      EXPECT_EQ(answer["ok"], false) << bad.dump();
      EXPECT_TRUE(answer["error"].is_string());
    }
    boost::asio::post(io, [&] { (*stun_server)->stop(); });

    auto ping = ask(mc.control_socket, {{"cmd", "ping"}, {"target", "nobody"}});
    EXPECT_EQ(ping["ok"], false);
    EXPECT_TRUE(ping["error"].is_string());
    EXPECT_EQ(ask(mc.control_socket, {{"cmd", "connect"}, {"target", "10.77.0.9"}})["ok"], true);
    EXPECT_EQ(ask(mc.control_socket, {{"cmd", "connect"}})["ok"], false);
    EXPECT_EQ(ask(mc.control_socket, {{"cmd", "frobnicate"}})["error"], "unknown command");
    EXPECT_EQ(ask(mc.control_socket, {{"cmd", 7}})["error"], "unknown command");

    // A network change (here a new interface with an address, in this test's namespace)
    // re-runs the node's own discovery at once, not at its next scheduled run in 10 min.
    const auto answered = [&] {
      return ask(cc.control_socket, {{"cmd", "status"}})["counters"]["stun_answered"].get<int>();
    };
    const int before_change = answered();
    ASSERT_EQ(std::system("ip link add p2pveth0 type veth peer name p2pveth1 && "
                          "ip addr add 192.0.2.1/24 dev p2pveth0 && ip link set p2pveth0 up"),
              0);
    EXPECT_TRUE(eventually(cc.control_socket, {{"cmd", "status"}}, [&](const json& a) {
      return a["counters"]["stun_answered"].get<int>() > before_change;
    })) << "no discovery after the network changed";
    // Changes to the node's own TUN are its own doing, not a network change. An address on the
    // TUN, then one on the veth (a change: the marker). Netlink news arrive in order, so when
    // the shell acts on the marker it has read the TUN's news already: had that counted, there
    // would be two changes in the "network news" the shell logs, not one.
    const auto nat_lines_from = [&](std::size_t first) {
      auto lines = nat_sink->last_formatted();
      lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(
                                                     std::min(first, lines.size())));
      for (auto& line : lines) {
        if (!line.empty() && line.back() == '\n') line.pop_back();
      }
      return lines;
    };
    const std::size_t mark = nat_sink->last_formatted().size();
    ASSERT_EQ(std::system("ip addr add 10.99.0.1/32 dev p2pshell0 && "
                          "ip addr add 198.18.0.1/32 dev p2pveth0"),
              0);
    EXPECT_TRUE(wait_until([&] {
      for (const auto& line : nat_lines_from(mark))
        if (line == "network changed, re-running NAT discovery") return true;
      return false;
    })) << "the marker was not acted on; all: " << ::testing::PrintToString(nat_lines_from(0));
    int news = 0;
    for (const auto& line : nat_lines_from(mark)) {
      int n = 0;
      if (std::sscanf(line.c_str(), "network news: %d change(s)", &n) == 1) news += n;
    }
    EXPECT_EQ(news, 1) << "a change to the TUN counted as a network change";

    // Stopping the node says goodbye: the coordinator forgets it at once.
    boost::asio::post(io, [&] { (*node)->stop(); });
    EXPECT_TRUE(eventually(cc.control_socket, {{"cmd", "status"}},
                           [](const json& a) { return a["nodes"].empty(); }));
    EXPECT_FALSE(fs::exists(mc.control_socket));
    auto nl = tun::Rtnetlink::open();
    ASSERT_TRUE(nl.has_value());
    auto link = nl->link("p2pshell0");
    ASSERT_FALSE(link.has_value());
    EXPECT_EQ(link.error().code, tun::TunErrc::kNoSuchInterface);

    boost::asio::post(io, [&] { (*coordinator)->stop(); });
    loop.join();  // both shells stopped: the io_context ran out of work
    EXPECT_FALSE(fs::exists(cc.control_socket));
  });
}

}  // namespace
}  // namespace p2p
