// TcpMainPort: the coordinator's TCP main port (coordinator.yaml tcp.main), for nodes whose
// networks block UDP. Each connection carries datagrams framed as in net/stream_frame.hpp:
// the same Noise handshake, control messages and relay as the UDP socket. The port owns the
// connections and their limits; what the frames mean is the core's (Coordinator::on_tcp).
//
// Limits, so that an unauthenticated connection costs little and goes fast:
// - at most max_connections open (one more is closed at once, unread), and at most per_source
//   from one IPv4 address or IPv6 /64;
// - until the core says a node authenticated on it (authenticated()), a connection may send
//   kMaxUnauthenticatedFrames frames and live handshake_timeout; then it is closed;
// - an authenticated connection silent for idle_timeout is closed;
// - frames over kMaxFrame close the connection (no node datagram is larger: a 9000-byte MTU
//   packet with the relay's and both sessions' headers);
// - each connection reads into kReadChunk bytes and queues at most kQueueBytes to send.
// Every refusal and close is counted (TcpPortStats). Threading: the io_context's one thread.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>

#include "coordinator/core/coordinator.hpp"
#include "net/asio/io_error.hpp"
#include "net/asio/tcp_stream.hpp"
#include "net/expected.hpp"
#include "net/time.hpp"

namespace p2p::coord {

struct TcpPortLimits {
  std::size_t max_connections = 4096;
  std::size_t per_source = 32;
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration idle_timeout = std::chrono::seconds(90);
};

struct TcpPortStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused_full = 0;            // max_connections open
  std::uint64_t refused_source = 0;          // per_source open from that address
  std::uint64_t closed_unauthenticated = 0;  // no handshake in time, or too many frames
  std::uint64_t closed_idle = 0;
  std::uint64_t closed_by_peer = 0;  // or on an error, or a frame over the bound
  std::uint64_t send_dropped = 0;    // to a connection gone, or the oldest of a full queue
};

class TcpMainPort {
 public:
  static constexpr std::size_t kMaxFrame = 9216;
  static constexpr std::size_t kReadChunk = 16 * 1024;
  static constexpr std::size_t kQueueBytes = 128 * 1024;
  static constexpr int kMaxUnauthenticatedFrames = 4;
  static constexpr Duration kSweepInterval = std::chrono::seconds(1);

  struct Handlers {
    std::function<void(ConnectionId, const Endpoint& from, PacketView frame)> on_frame;
    std::function<void(ConnectionId)> on_closed;
    std::function<bool(ConnectionId)> authenticated;
  };

  // Listens on `listen`; the message names the address and what failed.
  static Expected<std::unique_ptr<TcpMainPort>, io::IoError> open(boost::asio::io_context& io,
                                                                  const Endpoint& listen,
                                                                  TcpPortLimits limits,
                                                                  Handlers handlers);
  ~TcpMainPort();
  TcpMainPort(const TcpMainPort&) = delete;
  TcpMainPort& operator=(const TcpMainPort&) = delete;

  // Queues one datagram on `connection`; dropped (counted) when it is gone.
  void send(ConnectionId connection, std::span<const std::uint8_t> datagram);
  // Stops listening and closes every connection; idempotent.
  void close();

  const Endpoint& endpoint() const { return endpoint_; }
  std::size_t connections() const { return connections_.size(); }
  const TcpPortStats& stats() const { return stats_; }

 private:
  struct Connection {
    std::shared_ptr<io::TcpStream> stream;
    IpAddress source;  // the per-source key
    Time opened;
    Time last_frame;
    int frames = 0;
  };

  TcpMainPort(boost::asio::io_context& io, TcpPortLimits limits, Handlers handlers);
  void accept();
  void on_accepted(boost::asio::ip::tcp::socket socket);
  void on_frame(ConnectionId id, PacketView frame);
  void drop(ConnectionId id, std::uint64_t& counter);
  void sweep();

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  TcpPortLimits limits_;
  Handlers handlers_;
  Endpoint endpoint_;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::map<IpAddress, std::size_t> per_source_;
  ConnectionId next_id_ = 1;
  TcpPortStats stats_;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for handlers that outlive us
};

}  // namespace p2p::coord
