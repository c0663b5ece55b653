#include "coordinator/shell/tcp_main_port.hpp"

namespace p2p::coord {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The per-source key: an IPv4 address, or an IPv6 address's /64.
IpAddress source_key(const IpAddress& a) {
  if (const auto* v6 = std::get_if<Ipv6>(&a)) {
    Ipv6 prefix = *v6;
    std::fill(prefix.bytes.begin() + 8, prefix.bytes.end(), 0);
    return prefix;
  }
  return a;
}

}  // namespace

Expected<std::unique_ptr<TcpMainPort>, io::IoError> TcpMainPort::open(asio::io_context& io,
                                                                      const Endpoint& listen,
                                                                      TcpPortLimits limits,
                                                                      Handlers handlers) {
  std::unique_ptr<TcpMainPort> port(new TcpMainPort(io, limits, std::move(handlers)));
  auto acceptor = io::listen_tcp(io, listen, 512);
  if (!acceptor) return fail(acceptor.error());
  port->acceptor_ = std::move(*acceptor);
  boost::system::error_code ec;
  port->endpoint_ = io::from_tcp(port->acceptor_.local_endpoint(ec));
  port->accept();
  port->sweep();
  return port;
}

TcpMainPort::TcpMainPort(asio::io_context& io, TcpPortLimits limits, Handlers handlers)
    : acceptor_(io), sweep_timer_(io), limits_(limits), handlers_(std::move(handlers)) {}

TcpMainPort::~TcpMainPort() {
  close();
}

void TcpMainPort::accept() {
  acceptor_.async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                             const boost::system::error_code& ec, tcp::socket s) {
    if (alive.expired() || closed_ || ec == asio::error::operation_aborted) return;
    if (!ec) on_accepted(std::move(s));
    accept();
  });
}

void TcpMainPort::on_accepted(tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;
  const auto from = io::from_tcp(remote);
  if (connections_.size() >= limits_.max_connections) {
    ++stats_.refused_full;
    socket.close(ec);
    return;
  }
  const auto key = source_key(from.address);
  auto& count = per_source_[key];
  if (count >= limits_.per_source) {
    ++stats_.refused_source;
    socket.close(ec);
    return;
  }
  ++count;
  ++stats_.accepted;
  io::TcpStreamOptions options;
  options.max_frame = kMaxFrame;
  options.read_chunk = kReadChunk;
  options.max_queue_bytes = kQueueBytes;
  const auto id = next_id_++;
  const Time now = Clock::now();
  auto stream = io::TcpStream::open(std::move(socket), options);
  connections_.emplace(id, Connection{stream, key, now, now, 0});
  auto alive = std::weak_ptr<bool>(alive_);
  stream->start(
      [this, alive, id](PacketView frame) {
        if (!alive.expired()) on_frame(id, frame);
      },
      [this, alive, id](const io::IoError&) {
        if (!alive.expired()) drop(id, stats_.closed_by_peer);
      });
}

void TcpMainPort::on_frame(ConnectionId id, PacketView frame) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  auto& c = it->second;
  c.last_frame = Clock::now();
  if (++c.frames > kMaxUnauthenticatedFrames && !handlers_.authenticated(id)) {
    drop(id, stats_.closed_unauthenticated);
    return;
  }
  const auto from = c.stream->remote_endpoint();
  handlers_.on_frame(id, from, frame);
}

void TcpMainPort::send(ConnectionId id, std::span<const std::uint8_t> datagram) {
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    ++stats_.send_dropped;
    return;
  }
  auto& s = *it->second.stream;
  const auto dropped = s.stats().send_dropped;
  if (!s.send(datagram) || s.stats().send_dropped != dropped) ++stats_.send_dropped;
}

// Closes and forgets connection `id`, counting why; the core hears it is gone.
void TcpMainPort::drop(ConnectionId id, std::uint64_t& counter) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  ++counter;
  it->second.stream->close();
  auto src = per_source_.find(it->second.source);
  if (src != per_source_.end() && --src->second == 0) per_source_.erase(src);
  connections_.erase(it);
  handlers_.on_closed(id);
}

void TcpMainPort::sweep() {
  const Time now = Clock::now();
  std::vector<std::pair<ConnectionId, std::uint64_t*>> expired;
  for (const auto& [id, c] : connections_) {
    if (!handlers_.authenticated(id)) {
      if (now - c.opened >= limits_.handshake_timeout)
        expired.emplace_back(id, &stats_.closed_unauthenticated);
    } else if (now - c.last_frame >= limits_.idle_timeout) {
      expired.emplace_back(id, &stats_.closed_idle);
    }
  }
  for (auto [id, counter] : expired) drop(id, *counter);
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (!ec && !alive.expired() && !closed_) sweep();
      });
}

void TcpMainPort::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  sweep_timer_.cancel();
  for (auto& [id, c] : connections_) c.stream->close();
  connections_.clear();
  per_source_.clear();
}

}  // namespace p2p::coord
