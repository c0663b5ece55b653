// p2pvpnctl status / ping / netcheck driven as a user would: the built binary, run against a
// fake p2pvpnd (a unix socket server thread in a temp dir answering canned JSON lines), with
// every wait bounded. Covers the table and --json output, ping replies, losses and timeouts,
// netcheck, a daemon that refuses or talks nonsense, and no daemon at all.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/status/status_json.hpp"
#include "tests/support/spawn.hpp"

namespace p2p::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const fs::path kCtl = fs::path(P2P_BINARY_DIR) / "daemon" / "p2pvpnctl";

// What the fake daemon does with one request: answer with this line, say nothing and hold the
// connection open (nullopt), or close without answering ("").
using Handler = std::function<std::optional<std::string>(const json& request)>;

// A unix stream socket server on its own thread: one request line per connection, answered by
// the handler. Connections it stays silent on are kept open until it stops.
class FakeDaemon {
 public:
  FakeDaemon(fs::path path, Handler handler)
      : path_(std::move(path)), handler_(std::move(handler)) {
    listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_, 16) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0)
      throw std::runtime_error("fake daemon: cannot listen on " + path_.string());
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    (void)!::write(stop_[1], "x", 1);
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listen_);
    ::close(stop_[0]);
    ::close(stop_[1]);
    fs::remove(path_);
  }

  std::vector<json> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    for (;;) {
      pollfd p[2] = {{listen_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents) return;
      const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) handle(fd);
    }
  }

  // Reads one line (bounded by 2 s), answers it.
  void handle(int fd) {
    std::string line;
    const auto deadline = SteadyClock::now() + 2s;
    char c = 0;
    while (line.size() < 65536 && SteadyClock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      if (::read(fd, &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    const json request = json::parse(line, nullptr, false);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    const auto answer = handler_(request);
    if (!answer) {
      held_.push_back(fd);
      return;
    }
    if (!answer->empty()) {
      const std::string out = *answer + "\n";
      (void)!::write(fd, out.data(), out.size());
    }
    ::close(fd);
  }

  fs::path path_;
  Handler handler_;
  int listen_ = -1;
  int stop_[2] = {-1, -1};
  std::vector<int> held_;
  mutable std::mutex mutex_;
  std::vector<json> requests_;
  std::thread thread_;
};

using Result = test::RunResult;

#define EXPECT_CONTAINS(haystack, needle)                                                       \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                        << (haystack)

const std::string kNetcheckProgress =
    "running NAT discovery against the node's STUN server (a few seconds)...\n";

class CtlDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kCtl)) << kCtl << " is not built (ninja p2pvpnctl)";
    std::string tmpl = (fs::temp_directory_path() / "p2p-ctld-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    socket_ = dir_ / "p2pvpnd.sock";
  }
  void TearDown() override {
    daemon_.reset();
    fs::remove_all(dir_);
  }

  void serve(Handler h) {
    daemon_.reset();  // frees the socket path first
    daemon_ = std::make_unique<FakeDaemon>(socket_, std::move(h));
  }
  void serve_line(std::string line) {
    serve([line](const json&) { return std::optional<std::string>(line); });
  }

  // Runs p2pvpnctl in dir_; killed (and the test failed) if it is still running after 20 s.
  Result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), kCtl.string());
    return test::run(args, dir_, 20s);
  }

  // p2pvpnctl CMD --socket <the fake daemon's socket> ARGS...
  Result ask(const std::string& cmd, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {cmd, "--socket", socket_.string()});
    return ctl(std::move(args));
  }

  // dir_/mesh.yaml naming the fake daemon's socket, with a CA and home-pc's key beside it.
  void write_mesh_yaml() {
    ASSERT_EQ(ctl({"ca", "init", "--dir", "ca"}).code, 0);
    ASSERT_EQ(
        ctl({"issue", "--ca", "ca", "--name", "home-pc", "--ip", "10.77.0.2/24", "--out", "."})
            .code,
        0);
    std::ofstream yaml(dir_ / "mesh.yaml");
    yaml << "node: { key: home-pc.key, cert: home-pc.crt }\n"
            "ca: ca/ca.crt\n"
            "coordinators: [203.0.113.10:7400]\n"
            "control_socket: "
         << socket_.string() << "\n";
  }

  std::vector<json> requests() const { return daemon_ ? daemon_->requests() : std::vector<json>{}; }

  fs::path dir_, socket_;
  std::unique_ptr<FakeDaemon> daemon_;
};

core::NodeStatus two_peer_status() {
  core::NodeStatus s;
  s.name = "home-pc";
  s.vip = Ipv4Prefix::parse("10.77.0.2/24").value();
  s.public_endpoint = Endpoint::parse("203.0.113.5:41641");
  s.nat = {wire::NatType::kFullCone, wire::PortAllocation::kPreserving, 0};
  s.coordinator = Endpoint::parse("203.0.113.10:7400");
  s.coordinator_state = "registered";
  core::PeerStatus laptop;
  laptop.name = "laptop";
  laptop.vip = Ipv4::parse("10.77.0.3").value();
  laptop.state = "connected";
  laptop.path = "direct";
  laptop.endpoint = Endpoint::parse("198.51.100.7:5000");
  laptop.since_handshake = 12s;
  laptop.rtt = 3100us;
  laptop.bytes_in = 2048;
  core::PeerStatus phone = laptop;
  phone.name = "phone";
  phone.vip = Ipv4::parse("10.77.0.4").value();
  phone.path = "relay";
  phone.endpoint = s.coordinator;
  phone.relay_reason = "punching timed out";
  phone.rtt.reset();
  s.peers = {laptop, phone};
  return s;
}

TEST_F(CtlDaemon, EveryDaemonCommandHasHelp) {
  for (const char* cmd : {"status", "ping", "netcheck"}) {
    const Result r = ctl({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_CONTAINS(r.out, "Usage:");
    EXPECT_CONTAINS(r.out, "--socket");
    EXPECT_CONTAINS(r.out, "--config");
    EXPECT_CONTAINS(r.out, "/run/p2pvpnd.sock");
  }
  EXPECT_CONTAINS(ctl({"status", "--help"}).out, "--json");
  EXPECT_CONTAINS(ctl({"netcheck", "--help"}).out, "--json");
  EXPECT_CONTAINS(ctl({"ping", "--help"}).out, "--count");
  EXPECT_CONTAINS(ctl({"--help"}).out, "netcheck");
  // Usage errors: no target, a count of zero, both --socket and -c.
  EXPECT_NE(ctl({"ping"}).code, 0);
  EXPECT_NE(ctl({"ping", "laptop", "--count", "0"}).code, 0);
  EXPECT_NE(ctl({"status", "--socket", "a", "-c", "b"}).code, 0);
}

TEST_F(CtlDaemon, StatusTable) {
  const json status = status_to_json(two_peer_status());
  serve_line(status.dump());
  const Result r = ask("status");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, render_status(status).value());
  EXPECT_CONTAINS(r.out, "home-pc 10.77.0.2/24, public 203.0.113.5:41641, NAT full cone");
  EXPECT_CONTAINS(r.out, "laptop");
  EXPECT_CONTAINS(r.out, "relay (punching timed out)");
  EXPECT_CONTAINS(r.out, "12s ago");
  EXPECT_CONTAINS(r.out, "3.1 ms");
  EXPECT_CONTAINS(r.out, "2.0 KiB");
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(requests().size(), 1u);
  EXPECT_EQ(requests()[0], json({{"cmd", "status"}}));
}

TEST_F(CtlDaemon, StatusJsonIsTheDaemonsDocument) {
  const json status = status_to_json(two_peer_status());
  serve_line(status.dump());
  const Result r = ask("status", {"--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), status);
}

TEST_F(CtlDaemon, StatusFromADaemonThatRefusesOrTalksNonsense) {
  serve([](const json&) -> std::optional<std::string> {
    return R"({"ok":false,"error":"shutting down"})";
  });
  Result r = ask("status");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: shutting down\n");
  EXPECT_EQ(r.out, "");

  serve_line("this is not json");
  r = ask("status");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "answer is not a JSON object");

  json v2 = status_to_json(two_peer_status());
  v2["version"] = 2;
  serve_line(v2.dump());
  r = ask("status");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "status version 2 is not supported");
  EXPECT_EQ(ask("status", {"--json"}).code, 0);  // --json prints what it got

  json broken = status_to_json(two_peer_status());
  broken["peers"][0].erase("vip");
  serve_line(broken.dump());
  r = ask("status");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "malformed status");

  serve_line("");  // hangs up without a word
  r = ask("status");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "closed the connection without answering");
}

TEST_F(CtlDaemon, StatusTimesOutOnASilentDaemon) {
  serve([](const json&) { return std::nullopt; });
  const Result r = ask("status", {"--timeout", "0.3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "error: p2pvpnd did not answer within 0.3 s (socket " + socket_.string() + ")\n");
  EXPECT_LT(r.took, 5s);
}

TEST_F(CtlDaemon, PingEveryProbeAnswered) {
  std::atomic<int> n = 0;
  serve([&n](const json&) -> std::optional<std::string> {
    const double rtt[] = {1.26, 2.5, 0.75};
    return json({{"ok", true}, {"rtt_ms", rtt[n++ % 3]}, {"path", "direct 198.51.100.7:5000"}})
        .dump();
  });
  const Result r = ask("ping", {"laptop", "--interval", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "PING laptop\n"
            "reply from laptop: seq=1 time=1.3 ms path=direct 198.51.100.7:5000\n"
            "reply from laptop: seq=2 time=2.5 ms path=direct 198.51.100.7:5000\n"
            "reply from laptop: seq=3 time=0.75 ms path=direct 198.51.100.7:5000\n"
            "\n--- laptop ping statistics ---\n"
            "3 probes sent, 3 replies, 0% loss\n"
            "rtt min/avg/max = 0.750/1.503/2.500 ms\n");
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 3u);  // default --count 3
  for (const auto& q : reqs) EXPECT_EQ(q, json({{"cmd", "ping"}, {"target", "laptop"}}));
}

TEST_F(CtlDaemon, PingSomeProbesLost) {
  std::atomic<int> n = 0;
  serve([&n](const json&) -> std::optional<std::string> {
    if (n++ == 1) return R"({"ok":false,"error":"timeout"})";
    return R"({"ok":true,"rtt_ms":4,"path":"relay 203.0.113.10:7400"})";
  });
  const Result r = ask("ping", {"10.77.0.4", "-n", "4", "-i", "0.05"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "reply from 10.77.0.4: seq=1 time=4.0 ms path=relay 203.0.113.10:7400");
  EXPECT_CONTAINS(r.out, "no reply from 10.77.0.4: seq=2 timeout\n");
  EXPECT_CONTAINS(r.out, "4 probes sent, 3 replies, 25% loss");
  EXPECT_EQ(requests().size(), 4u);
  EXPECT_GE(r.took, 150ms);  // three intervals of 0.05 s between four probes
}

TEST_F(CtlDaemon, PingEveryProbeFailedExitsOne) {
  serve([](const json&) -> std::optional<std::string> {
    return R"({"ok":false,"error":"no peer named ghost"})";
  });
  const Result r = ask("ping", {"ghost", "--count", "2", "--interval", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "no reply from ghost: seq=1 no peer named ghost\n");
  EXPECT_CONTAINS(r.out, "no reply from ghost: seq=2 no peer named ghost\n");
  EXPECT_CONTAINS(r.out, "2 probes sent, 0 replies, 100% loss\n");
  EXPECT_EQ(r.out.find("rtt min"), std::string::npos);
}

TEST_F(CtlDaemon, PingTimesOutOnASilentDaemon) {
  serve([](const json&) { return std::nullopt; });
  const Result r = ask("ping", {"laptop", "-n", "2", "-i", "0", "--timeout", "0.3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "no reply from laptop: seq=1 p2pvpnd did not answer within 0.3 s");
  EXPECT_CONTAINS(r.out, "2 probes sent, 0 replies, 100% loss");
  EXPECT_LT(r.took, 5s);
}

TEST_F(CtlDaemon, PingAnswerWithoutRttIsAnError) {
  serve_line(R"({"ok":true,"path":"direct 1.2.3.4:5"})");
  const Result r = ask("ping", {"laptop", "-i", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "lacks rtt_ms or path");
}

nat::Report cone_report() {
  nat::Report r;
  r.server = *Endpoint::parse("203.0.113.10:7400");
  r.public_endpoint = Endpoint::parse("203.0.113.5:41641");
  r.behind_nat = true;
  r.port_preserved = true;
  r.server_rfc5780 = true;
  r.mapping = nat::Behaviour::kEndpointIndependent;
  r.filtering = nat::Behaviour::kAddressAndPortDependent;
  r.hairpinning = true;
  r.type = nat::NatType::kPortRestrictedCone;
  return r;
}

TEST_F(CtlDaemon, Netcheck) {
  const nat::Report report = cone_report();
  serve_line(json({{"ok", true}, {"report", report_to_json(report)}}).dump());
  Result r = ask("netcheck");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, nat::describe(report));
  EXPECT_CONTAINS(r.out, "port-restricted cone");
  EXPECT_CONTAINS(r.out, "203.0.113.5:41641");
  EXPECT_CONTAINS(r.out, "hairpinning:     yes");
  EXPECT_EQ(requests().at(0), json({{"cmd", "netcheck"}}));

  r = ask("netcheck", {"--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), report_to_json(report));
}

// A server that never answered: what is known is said, and the command fails.
TEST_F(CtlDaemon, NetcheckWithoutAnAnswer) {
  nat::Report report;
  report.server = Endpoint::parse("198.51.100.7:3478").value();
  report.udp_blocked = true;
  report.type = wire::NatType::kUdpBlocked;
  serve_line(json({{"ok", true}, {"report", report_to_json(report)}}).dump());
  Result r = ask("netcheck", {"--server", "198.51.100.7:3478"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "no answer from 198.51.100.7:3478");
  EXPECT_EQ(r.out.find("UDP blocked"), std::string::npos) << r.out;
  EXPECT_EQ(r.err,
            "running NAT discovery against 198.51.100.7:3478 (a few seconds)...\n"
            "error: no answer from 198.51.100.7:3478\n");
  r = ask("netcheck", {"--json"});
  EXPECT_EQ(r.code, 1);
}

TEST_F(CtlDaemon, NetcheckAgainstAnotherServer) {
  const nat::Report report = cone_report();
  serve_line(json({{"ok", true}, {"report", report_to_json(report)}}).dump());
  Result r = ask("netcheck", {"--server", "198.51.100.7:3478"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(requests().at(0), json({{"cmd", "netcheck"}, {"server", "198.51.100.7:3478"}}));
  EXPECT_CONTAINS(r.out, "STUN server:     ");

  // Not an endpoint: refused before asking the daemon.
  for (const char* bad : {"198.51.100.7", "stun.example.org:3478", "198.51.100.7:0"}) {
    r = ask("netcheck", {"--server", bad});
    EXPECT_NE(r.code, 0) << bad;  // a usage error
    EXPECT_CONTAINS(r.err, "expected IP:PORT");
  }
  EXPECT_EQ(requests().size(), 1u);
}

TEST_F(CtlDaemon, NetcheckFailures) {
  serve_line(R"({"ok":false,"error":"discovery already running"})");
  Result r = ask("netcheck");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, kNetcheckProgress + "error: discovery already running\n");

  serve_line(R"({"ok":true})");
  r = ask("netcheck");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "has no report");

  serve([](const json&) { return std::nullopt; });
  r = ask("netcheck", {"--timeout", "0.2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "did not answer within 0.2 s");
}

TEST_F(CtlDaemon, NoDaemonRunning) {
  for (const char* cmd : {"status", "netcheck"}) {
    const Result r = ask(cmd);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.err, (cmd == std::string("netcheck") ? kNetcheckProgress : "") +
                         "error: cannot connect to " + socket_.string() +
                         ": is p2pvpnd running? (No such file or directory)\n");
  }
  const Result ping = ask("ping", {"laptop"});
  EXPECT_EQ(ping.code, 2);
  EXPECT_CONTAINS(ping.err, "is p2pvpnd running? (No such file or directory)");

  // A socket file nobody listens on any more (a daemon that crashed).
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  const Result stale = ask("status");
  EXPECT_EQ(stale.code, 2);
  EXPECT_CONTAINS(stale.err, "is p2pvpnd running? (Connection refused)");

  const Result too_long = ctl({"status", "--socket", "/tmp/" + std::string(200, 'x')});
  EXPECT_EQ(too_long.code, 2);
  EXPECT_CONTAINS(too_long.err, "longer than 107 bytes");
}

TEST_F(CtlDaemon, DefaultSocket) {
  if (fs::exists("/run/p2pvpnd.sock")) GTEST_SKIP() << "a p2pvpnd is running here";
  const Result r = ctl({"status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "error: cannot connect to /run/p2pvpnd.sock: is p2pvpnd running? (No such file or "
            "directory)\n");
}

TEST_F(CtlDaemon, SocketFromTheMeshConfig) {
  write_mesh_yaml();
  serve_line(status_to_json(two_peer_status()).dump());
  Result r = ctl({"status", "-c", "mesh.yaml", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["node"]["name"], "home-pc");

  r = ctl({"status", "-c", "missing.yaml"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "missing.yaml");
}

TEST_F(CtlDaemon, OptionsBeforeTheCommand) {
  write_mesh_yaml();
  serve_line(status_to_json(two_peer_status()).dump());
  Result r = ctl({"-c", "mesh.yaml", "status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["node"]["name"], "home-pc");
  r = ctl({"--socket", socket_.string(), "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  // The command's own option wins over the program's.
  r = ctl({"--socket", "/nonexistent.sock", "status", "--socket", socket_.string()});
  EXPECT_EQ(r.code, 0) << r.err;
  serve([](const json&) -> std::optional<std::string> { return std::nullopt; });  // silent
  r = ctl({"--timeout", "0.3", "--socket", socket_.string(), "status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "did not answer within 0.3 s");
}

TEST_F(CtlDaemon, Version) {
  const Result r = ctl({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("p2pvpnctl ", 0), 0u) << r.out;
}

// The coordinator's control socket answers with "kind":"coordinator" and its own fields
// (coordinator/shell/coordinator_shell.hpp); p2pvpnctl status prints its own view of them.
TEST_F(CtlDaemon, StatusOfACoordinator) {
  const json coordinator = json::parse(R"({"ok":true,"kind":"coordinator","name":"coord",
    "listen":["203.0.113.10:7400","203.0.113.10:7401"],
    "nodes":[{"name":"home-pc","vip":"10.77.0.2/24","observed":"198.51.100.7:40000",
              "local_endpoints":[],"nat":{"type":"full cone","allocation":"preserving",
              "port_step":0},"seconds_since_seen":3.5,"relayed_bytes":2048,"relay_dropped":1}],
    "counters":{"handshakes_refused":2,"malformed":3,"stun_answered":4}})");
  serve_line(coordinator.dump());
  Result r = ask("status");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out,
                  "coordinator coord, listening on udp 203.0.113.10:7400, 203.0.113.10:7401; 1 "
                  "node registered\n");
  EXPECT_CONTAINS(r.out, "home-pc");
  EXPECT_CONTAINS(r.out, "198.51.100.7:40000");
  EXPECT_CONTAINS(r.out, "full cone");
  EXPECT_CONTAINS(r.out, "2.0 KiB");
  EXPECT_CONTAINS(r.out, "handshakes refused: 2, malformed datagrams: 3, STUN answered: 4");
  r = ask("status", {"--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), coordinator);
  json broken = coordinator;
  broken.erase("counters");
  serve_line(broken.dump());
  r = ask("status");
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "malformed coordinator status");
}

// A refusal marked "final" (no such peer, this node, the coordinator): ping stops at once.
TEST_F(CtlDaemon, PingStopsAtAFinalRefusal) {
  serve_line(
      R"({"ok":false,"error":"unknown peer ghost: no such node is registered","final":true})");
  const Result r = ask("ping", {"ghost", "--count", "3", "--interval", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "error: unknown peer ghost: no such node is registered\n");
  EXPECT_EQ(r.out.find("seq=2"), std::string::npos) << r.out;
}

TEST_F(CtlDaemon, ReloadPrintsWhatWasAppliedOrWhyNot) {
  serve_line(R"({"ok":true,"applied":["log"],"needs_restart":["listen"],)"
             R"("summary":"applied: log; needs restart (ignored): listen"})");
  Result r = ask("reload");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "reloaded: applied: log; needs restart (ignored): listen\n");
  serve_line(R"({"ok":false,"error":"/etc/p2pvpn/mesh.yaml:7:15: log.level: expected one of"})");
  r = ask("reload");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "/etc/p2pvpn/mesh.yaml:7:15: log.level");
}

}  // namespace
}  // namespace p2p::daemon
