#include "daemon/shell/tcp_paths.hpp"

#include <boost/asio/write.hpp>

namespace p2p::daemon {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

void close_quietly(const std::shared_ptr<tcp::socket>& s) {
  boost::system::error_code ignored;
  if (s) s->close(ignored);
}

}  // namespace

io::TcpStreamOptions TcpPaths::stream_options() {
  io::TcpStreamOptions o;
  o.max_queue_frames = 64;
  o.max_queue_bytes = 128 * 1024;
  o.notsent_lowat = 16 * 1024;
  return o;
}

void TcpPaths::punch_open(std::uint32_t punch, const Endpoint& assist,
                          const wire::AssistHello& hello) {
  punch_close(punch);
  // The any-address of the coordinator's family, a port the kernel picks for the listener.
  const Endpoint any{assist.is_v4() ? IpAddress{Ipv4{}} : IpAddress{Ipv6{}}, 0};
  auto listener = io::listen_tcp(io_, any, kBacklog);
  if (!listener) {
    log_.warn("tcp punch: {}", listener.error().message);
    return;
  }
  Punch p;
  p.listener = std::make_shared<tcp::acceptor>(std::move(*listener));
  boost::system::error_code ec;
  p.local = io::from_tcp(p.listener->local_endpoint(ec));
  auto socket = io::bind_tcp(io_, p.local);
  if (!socket) {
    log_.warn("tcp punch: {}", socket.error().message);
    return;
  }
  p.assist = std::make_shared<tcp::socket>(std::move(*socket));
  punches_[punch] = p;
  accept(punch);
  // The hello goes out once connected; the coordinator closes the connection, or punch_close.
  auto assist_socket = p.assist;
  auto bytes = std::make_shared<wire::AssistHello>(hello);
  assist_socket->async_connect(
      io::to_tcp(assist), [this, assist_socket, bytes, assist](const boost::system::error_code& e) {
        if (e == asio::error::operation_aborted) return;
        if (e) {
          log_.debug("tcp punch: assist {}: {}", assist.to_string(), e.message());
          return;
        }
        asio::async_write(*assist_socket, asio::buffer(*bytes),
                          [assist_socket, bytes](const boost::system::error_code&, std::size_t) {});
      });
}

void TcpPaths::accept(std::uint32_t punch) {
  auto it = punches_.find(punch);
  if (it == punches_.end()) return;
  auto listener = it->second.listener;
  listener->async_accept(
      [this, punch, listener](const boost::system::error_code& ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !listener->is_open()) return;
        if (ec) return accept(punch);
        hand_over(punch, std::move(socket), true);
      });
}

void TcpPaths::punch_connect(std::uint32_t punch, const Endpoint& to) {
  auto it = punches_.find(punch);
  if (it == punches_.end()) return;
  close_quietly(it->second.attempt);
  auto socket = io::bind_tcp(io_, it->second.local);
  if (!socket) {
    log_.debug("tcp punch: {}", socket.error().message);
    return;
  }
  auto attempt = std::make_shared<tcp::socket>(std::move(*socket));
  it->second.attempt = attempt;
  attempt->async_connect(io::to_tcp(to), [this, punch,
                                          attempt](const boost::system::error_code& ec) {
    auto p = punches_.find(punch);
    if (ec == asio::error::operation_aborted || p == punches_.end() || p->second.attempt != attempt)
      return;  // closed, or replaced by a newer attempt
    p->second.attempt.reset();
    if (ec) {
      if (cb_.connect_failed) cb_.connect_failed(punch);
      return;
    }
    hand_over(punch, std::move(*attempt), false);
  });
}

void TcpPaths::hand_over(std::uint32_t punch, Socket socket, bool inbound) {
  boost::system::error_code ec;
  if (streams_.contains(punch)) {  // the punch has its stream already
    socket.close(ec);
    return;
  }
  // Open before the Node decides: it starts the handshake on the stream at once.
  auto stream = io::TcpStream::open(std::move(socket), stream_options());
  streams_[punch] = stream;
  if (!cb_.established || !cb_.established(punch, inbound, stream->remote_endpoint())) {
    if (auto it = streams_.find(punch); it != streams_.end() && it->second == stream)
      streams_.erase(it);
    stream->close();
    if (inbound && punches_.contains(punch)) accept(punch);
    return;
  }
  punch_close(punch);  // the Node did already; a no-op then
  stream->start(
      [this, punch](PacketView frame) {
        if (cb_.frame) cb_.frame(punch, frame);
      },
      [this, punch](const io::IoError& why) {
        auto it = streams_.find(punch);
        if (it == streams_.end()) return;
        log_.debug("tcp stream {}: {}", punch, why.message);
        dropped_closed_ += it->second->stats().send_dropped;
        streams_.erase(it);
        if (cb_.closed) cb_.closed(punch);
      });
}

void TcpPaths::punch_close(std::uint32_t punch) {
  auto it = punches_.find(punch);
  if (it == punches_.end()) return;
  boost::system::error_code ignored;
  it->second.listener->close(ignored);
  close_quietly(it->second.assist);
  close_quietly(it->second.attempt);
  punches_.erase(it);
}

void TcpPaths::send(std::uint32_t stream, std::span<const std::uint8_t> datagram) {
  if (auto it = streams_.find(stream); it != streams_.end()) it->second->send(datagram);
}

void TcpPaths::close(std::uint32_t stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  dropped_closed_ += it->second->stats().send_dropped;
  it->second->close();
  streams_.erase(it);
}

void TcpPaths::close_all() {
  while (!punches_.empty()) punch_close(punches_.begin()->first);
  while (!streams_.empty()) close(streams_.begin()->first);
}

std::uint64_t TcpPaths::send_dropped() const {
  std::uint64_t n = dropped_closed_;
  for (const auto& [id, s] : streams_) n += s->stats().send_dropped;
  return n;
}

}  // namespace p2p::daemon
