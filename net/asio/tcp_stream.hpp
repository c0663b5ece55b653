// TcpStream: datagrams framed on one TCP connection (net/stream_frame.hpp), for the shells:
// the node's control connection to the coordinator's main port and its TCP peer paths, and
// the coordinator's side of them.
//
// TCP carried inside TCP must not melt down into seconds of queueing, so a stream keeps
// little in flight: TCP_NODELAY; TCP_NOTSENT_LOWAT bounds what the kernel holds unsent (the
// socket is writable only below it, and send() stops there); and a small bounded queue of
// frames waiting for the socket drops its OLDEST waiting frame (counted in send_dropped)
// rather than grow when the path is slower than its source. Up to kWriteBatch frames go to
// the kernel in one gathered write.
//
// Receive: one read buffer and one FrameDecoder, both allocated at open(); every whole frame
// goes to on_frame as a PacketView with headroom and tailroom (valid during the call only; it
// may be modified in place). A frame over max_frame means the stream is hostile or out of
// sync: the stream closes.
//
// Lifetime: a TcpStream is shared (its pending operations hold it). close() stops it at once
// and calls nothing; when the peer or an error ends it, on_closed is called once with why. A
// callback may close the stream or drop the last reference to it. The callbacks are released
// when the stream stops, so they may hold their owner. Threading: one thread runs the
// io_context.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "net/asio/io_error.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"
#include "net/stream_frame.hpp"

namespace p2p::io {

boost::asio::ip::tcp::endpoint to_tcp(const Endpoint& e);
Endpoint from_tcp(const boost::asio::ip::tcp::endpoint& e);

// A TCP socket bound to `local` (port 0: any) with SO_REUSEADDR and SO_REUSEPORT, not yet
// connected: a punching node connects from, and listens on, one port at once.
Expected<boost::asio::ip::tcp::socket, IoError> bind_tcp(boost::asio::io_context& io,
                                                         const Endpoint& local);
// A listening socket on `local` with SO_REUSEADDR and SO_REUSEPORT (see endpoint() of the
// acceptor for the port chosen when local's is 0).
Expected<boost::asio::ip::tcp::acceptor, IoError> listen_tcp(boost::asio::io_context& io,
                                                             const Endpoint& local, int backlog);

// Connects `socket` (bound by bind_tcp(), or fresh: pass an unopened socket and it is opened
// for remote's family) to `remote`. `done` is called exactly once, with the connected socket or
// why not (refused, unreachable, or no answer within `timeout`).
using ConnectDone = std::function<void(Expected<boost::asio::ip::tcp::socket, IoError>)>;
void connect_tcp(boost::asio::ip::tcp::socket socket, const Endpoint& remote,
                 std::chrono::milliseconds timeout, ConnectDone done);

struct TcpStreamOptions {
  std::size_t max_frame = wire::kMaxFrame;   // larger frames received close the stream
  std::size_t max_queue_frames = 64;         // frames waiting for the socket, in flight too
  std::size_t max_queue_bytes = 256 * 1024;  // their bytes (at least one max frame fits)
  int notsent_lowat = 32 * 1024;             // TCP_NOTSENT_LOWAT; 0 leaves the default
  std::size_t read_chunk = 64 * 1024;        // the read buffer, allocated at open()
};

struct TcpStreamStats {
  std::uint64_t frames_received = 0;
  std::uint64_t frames_sent = 0;  // handed to the kernel
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t send_dropped = 0;  // oldest waiting frame dropped for a newer one
  std::uint64_t send_refused = 0;  // over max_frame, or the stream was closed
};

class TcpStream : public std::enable_shared_from_this<TcpStream> {
 public:
  static constexpr std::size_t kWriteBatch = 16;

  using OnFrame = std::function<void(PacketView frame)>;
  using OnClosed = std::function<void(const IoError& why)>;

  // Takes a connected socket and sets its options (TCP_NODELAY, TCP_NOTSENT_LOWAT).
  static std::shared_ptr<TcpStream> open(boost::asio::ip::tcp::socket socket,
                                         const TcpStreamOptions& options = {});
  TcpStream(boost::asio::ip::tcp::socket socket, const TcpStreamOptions& options);
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Starts reading. Call once.
  void start(OnFrame on_frame, OnClosed on_closed);
  // Queues one datagram as a frame (copied); false when refused (too large, closed). A full
  // queue drops its oldest waiting frame to make room.
  bool send(std::span<const std::uint8_t> datagram);
  // Stops reading and writing and closes the socket; on_closed is not called. Idempotent.
  void close();

  bool is_open() const { return !closed_; }
  const Endpoint& local_endpoint() const { return local_; }
  const Endpoint& remote_endpoint() const { return remote_; }
  const TcpStreamStats& stats() const { return stats_; }
  // Frames queued and not yet handed to the kernel, with those being written.
  std::size_t queued_frames() const { return queue_.size(); }

 private:
  void read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void write();
  void on_written(const boost::system::error_code& ec, std::size_t frames);
  void end(const IoError& why);
  void release_callbacks();

  boost::asio::ip::tcp::socket socket_;
  TcpStreamOptions options_;
  Endpoint local_;
  Endpoint remote_;
  wire::FrameDecoder decoder_;
  std::vector<std::uint8_t> in_;
  std::deque<std::vector<std::uint8_t>> queue_;   // framed: header and datagram
  std::vector<std::vector<std::uint8_t>> spare_;  // emptied frames, their capacity reused
  std::vector<boost::asio::const_buffer> gather_;
  std::size_t queued_bytes_ = 0;
  std::size_t writing_ = 0;  // frames at the queue's front in the current write
  bool reading_ = false;
  bool closed_ = false;
  OnFrame on_frame_;
  OnClosed on_closed_;
  TcpStreamStats stats_;
};

}  // namespace p2p::io
