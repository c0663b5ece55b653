// TcpAssistPort: the coordinator's TCP assist port (coordinator.yaml tcp.assist). A node
// punching a TCP path connects here from its punch port and sends the 21-byte hello
// (net/tcp_assist.hpp); the connection's source is the node's public TCP endpoint. The port
// never answers: it reads at most the hello's size, hands the bytes and the source to
// `on_hello` (Coordinator::on_assist judges them) and closes. Bounded: at most
// `max_connections` at once (more are closed at once), each for at most `timeout`.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "net/asio/io_error.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"

namespace p2p::coord {

class TcpAssistPort {
 public:
  using OnHello = std::function<void(const Endpoint& from, std::span<const std::uint8_t> hello)>;
  static Expected<std::unique_ptr<TcpAssistPort>, io::IoError> open(
      boost::asio::io_context& io, const Endpoint& local, OnHello on_hello,
      std::size_t max_connections = 1024,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  TcpAssistPort(boost::asio::ip::tcp::acceptor acceptor, OnHello on_hello,
                std::size_t max_connections, std::chrono::milliseconds timeout);
  ~TcpAssistPort() { close(); }

  Endpoint endpoint() const;
  void close();
  std::uint64_t refused() const { return refused_; }  // over max_connections

 private:
  struct Connection;
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  OnHello on_hello_;
  std::size_t max_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);
  std::shared_ptr<bool> closed_ = std::make_shared<bool>(false);
  std::uint64_t refused_ = 0;
};

}  // namespace p2p::coord
