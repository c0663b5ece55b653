#include "net/asio/metrics_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <set>
#include <vector>

#include "net/asio/accept_loop.hpp"
#include "net/asio/tcp_stream.hpp"
#include "net/http_request.hpp"
#include "net/metrics.hpp"

namespace p2p::io {

namespace asio = boost::asio;
using asio::ip::tcp;

class MetricsConnection;

struct MetricsServer::State {
  State(asio::io_context& io, Render r, MetricsLimits l)
      : render(std::move(r)), limits(l), acceptor(io) {}
  void on_accepted(tcp::socket s);
  void close();

  std::weak_ptr<State> weak_self;
  Render render;
  MetricsLimits limits;
  tcp::acceptor acceptor;
  Endpoint endpoint;
  std::set<std::shared_ptr<MetricsConnection>> connections;
  bool closed = false;
};

// One client: read until a verdict, write the response, close. Its timer bounds the whole.
class MetricsConnection : public std::enable_shared_from_this<MetricsConnection> {
 public:
  MetricsConnection(tcp::socket socket, std::weak_ptr<MetricsServer::State> server,
                    const MetricsLimits& limits)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        server_(std::move(server)),
        in_(limits.max_request) {
    timer_.expires_after(limits.timeout);
  }

  void start() {
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
    read();
  }

  void close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    if (auto s = server_.lock()) s->connections.erase(shared_from_this());
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(in_.data() + used_, in_.size() - used_),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      close();
      return;
    }
    used_ += n;
    auto verdict = http::parse_request(std::string_view(in_.data(), used_), in_.size());
    if (verdict == http::Verdict::kIncomplete) {
      read();
      return;
    }
    std::string body;
    if (verdict == http::Verdict::kMetrics) {
      auto server = server_.lock();
      if (!server) return;
      try {
        body = server->render();
      } catch (const std::exception&) {
        close();  // nothing half-rendered goes out
        return;
      }
    }
    out_ = http::response(verdict, body, metrics::kContentType);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
                        self->close();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::weak_ptr<MetricsServer::State> server_;
  std::vector<char> in_;
  std::size_t used_ = 0;
  std::string out_;
};

void MetricsServer::State::on_accepted(tcp::socket s) {
  if (connections.size() >= limits.max_clients) {
    boost::system::error_code ignored;
    s.close(ignored);
    return;
  }
  auto c = std::make_shared<MetricsConnection>(std::move(s), weak_self, limits);
  connections.insert(c);
  c->start();
}

void MetricsServer::State::close() {
  close_server(*this);
}

Expected<MetricsServer, IoError> MetricsServer::open(asio::io_context& io, const Endpoint& listen,
                                                     Render render, MetricsLimits limits) {
  const std::string where = "metrics listener " + listen.to_string();
  auto state = std::make_shared<State>(io, std::move(render), limits);
  state->weak_self = state;
  boost::system::error_code ec;
  const auto ep = to_tcp(listen);
  state->acceptor.open(ep.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(ep, ec);
  if (!ec) state->acceptor.listen(static_cast<int>(limits.max_clients) * 2, ec);
  if (ec) return fail(IoError{ec.value(), where + ": " + ec.message()});
  state->endpoint = from_tcp(state->acceptor.local_endpoint(ec));
  accept_loop(state->weak_self);
  return MetricsServer(std::move(state));
}

MetricsServer::MetricsServer(MetricsServer&&) noexcept = default;
MetricsServer& MetricsServer::operator=(MetricsServer&&) noexcept = default;
MetricsServer::~MetricsServer() {
  if (state_) state_->close();
}

const Endpoint& MetricsServer::endpoint() const {
  return state_->endpoint;
}
std::size_t MetricsServer::clients() const {
  return state_->connections.size();
}
void MetricsServer::close() {
  if (state_) state_->close();
}

}  // namespace p2p::io
