// TcpPaths: the shell's side of TCP paths (issue 10): the punch ports of core::TcpPunch
// (daemon/core/tcp_punch.hpp) and the peer streams they turn into.
//
// A punch port is a fresh local port, bound with SO_REUSEADDR and SO_REUSEPORT by every
// socket on it (io::bind_tcp, io::listen_tcp): the listener, the connection to the
// coordinator's assist port that carries our hello (net/tcp_assist.hpp), and each connect to
// the peer (a new one closes the attempt before it). Whichever completes first, accepted or
// connected, goes to the Node (`established`); if the Node takes it, it becomes the stream
// named by the punch's id: an io::TcpStream (length-prefixed frames, TCP_NODELAY,
// TCP_NOTSENT_LOWAT, a small send queue that drops its oldest frame when full, bounded reads),
// whose frames go to `frame` and whose end goes to `closed`. Everything else of the punch is
// closed by punch_close().
//
// The callbacks run from the io_context's handlers, never from inside a call into TcpPaths.
// Threading: one thread runs the io_context.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>

#include "daemon/core/tcp_punch.hpp"
#include "net/asio/tcp_stream.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"

namespace p2p::daemon {

class TcpPaths final : public core::TcpPunchEffects {
 public:
  struct Callbacks {
    // A socket of `punch` completed: true when the Node took it as the stream `punch`.
    std::function<bool(std::uint32_t punch, bool inbound, const Endpoint& remote)> established;
    std::function<void(std::uint32_t punch)> connect_failed;  // refused or reset
    std::function<void(std::uint32_t stream, PacketView frame)> frame;
    std::function<void(std::uint32_t stream)> closed;
  };
  static constexpr int kBacklog = 4;
  static constexpr std::chrono::seconds kAssistTimeout{5};
  // The streams' options: 16 KiB unsent in the kernel, 64 frames (or 128 KiB) queued.
  static io::TcpStreamOptions stream_options();

  TcpPaths(boost::asio::io_context& io, Callbacks callbacks, spdlog::logger& log)
      : io_(io), cb_(std::move(callbacks)), log_(log) {}
  ~TcpPaths() override { close_all(); }
  TcpPaths(const TcpPaths&) = delete;
  TcpPaths& operator=(const TcpPaths&) = delete;

  // core::TcpPunchEffects
  void punch_open(std::uint32_t punch, const Endpoint& assist,
                  const wire::AssistHello& hello) override;
  void punch_connect(std::uint32_t punch, const Endpoint& to) override;
  void punch_close(std::uint32_t punch) override;

  // The peer streams (NodeEffects::send_stream, close_stream); an unknown stream is ignored.
  void send(std::uint32_t stream, std::span<const std::uint8_t> datagram);
  void close(std::uint32_t stream);
  // Closes every punch and stream (the daemon stops): nothing is called back.
  void close_all();

  std::size_t punches() const { return punches_.size(); }
  std::size_t streams() const { return streams_.size(); }
  std::uint64_t send_dropped() const;

 private:
  using Socket = boost::asio::ip::tcp::socket;
  struct Punch {
    Endpoint local;  // the punch port
    std::shared_ptr<boost::asio::ip::tcp::acceptor> listener;
    std::shared_ptr<Socket> assist;   // carries the hello
    std::shared_ptr<Socket> attempt;  // the pending connect to the peer
  };
  void accept(std::uint32_t punch);
  void hand_over(std::uint32_t punch, Socket socket, bool inbound);

  boost::asio::io_context& io_;
  Callbacks cb_;
  spdlog::logger& log_;
  std::map<std::uint32_t, Punch> punches_;
  std::map<std::uint32_t, std::shared_ptr<io::TcpStream>> streams_;
  std::uint64_t dropped_closed_ = 0;  // send_dropped of streams already gone
};

}  // namespace p2p::daemon
