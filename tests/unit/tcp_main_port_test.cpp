// The coordinator's TCP main port (coordinator/shell/tcp_main_port.hpp) over loopback: frames
// in and out by connection id, and the limits that make an unauthenticated connection cheap:
// frames before authentication, the handshake timeout, per-source and total connections.
#include "coordinator/shell/tcp_main_port.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <set>
#include <vector>

namespace p2p::coord {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

class TcpMainPortTest : public ::testing::Test {
 protected:
  void open(TcpPortLimits limits = {}) {
    auto p = TcpMainPort::open(
        io_, *Endpoint::parse("127.0.0.1:0"), limits,
        TcpMainPort::Handlers{[this](ConnectionId id, const Endpoint& from, PacketView f) {
                                frames_.push_back({id, from, Bytes(f.data(), f.data() + f.size())});
                              },
                              [this](ConnectionId id) { closed_.insert(id); },
                              [this](ConnectionId id) { return authenticated_.contains(id); }});
    ASSERT_TRUE(p) << p.error().message;
    port_ = std::move(*p);
  }

  template <class F>
  bool run_until(F done, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.run_for(10ms);
      io_.restart();
    }
    return done();
  }

  // A client connection to the port, started, collecting what it receives.
  struct Client {
    std::shared_ptr<io::TcpStream> stream;
    std::vector<Bytes> received;
    bool closed = false;
  };
  std::unique_ptr<Client> connect() {
    auto c = std::make_unique<Client>();
    std::optional<tcp::socket> s;
    io::connect_tcp(tcp::socket(io_), port_->endpoint(), 5s,
                    [&](Expected<tcp::socket, io::IoError> r) {
                      if (r) s.emplace(std::move(*r));
                    });
    EXPECT_TRUE(run_until([&] { return s.has_value(); }));
    if (!s) return c;
    c->stream = io::TcpStream::open(std::move(*s));
    auto* raw = c.get();
    c->stream->start(
        [raw](PacketView f) { raw->received.emplace_back(f.data(), f.data() + f.size()); },
        [raw](const io::IoError&) { raw->closed = true; });
    return c;
  }

  struct Frame {
    ConnectionId id;
    Endpoint from;
    Bytes data;
  };
  asio::io_context io_;
  std::unique_ptr<TcpMainPort> port_;
  std::vector<Frame> frames_;
  std::set<ConnectionId> closed_, authenticated_;
};

TEST_F(TcpMainPortTest, FramesInAndOutByConnection) {
  open();
  auto a = connect();
  auto b = connect();
  a->stream->send(Bytes{1, 2, 3});
  b->stream->send(Bytes{4});
  ASSERT_TRUE(run_until([&] { return frames_.size() == 2; }));
  ASSERT_NE(frames_[0].id, frames_[1].id);
  for (const auto& f : frames_) {
    auto& client = f.data == Bytes{1, 2, 3} ? a : b;
    EXPECT_EQ(f.from, client->stream->local_endpoint());
    port_->send(f.id, Bytes{9, static_cast<std::uint8_t>(f.data.size())});
  }
  ASSERT_TRUE(run_until([&] { return a->received.size() == 1 && b->received.size() == 1; }));
  EXPECT_EQ(a->received[0], (Bytes{9, 3}));
  EXPECT_EQ(b->received[0], (Bytes{9, 1}));
  EXPECT_EQ(port_->stats().accepted, 2u);

  port_->send(12345, Bytes{1});  // no such connection
  EXPECT_EQ(port_->stats().send_dropped, 1u);

  const auto a_id = frames_[0].data == Bytes{1, 2, 3} ? frames_[0].id : frames_[1].id;
  a->stream->close();
  ASSERT_TRUE(run_until([&] { return closed_.contains(a_id); }));
  EXPECT_EQ(port_->connections(), 1u);
  EXPECT_EQ(port_->stats().closed_by_peer, 1u);
}

TEST_F(TcpMainPortTest, UnauthenticatedConnectionGetsAFewFramesOnly) {
  open();
  auto a = connect();
  for (int i = 0; i < 10; ++i) a->stream->send(Bytes(100, static_cast<std::uint8_t>(i)));
  ASSERT_TRUE(run_until([&] { return a->closed; }));
  EXPECT_EQ(frames_.size(), static_cast<std::size_t>(TcpMainPort::kMaxUnauthenticatedFrames));
  EXPECT_EQ(port_->stats().closed_unauthenticated, 1u);
  EXPECT_EQ(port_->connections(), 0u);
  EXPECT_EQ(closed_.size(), 1u);
}

TEST_F(TcpMainPortTest, AuthenticatedConnectionIsNotLimitedInFrames) {
  open();
  auto a = connect();
  a->stream->send(Bytes{1});
  ASSERT_TRUE(run_until([&] { return frames_.size() == 1; }));
  authenticated_.insert(frames_[0].id);
  for (int i = 0; i < 20; ++i) a->stream->send(Bytes{2});
  ASSERT_TRUE(run_until([&] { return frames_.size() == 21; }));
  EXPECT_FALSE(a->closed);
}

TEST_F(TcpMainPortTest, SilentUnauthenticatedConnectionIsClosedAfterTheHandshakeTimeout) {
  TcpPortLimits l;
  l.handshake_timeout = 100ms;
  open(l);
  auto a = connect();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return a->closed; }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(port_->stats().closed_unauthenticated, 1u);
}

TEST_F(TcpMainPortTest, PerSourceAndTotalLimitsCloseAtOnce) {
  TcpPortLimits l;
  l.per_source = 2;
  open(l);
  auto a = connect();
  auto b = connect();
  auto c = connect();
  ASSERT_TRUE(run_until([&] { return c->closed; }));
  EXPECT_EQ(port_->stats().refused_source, 1u);
  EXPECT_EQ(port_->connections(), 2u);
  EXPECT_FALSE(a->closed || b->closed);

  port_->close();
  TcpPortLimits one;
  one.max_connections = 1;
  open(one);
  auto d = connect();
  auto e = connect();
  ASSERT_TRUE(run_until([&] { return e->closed; }));
  EXPECT_EQ(port_->stats().refused_full, 1u);
  EXPECT_FALSE(d->closed);
}

}  // namespace
}  // namespace p2p::coord
