#include "coordinator/shell/tcp_assist_port.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/asio/tcp_stream.hpp"
#include "net/tcp_assist.hpp"

namespace p2p::coord {

namespace asio = boost::asio;
using asio::ip::tcp;

struct TcpAssistPort::Connection {
  Connection(tcp::socket s, std::shared_ptr<std::size_t> count)
      : socket(std::move(s)), timer(socket.get_executor()), open(std::move(count)) {
    ++*open;
    boost::system::error_code ignored;
    from = io::from_tcp(socket.remote_endpoint(ignored));
  }
  ~Connection() { --*open; }
  tcp::socket socket;
  asio::steady_timer timer;
  wire::AssistHello hello{};
  Endpoint from;  // the node's public TCP endpoint
  std::shared_ptr<std::size_t> open;
};

Expected<std::unique_ptr<TcpAssistPort>, io::IoError> TcpAssistPort::open(
    asio::io_context& io, const Endpoint& local, OnHello on_hello, std::size_t max_connections,
    std::chrono::milliseconds timeout) {
  auto acceptor = io::listen_tcp(io, local, 128);
  if (!acceptor) return fail(acceptor.error());
  auto port = std::make_unique<TcpAssistPort>(std::move(*acceptor), std::move(on_hello),
                                              max_connections, timeout);
  port->accept();
  return port;
}

TcpAssistPort::TcpAssistPort(tcp::acceptor acceptor, OnHello on_hello, std::size_t max_connections,
                             std::chrono::milliseconds timeout)
    : acceptor_(std::move(acceptor)),
      on_hello_(std::move(on_hello)),
      max_(max_connections),
      timeout_(timeout) {}

Endpoint TcpAssistPort::endpoint() const {
  boost::system::error_code ec;
  return io::from_tcp(acceptor_.local_endpoint(ec));
}

void TcpAssistPort::close() {
  *closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void TcpAssistPort::accept() {
  acceptor_.async_accept(
      [this, closed = closed_](const boost::system::error_code& ec, tcp::socket socket) {
        if (*closed || ec == asio::error::operation_aborted) return;
        if (!ec && *open_ >= max_) {
          ++refused_;
          boost::system::error_code ignored;
          socket.close(ignored);
        } else if (!ec) {
          auto c = std::make_shared<Connection>(std::move(socket), open_);
          c->timer.expires_after(timeout_);
          c->timer.async_wait([c](const boost::system::error_code& e) {
            boost::system::error_code ignored;
            if (!e) c->socket.close(ignored);
          });
          // Exactly the hello's size, never more: anything else is the core's counted drop.
          asio::async_read(c->socket, asio::buffer(c->hello),
                           [this, c, closed](const boost::system::error_code& e, std::size_t n) {
                             c->timer.cancel();
                             boost::system::error_code ignored;
                             c->socket.close(ignored);
                             if (*closed || e == asio::error::operation_aborted) return;
                             on_hello_(c->from, std::span(c->hello.data(), n));
                           });
        }
        accept();
      });
}

}  // namespace p2p::coord
