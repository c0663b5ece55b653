// p2pvpn_net_asio against the real kernel, on loopback only: the batched UDP socket (recvmmsg /
// sendmmsg into pool buffers with their headroom), the deadline timer, and the control-socket
// server with well-behaved and hostile clients.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "net/asio/control_server.hpp"
#include "net/asio/loop.hpp"
#include "net/asio/packet_pool.hpp"
#include "net/asio/socket_address.hpp"
#include "net/asio/udp_socket.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::io {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

const Endpoint kLoopback{Ipv4{0x7f000001}, 0};

UdpSocket open_udp(asio::io_context& io, const Endpoint& at = kLoopback) {
  auto s = UdpSocket::open(io, at);
  if (!s) throw std::runtime_error(s.error().message);
  return std::move(*s);
}

// Datagram `i` of a test run: a size from a spread that includes 1 byte, MTU-sized packets and
// the largest IPv4 UDP payload, filled with a pattern derived from i.
std::vector<std::uint8_t> datagram(std::size_t i) {
  static const std::size_t sizes[] = {1, 20, 64, 200, 576, 1280, 1420, 1500, 9000, 65507};
  std::vector<std::uint8_t> d(sizes[i % std::size(sizes)]);
  for (std::size_t k = 0; k < d.size(); ++k) d[k] = static_cast<std::uint8_t>(i * 31 + k * 7);
  d[0] = static_cast<std::uint8_t>(i);  // index, for the order check
  return d;
}

// Receives until `count` datagrams arrived or 5 s passed; checks that the headroom bytes in
// front of every packet (preset to 0xAB) are untouched.
std::vector<std::pair<std::vector<std::uint8_t>, Endpoint>> receive_all(UdpSocket& s,
                                                                        std::size_t count) {
  PacketPool pool(32);
  std::vector<ReceivedDatagram> out(32);
  std::vector<std::pair<std::vector<std::uint8_t>, Endpoint>> got;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < pool.size(); ++i) std::memset(pool.buffer(i), 0xAB, kHeadroom);
    auto n = s.receive_batch(pool, out);
    EXPECT_TRUE(n.has_value());
    if (!n || *n == 0) {
      pollfd p{s.native_handle(), POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    for (std::size_t i = 0; i < *n; ++i) {
      auto v = pool.view(i, out[i].length);
      EXPECT_EQ(v.headroom(), kHeadroom);
      EXPECT_GE(v.tailroom(), kTailroom);
      std::size_t touched = 0;
      for (std::size_t k = 0; k < kHeadroom; ++k) touched += pool.buffer(i)[k] != 0xAB;
      EXPECT_EQ(touched, 0u) << "headroom of datagram " << got.size();
      got.emplace_back(std::vector<std::uint8_t>(v.data(), v.data() + v.size()), out[i].from);
    }
  }
  return got;
}

TEST(SocketAddress, RoundTripsV4V6AndMapsV4OnDualStack) {
  sockaddr_storage sa;
  Endpoint v4{*Ipv4::parse("192.0.2.7"), 7400};
  ASSERT_EQ(to_sockaddr(v4, AF_INET, sa), sizeof(sockaddr_in));
  EXPECT_EQ(from_sockaddr(sa, sizeof(sockaddr_in)), v4);
  // On an IPv6 socket an IPv4 endpoint travels v4-mapped and comes back as plain IPv4.
  ASSERT_EQ(to_sockaddr(v4, AF_INET6, sa), sizeof(sockaddr_in6));
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<sockaddr_in6&>(sa).sin6_addr));
  EXPECT_EQ(from_sockaddr(sa, sizeof(sockaddr_in6)), v4);
  Endpoint v6{*Ipv6::parse("2001:db8::1"), 9};
  ASSERT_EQ(to_sockaddr(v6, AF_INET6, sa), sizeof(sockaddr_in6));
  EXPECT_EQ(from_sockaddr(sa, sizeof(sockaddr_in6)), v6);
  EXPECT_EQ(to_sockaddr(v6, AF_INET, sa), 0u);  // unreachable from an IPv4 socket
  EXPECT_FALSE(from_sockaddr(sa, 4).has_value());
  EXPECT_TRUE(is_unspecified(Ipv4{}));
  EXPECT_TRUE(is_unspecified(Ipv6{}));
  EXPECT_FALSE(is_unspecified(v4.address));
}

TEST(PacketPool, BuffersAreAlignedDisjointAndKnown) {
  PacketPool pool(4);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pool.buffer(i)) % 64, 0u);
    EXPECT_EQ(pool.packet(i), pool.buffer(i) + kHeadroom);
    EXPECT_TRUE(pool.contains({pool.packet(i), PacketPool::kPacketCapacity}));
  }
  EXPECT_GE(pool.buffer(1) - pool.buffer(0), static_cast<std::ptrdiff_t>(kBufferSize));
  std::vector<std::uint8_t> elsewhere(16);
  EXPECT_FALSE(pool.contains(elsewhere));
  EXPECT_FALSE(pool.contains({pool.buffer(3), PacketPool::kStride + 1}));
}

TEST(UdpSocket, BindsPortZeroToARealPort) {
  asio::io_context io;
  auto s = open_udp(io);
  EXPECT_NE(s.local_endpoint().port, 0);
  EXPECT_EQ(s.local_endpoint().address, kLoopback.address);
  // The same port again is refused with a message naming it.
  auto again = UdpSocket::open(io, s.local_endpoint());
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message.find(s.local_endpoint().to_string()), std::string::npos);
  EXPECT_EQ(again.error().sys_errno, EADDRINUSE);
}

TEST(UdpSocket, BatchesManyDatagramsOfVariousSizesBothWays) {
  asio::io_context io;
  auto a = open_udp(io);
  auto b = open_udp(io);
  // Half the datagrams are referenced in a pool (as the shells do for packets encrypted in
  // place), half copied; more than one queue's worth, so the queue flushes itself too.
  constexpr std::size_t kCount = 600;
  PacketPool source(kCount / 2);
  std::size_t queued_ok = 0;
  for (std::size_t i = 0; i < kCount; ++i) {
    auto d = datagram(i);
    if (i % 2 == 0) {
      std::memcpy(source.packet(i / 2), d.data(), d.size());
      queued_ok += a.queue(b.local_endpoint(), {source.packet(i / 2), d.size()},
                           UdpSocket::Hold::kReference);
    } else {
      queued_ok += a.queue(b.local_endpoint(), d, UdpSocket::Hold::kCopy);
    }
    // Flush now and then, as a batch end would, so the receive buffer is never overrun.
    if (i % 100 == 99) a.flush();
  }
  a.flush();
  EXPECT_EQ(queued_ok, kCount);
  EXPECT_EQ(a.queued(), 0u);
  auto got = receive_all(b, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(got[i].first, datagram(i)) << "datagram " << i;  // loopback keeps the order
    EXPECT_EQ(got[i].second, a.local_endpoint());
  }
  EXPECT_EQ(a.stats().sent, kCount);
  EXPECT_EQ(a.stats().send_dropped + a.stats().send_errors, 0u);
  EXPECT_EQ(b.stats().received, kCount);

  // And back, to the endpoint the datagrams came from.
  for (std::size_t i = 0; i < 50; ++i) b.queue(got[i].second, datagram(i));
  b.flush();
  auto back = receive_all(a, 50);
  ASSERT_EQ(back.size(), 50u);
  EXPECT_EQ(back[49].first, datagram(49));
}

TEST(UdpSocket, CopiedDatagramsDoNotDependOnTheCallersBuffer) {
  asio::io_context io;
  auto a = open_udp(io);
  auto b = open_udp(io);
  std::vector<std::uint8_t> scratch = {1, 2, 3, 4};
  a.queue(b.local_endpoint(), scratch);
  scratch.assign({9, 9, 9, 9});  // as a core reuses its scratch buffer for the next message
  a.queue(b.local_endpoint(), scratch);
  a.flush();
  auto got = receive_all(b, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, (std::vector<std::uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ(got[1].first, (std::vector<std::uint8_t>{9, 9, 9, 9}));
}

TEST(UdpSocket, UnreachableFamilyAndRefusedDestinationsAreCountedNotFatal) {
  asio::io_context io;
  auto a = open_udp(io);
  auto b = open_udp(io);
  std::vector<std::uint8_t> d(10, 1);
  EXPECT_FALSE(a.queue(Endpoint{*Ipv6::parse("::1"), 9}, d));
  EXPECT_EQ(a.stats().send_dropped, 1u);
  // A broadcast without SO_BROADCAST is refused by the kernel (EACCES); the rest still goes.
  a.queue(Endpoint{*Ipv4::parse("255.255.255.255"), 9}, d);
  a.queue(b.local_endpoint(), d);
  a.flush();
  EXPECT_EQ(a.stats().send_errors, 1u);
  EXPECT_EQ(a.stats().last_send_errno, EACCES);
  EXPECT_EQ(receive_all(b, 1).size(), 1u);
}

TEST(UdpSocket, DualStackSocketSeesIpv4PeersAsIpv4) {
  asio::io_context io;
  auto v6 = UdpSocket::open(io, Endpoint{Ipv6{}, 0});
  if (!v6) GTEST_SKIP() << "no IPv6: " << v6.error().message;
  auto v4 = open_udp(io);
  std::vector<std::uint8_t> d = {42};
  v4.queue(Endpoint{kLoopback.address, v6->local_endpoint().port}, d);
  v4.flush();
  auto got = receive_all(*v6, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, v4.local_endpoint());
  EXPECT_TRUE(v6->queue(got[0].second, d));  // answered through the v4-mapped address
  v6->flush();
  EXPECT_EQ(receive_all(v4, 1).size(), 1u);
}

TEST(UdpSocket, AsyncWaitFiresWhenADatagramArrives) {
  asio::io_context io;
  auto a = open_udp(io);
  auto b = open_udp(io);
  bool readable = false;
  b.async_wait_readable([&](const boost::system::error_code& ec) { readable = !ec; });
  io.run_for(50ms);
  EXPECT_FALSE(readable);
  std::vector<std::uint8_t> d = {1};
  a.queue(b.local_endpoint(), d);
  a.flush();
  io.restart();
  io.run_for(2s);
  EXPECT_TRUE(readable);
}

// Runs `body` in a child process in a network namespace of its own (root only); returns what
// it reports: "" on success, else the failure.
std::string in_own_netns(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string err = ::unshare(CLONE_NEWNET) == 0 ? body() : "unshare failed";
    (void)!::write(fds[1], err.data(), err.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char chunk[256];
  for (ssize_t r; (r = ::read(fds[0], chunk, sizeof chunk)) > 0;) out.append(chunk, r);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child died: " + out;
  return out;
}

// Loopback shaped to 20 Mbit/s by a token bucket: the packets wait in its queue charged to the
// sender's small socket buffer, so sendmmsg() soon says EAGAIN, as on a real saturated link.
TEST(UdpSocket, FlushNeverBlocksAndSendsTheRestInOrderWhenWritable) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  std::string failure = in_own_netns([]() -> std::string {
    if (std::system("ip link set lo up && tc qdisc add dev lo root tbf rate 20mbit burst 16kb "
                    "latency 2s") != 0)
      return "cannot shape lo (ip/tc)";
    asio::io_context io;
    auto a = UdpSocket::open(io, kLoopback, UdpOptions{.send_buffer = 16 * 1024});
    auto b = UdpSocket::open(io, kLoopback);
    if (!a || !b) return "open failed";
    constexpr std::size_t kCount = 200, kSize = 1200;
    auto payload = [](std::size_t i) {
      std::vector<std::uint8_t> d(kSize, static_cast<std::uint8_t>(i * 7));
      d[0] = static_cast<std::uint8_t>(i);
      return d;
    };
    // Even datagrams referenced in a pool (as encrypted in place), odd ones copied.
    PacketPool source(kCount);
    for (std::size_t i = 0; i < kCount; ++i) {
      auto d = payload(i);
      std::memcpy(source.packet(i), d.data(), kSize);
      bool ok = i % 2 == 0 ? a->queue(b->local_endpoint(), {source.packet(i), kSize},
                                      UdpSocket::Hold::kReference)
                           : a->queue(b->local_endpoint(), d);
      if (!ok) return "queue refused datagram " + std::to_string(i);
    }
    auto start = std::chrono::steady_clock::now();
    a->flush();
    auto took = std::chrono::steady_clock::now() - start;
    if (took > 50ms) return "flush took " + std::to_string(took / 1ms) + " ms";
    if (a->queued() == 0) return "the shaped link took everything at once: nothing tested";
    if (a->stats().send_blocked != 1) return "send_blocked not counted";
    // The caller reuses its buffers as soon as flush() returns (the next TUN read).
    for (std::size_t i = 0; i < kCount; ++i) std::memset(source.packet(i), 0xEE, kSize);
    // Resume on writability until everything left, bounded.
    std::function<void(const boost::system::error_code&)> on_sendable =
        [&](const boost::system::error_code& ec) {
          if (ec) return;
          a->flush();
          if (a->queued() > 0) a->async_wait_sendable(on_sendable);
        };
    a->async_wait_sendable(on_sendable);
    io.run_for(10s);
    if (a->queued() != 0) return "still queued after 10 s: " + std::to_string(a->queued());
    auto got = receive_all(*b, kCount);
    if (got.size() != kCount) return "received " + std::to_string(got.size());
    for (std::size_t i = 0; i < kCount; ++i) {
      if (got[i].first != payload(i))
        return "datagram " + std::to_string(i) + " differs: starts " +
               std::to_string(got[i].first[0]) + "," + std::to_string(got[i].first[1]) + " size " +
               std::to_string(got[i].first.size()) + " stats sent " +
               std::to_string(a->stats().sent) + " blocked " +
               std::to_string(a->stats().send_blocked);
    }
    if (a->stats().send_dropped != 0) return "dropped some";
    if (a->stats().sent != kCount) return "sent " + std::to_string(a->stats().sent);
    return "";
  });
  EXPECT_EQ(failure, "");
}

TEST(DeadlineTimer, FiresOnlyForTheLatestDeadline) {
  asio::io_context io;
  int fired = 0;
  DeadlineTimer timer(io, [&] { ++fired; });
  auto now = Clock::now();
  timer.arm(now + 10s);
  timer.arm(now + 20ms);  // moved earlier: the 10 s wait is superseded
  EXPECT_EQ(timer.armed(), now + 20ms);
  io.run_for(300ms);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(timer.armed(), Time::max());
  timer.arm(Clock::now() + 30ms);
  timer.arm(Time::max());  // disarmed
  io.restart();
  io.run_for(200ms);
  EXPECT_EQ(fired, 1);
  timer.arm(Clock::now() - 1s);  // already past: fires at once
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(fired, 2);
}

// ---------------------------------------------------------------------------------------
// Control socket

// Runs an io_context on its own thread; `on_io` runs a function there and waits for it.
class IoThread {
 public:
  IoThread() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }
  template <class F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// A blocking client with a 3 s limit on every wait.
class Client {
 public:
  explicit Client(const std::filesystem::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~Client() { close(); }
  bool connected() const { return connected_; }
  void send(const std::string& text) {
    ASSERT_EQ(::send(fd_, text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // The next line, or "<eof>" / "<timeout>".
  std::string line() {
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 3000) <= 0) return "<timeout>";
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "<eof>";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  json answer() {
    auto l = line();
    auto j = json::parse(l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << l;
    return j;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void open(ControlLimits limits = {}) {
    server_ = std::make_unique<ControlServer>(thread_.on_io([&] {
      auto s = ControlServer::open(
          thread_.io(), path_,
          [this](const json& request, ControlServer::Respond respond) {
            handle(request, std::move(respond));
          },
          limits);
      if (!s) throw std::runtime_error(s.error().message);
      return std::move(*s);
    }));
  }
  void TearDown() override {
    if (server_)
      thread_.on_io([&] {
        server_.reset();
        return 0;
      });
  }
  void handle(const json& request, ControlServer::Respond respond) {
    const auto cmd = request.value("cmd", "");
    if (cmd == "echo") {
      respond(json{{"ok", true}, {"echo", request}});
    } else if (cmd == "later") {  // answers when the test says so
      deferred_.push_back(std::move(respond));
    } else if (cmd == "throw") {
      throw std::runtime_error("boom");
    } else {
      respond(json{{"ok", false}, {"error", "unknown command"}});
    }
  }
  std::size_t clients() {
    return thread_.on_io([&] { return server_->clients(); });
  }
  // Polls until the server counts `n` clients (the server notices hang-ups asynchronously).
  bool wait_clients(std::size_t n) {
    for (int i = 0; i < 300; ++i) {
      if (clients() == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // Until `n` "later" requests wait for their answer (a connection is counted before its
  // request line has been read).
  bool wait_deferred(std::size_t n) {
    for (int i = 0; i < 300; ++i) {
      if (thread_.on_io([&] { return deferred_.size(); }) == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  test::TempDir dir_{"p2p-io-test"};
  std::filesystem::path path_ = dir_ / "run" / "ctl.sock";  // "run" does not exist yet
  IoThread thread_;
  std::unique_ptr<ControlServer> server_;
  std::vector<ControlServer::Respond> deferred_;  // touched on the io thread only
};

TEST_F(ControlServerTest, AnswersOneLinePerRequestInOrder) {
  open();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Client c(path_);
  ASSERT_TRUE(c.connected());
  c.send("{\"cmd\":\"echo\",\"n\":1}\n");
  auto a = c.answer();
  EXPECT_EQ(a["ok"], true);
  EXPECT_EQ(a["echo"]["n"], 1);
  // Two requests in one write, the second with CRLF: two answers, in order.
  c.send("{\"cmd\":\"echo\",\"n\":2}\n{\"cmd\":\"echo\",\"n\":3}\r\n");
  EXPECT_EQ(c.answer()["echo"]["n"], 2);
  EXPECT_EQ(c.answer()["echo"]["n"], 3);
  c.send("{\"cmd\":\"nope\"}\n");
  EXPECT_EQ(c.answer()["error"], "unknown command");
}

TEST_F(ControlServerTest, GarbageAndNonObjectsAreAnsweredAndTheClientStays) {
  open();
  Client c(path_);
  for (const char* bad : {"not json\n", "[1,2]\n", "\"cmd\"\n", "{\"cmd\":\n"}) {
    c.send(bad);
    auto a = c.answer();
    EXPECT_EQ(a["ok"], false) << bad;
  }
  c.send("\n\n");  // empty lines are skipped
  c.send("{\"cmd\":\"throw\"}\n");
  EXPECT_EQ(c.answer()["error"], "internal error: boom");
  c.send("{\"cmd\":\"echo\"}\n");
  EXPECT_EQ(c.answer()["ok"], true);
  // Invalid UTF-8 is not JSON: refused like any other garbage, and the answer is valid JSON.
  c.send("{\"cmd\":\"echo\",\"s\":\"\xff\xfe\"}\n");
  EXPECT_EQ(c.answer()["ok"], false);
}

TEST_F(ControlServerTest, OversizedLineIsRejectedAndTheClientDropped) {
  open(ControlLimits{.max_line = 4096, .max_clients = 16});
  Client c(path_);
  c.send(std::string(5000, 'x'));  // no newline within the limit
  auto a = c.answer();
  EXPECT_EQ(a["ok"], false);
  EXPECT_EQ(a["error"], "request line too long");
  EXPECT_EQ(c.line(), "<eof>");
  EXPECT_TRUE(wait_clients(0));
  // A request just under the limit is fine.
  Client d(path_);
  std::string big = "{\"cmd\":\"echo\",\"pad\":\"" + std::string(4000, 'y') + "\"}\n";
  ASSERT_LT(big.size(), 4096u);
  d.send(big);
  EXPECT_EQ(d.answer()["ok"], true);
}

TEST_F(ControlServerTest, ClientThatDisconnectsMidRequestCostsOnlyItsConnection) {
  open();
  {
    Client half(path_);
    half.send("{\"cmd\":\"ec");  // half a line, then gone
  }
  {
    Client impatient(path_);
    impatient.send("{\"cmd\":\"later\"}\n");
    ASSERT_TRUE(wait_clients(1));
    ASSERT_TRUE(wait_deferred(1));
  }  // hangs up before its answer
  // The late answer goes nowhere and drops the dead connection; nothing crashes.
  thread_.on_io([&] {
    deferred_[0](json{{"ok", true}});
    deferred_[0](json{{"ok", true}});  // a second answer to one request is ignored
    return 0;
  });
  EXPECT_TRUE(wait_clients(0));
  Client c(path_);
  c.send("{\"cmd\":\"echo\"}\n");
  EXPECT_EQ(c.answer()["ok"], true);
  // An answer still pending when the server goes away is harmless too.
  c.send("{\"cmd\":\"later\"}\n");
  ASSERT_TRUE(wait_clients(1));
  ASSERT_TRUE(wait_deferred(2));
  thread_.on_io([&] {
    server_.reset();
    deferred_.back()(json{{"ok", true}});
    return 0;
  });
  EXPECT_EQ(c.line(), "<eof>");
  EXPECT_FALSE(std::filesystem::exists(path_));  // removed on close
}

TEST_F(ControlServerTest, ClientCountIsBounded) {
  open(ControlLimits{.max_line = 4096, .max_clients = 2});
  Client a(path_), b(path_);
  a.send("{\"cmd\":\"echo\"}\n");
  b.send("{\"cmd\":\"echo\"}\n");
  EXPECT_EQ(a.answer()["ok"], true);
  EXPECT_EQ(b.answer()["ok"], true);
  Client c(path_);
  EXPECT_EQ(c.answer()["error"], "too many clients");
  EXPECT_EQ(c.line(), "<eof>");
  a.close();
  ASSERT_TRUE(wait_clients(1));
  Client d(path_);
  d.send("{\"cmd\":\"echo\"}\n");
  EXPECT_EQ(d.answer()["ok"], true);
}

TEST_F(ControlServerTest, SocketFileRules) {
  // A stale socket file (nobody listening) is replaced.
  std::filesystem::create_directories(path_.parent_path());
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);  // the file stays behind
  }
  open();
  Client c(path_);
  c.send("{\"cmd\":\"echo\"}\n");
  EXPECT_EQ(c.answer()["ok"], true);
  // A live socket is not taken over.
  auto second = thread_.on_io([&] { return ControlServer::open(thread_.io(), path_, {}); });
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
  // Neither is a path that is not a socket, nor one too long for sun_path.
  auto file = dir_ / "plain";
  std::ofstream(file) << "x";
  auto third = thread_.on_io([&] { return ControlServer::open(thread_.io(), file, {}); });
  ASSERT_FALSE(third.has_value());
  EXPECT_TRUE(std::filesystem::exists(file));
  auto fourth = thread_.on_io(
      [&] { return ControlServer::open(thread_.io(), dir_ / std::string(120, 'l'), {}); });
  EXPECT_FALSE(fourth.has_value());
}

}  // namespace
}  // namespace p2p::io
