// TcpStream over loopback (net/asio/tcp_stream.hpp): frames both ways, the socket options, the
// bounded queue dropping its oldest frame, closes from either side and from a callback, a
// hostile length, and the reusable bind/listen helpers.
#include "net/asio/tcp_stream.hpp"

#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace p2p::io {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

const Endpoint kLoopback = *Endpoint::parse("127.0.0.1:0");

class TcpStreamTest : public ::testing::Test {
 protected:
  // Runs the loop until `done` or 10 s.
  template <class F>
  bool run_until(F done) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.run_for(10ms);
      io_.restart();
    }
    return done();
  }

  // A connected pair: client_ (connected from a bound port) and server_ (accepted).
  void connect(const TcpStreamOptions& client_options = {}, const TcpStreamOptions& server = {}) {
    auto acceptor = listen_tcp(io_, kLoopback, 8);
    ASSERT_TRUE(acceptor) << acceptor.error().message;
    const auto at = from_tcp(acceptor->local_endpoint());
    std::optional<tcp::socket> accepted;
    acceptor->async_accept([&](const boost::system::error_code& ec, tcp::socket s) {
      if (!ec) accepted.emplace(std::move(s));
    });
    auto bound = bind_tcp(io_, kLoopback);
    ASSERT_TRUE(bound) << bound.error().message;
    std::optional<tcp::socket> connected;
    connect_tcp(std::move(*bound), at, 5s, [&](Expected<tcp::socket, IoError> s) {
      ASSERT_TRUE(s) << s.error().message;
      connected.emplace(std::move(*s));
    });
    ASSERT_TRUE(run_until([&] { return accepted && connected; }));
    client_ = TcpStream::open(std::move(*connected), client_options);
    server_ = TcpStream::open(std::move(*accepted), server);
  }

  // Starts `s` collecting frames and its close reason.
  void collect(const std::shared_ptr<TcpStream>& s, std::vector<Bytes>& frames,
               std::optional<IoError>& closed) {
    s->start([&frames](PacketView f) { frames.emplace_back(f.data(), f.data() + f.size()); },
             [&closed](const IoError& why) { closed = why; });
  }

  asio::io_context io_;
  std::shared_ptr<TcpStream> client_, server_;
};

TEST_F(TcpStreamTest, FramesArriveWholeAndInOrderBothWays) {
  connect();
  std::vector<Bytes> at_server, at_client;
  std::optional<IoError> server_closed, client_closed;
  collect(server_, at_server, server_closed);
  collect(client_, at_client, client_closed);
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 300; ++i) sent.emplace_back(i * 211 % 1500, std::uint8_t(i));
  sent.emplace_back(wire::kMaxFrame, 0x5a);
  sent.emplace_back();
  for (const auto& b : sent) {
    // Sent a few at a time so that the queue never has to drop.
    ASSERT_TRUE(client_->send(b));
    if (client_->queued_frames() > 32) run_until([&] { return client_->queued_frames() < 8; });
  }
  ASSERT_TRUE(run_until([&] { return at_server.size() == sent.size(); }));
  EXPECT_EQ(at_server, sent);
  EXPECT_EQ(client_->stats().send_dropped, 0u);
  EXPECT_EQ(client_->stats().frames_sent, sent.size());
  EXPECT_EQ(server_->stats().frames_received, sent.size());

  ASSERT_TRUE(server_->send(Bytes{1, 2, 3}));
  ASSERT_TRUE(run_until([&] { return at_client.size() == 1; }));
  EXPECT_EQ(at_client[0], (Bytes{1, 2, 3}));
  EXPECT_EQ(client_->remote_endpoint(), server_->local_endpoint());
  EXPECT_EQ(server_->remote_endpoint(), client_->local_endpoint());
}

TEST_F(TcpStreamTest, SetsNoDelayAndNotSentLowWater) {
  TcpStreamOptions o;
  o.notsent_lowat = 12345;
  int value = 0;
  socklen_t len = sizeof value;
  auto acceptor = listen_tcp(io_, kLoopback, 1);
  ASSERT_TRUE(acceptor);
  tcp::socket a(io_);
  a.connect(acceptor->local_endpoint());
  const int fd = a.native_handle();
  auto s = TcpStream::open(std::move(a), o);
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_EQ(value, 1);
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value, &len), 0);
  EXPECT_EQ(value, 12345);
  s->close();
}

TEST_F(TcpStreamTest, FullQueueDropsItsOldestFrameNotTheNewest) {
  TcpStreamOptions small;
  small.max_queue_frames = 8;
  small.max_queue_bytes = 64 * 1024;
  small.notsent_lowat = 4096;
  connect(small);
  // The server does not read yet: the kernel buffers fill, then the queue.
  Bytes big(wire::kMaxFrame, 1);
  for (int i = 0; i < 200; ++i) {
    big[0] = static_cast<std::uint8_t>(i);
    ASSERT_TRUE(client_->send(big));
    EXPECT_LE(client_->queued_frames(), small.max_queue_frames);
    io_.poll();
    io_.restart();
  }
  EXPECT_GT(client_->stats().send_dropped, 0u);
  Bytes last{0xee, 0xff};
  ASSERT_TRUE(client_->send(last));

  std::vector<Bytes> at_server;
  std::optional<IoError> closed;
  collect(server_, at_server, closed);
  ASSERT_TRUE(run_until([&] { return !at_server.empty() && at_server.back() == last; }));
  EXPECT_EQ(at_server.size() + client_->stats().send_dropped, 201u);
  // Whatever arrived is in order: the drops took frames out, never reordered them.
  for (std::size_t i = 1; i + 1 < at_server.size(); ++i)
    EXPECT_LT(at_server[i - 1][0], at_server[i][0]);
}

TEST_F(TcpStreamTest, PeerCloseIsReportedOnceWithTheReason) {
  connect();
  std::vector<Bytes> frames;
  std::optional<IoError> closed;
  collect(server_, frames, closed);
  ASSERT_TRUE(client_->send(Bytes{7}));
  client_->close();
  EXPECT_FALSE(client_->send(Bytes{8}));
  EXPECT_EQ(client_->stats().send_refused, 1u);
  ASSERT_TRUE(run_until([&] { return closed.has_value(); }));
  EXPECT_NE(closed->message.find("closed by"), std::string::npos) << closed->message;
  EXPECT_FALSE(server_->is_open());
}

TEST_F(TcpStreamTest, LengthOverTheBoundClosesTheStream) {
  TcpStreamOptions strict;
  strict.max_frame = 100;
  connect({}, strict);
  std::vector<Bytes> frames;
  std::optional<IoError> closed;
  collect(server_, frames, closed);
  ASSERT_TRUE(client_->send(Bytes(100, 1)));
  ASSERT_TRUE(client_->send(Bytes(101, 2)));
  ASSERT_TRUE(client_->send(Bytes(1, 3)));
  ASSERT_TRUE(run_until([&] { return closed.has_value(); }));
  EXPECT_EQ(closed->sys_errno, EPROTO);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].size(), 100u);
}

TEST_F(TcpStreamTest, CloseFromInsideTheFrameCallbackStopsAtOnce) {
  connect();
  int frames = 0;
  bool closed_called = false;
  std::weak_ptr<TcpStream> weak = server_;
  server_->start(
      [&, weak](PacketView) {
        ++frames;
        if (auto s = weak.lock()) s->close();
      },
      [&](const IoError&) { closed_called = true; });
  ASSERT_TRUE(client_->send(Bytes{1}));
  ASSERT_TRUE(client_->send(Bytes{2}));
  ASSERT_TRUE(run_until([&] { return frames > 0; }));
  server_.reset();     // the last reference the test held
  io_.run_for(200ms);  // the second frame, had the stream gone on
  EXPECT_EQ(frames, 1);
  EXPECT_FALSE(closed_called);
}

TEST_F(TcpStreamTest, OnePortConnectsAndListensAtOnce) {
  auto listener = listen_tcp(io_, kLoopback, 4);
  ASSERT_TRUE(listener);
  const auto port = listener->local_endpoint().port();
  auto bound = bind_tcp(io_, Endpoint{Ipv4{0x7f000001}, port});
  ASSERT_TRUE(bound) << bound.error().message;
  EXPECT_EQ(bound->local_endpoint().port(), port);

  auto target = listen_tcp(io_, kLoopback, 4);
  ASSERT_TRUE(target);
  std::optional<Expected<tcp::socket, IoError>> result;
  connect_tcp(std::move(*bound), from_tcp(target->local_endpoint()), 5s,
              [&](Expected<tcp::socket, IoError> s) { result.emplace(std::move(s)); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_TRUE(*result) << result->error().message;
  EXPECT_EQ((*result)->local_endpoint().port(), port);
}

TEST_F(TcpStreamTest, ConnectToAClosedPortSaysRefused) {
  auto target = listen_tcp(io_, kLoopback, 1);
  ASSERT_TRUE(target);
  const auto at = from_tcp(target->local_endpoint());
  target->close();
  std::optional<Expected<tcp::socket, IoError>> result;
  connect_tcp(tcp::socket(io_), at, 5s,
              [&](Expected<tcp::socket, IoError> s) { result.emplace(std::move(s)); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  ASSERT_FALSE(*result);
  EXPECT_EQ(result->error().sys_errno, ECONNREFUSED);
  EXPECT_NE(result->error().message.find(at.to_string()), std::string::npos);
}

TEST(TcpEndpoint, V4MappedAddressesComeBackAsIpv4) {
  auto mapped = tcp::endpoint(asio::ip::make_address("::ffff:10.1.2.3"), 443);
  EXPECT_EQ(from_tcp(mapped), *Endpoint::parse("10.1.2.3:443"));
  auto v6 = *Endpoint::parse("[2001:db8::1]:7");
  EXPECT_EQ(from_tcp(to_tcp(v6)), v6);
}

}  // namespace
}  // namespace p2p::io
