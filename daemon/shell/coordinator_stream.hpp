// CoordinatorStreams: the daemon's TCP connections to coordinators' main ports, the coordinator
// link's second carrier (daemon/core/coordinator_link.hpp), at most one per coordinator slot.
//
// open() connects (bounded by kConnectTimeout) with TCP keepalive (kKeepIdle, kKeepInterval,
// kKeepCount: a dead connection is noticed within about 35 s even when nothing is sent) and
// io::TcpStream's TCP_NODELAY, TCP_NOTSENT_LOWAT and bounded send queue, which drops the
// oldest waiting frame when full (counted: send_dropped()). Every frame read goes to on_frame
// as one datagram from the coordinator; on_state says when a stream opened, and when it
// failed to open or closed (once per open()). When to open again, and the back-off, are the
// core's: the link asks again through NodeEffects::coordinator_stream_open.
//
// close() stops a stream at once and reports nothing more for it (a later open() is a new
// one). Threading: the io_context's one thread.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>

#include "net/asio/tcp_stream.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"

namespace p2p::daemon {

class CoordinatorStreams {
 public:
  static constexpr std::chrono::seconds kConnectTimeout{5};
  static constexpr int kKeepIdle = 20, kKeepInterval = 5, kKeepCount = 3;  // seconds, probes
  // No node datagram is larger (a 9000-byte MTU packet with the relay's and both sessions'
  // headers), as the coordinator's main port bounds it.
  static constexpr std::size_t kMaxFrame = 9216;

  struct Handlers {
    std::function<void(std::uint32_t slot, bool open)> on_state;
    std::function<void(std::uint32_t slot, PacketView frame)> on_frame;
  };

  CoordinatorStreams(boost::asio::io_context& io, spdlog::logger& log, Handlers handlers);
  ~CoordinatorStreams();
  CoordinatorStreams(const CoordinatorStreams&) = delete;
  CoordinatorStreams& operator=(const CoordinatorStreams&) = delete;

  void open(std::uint32_t slot, const Endpoint& to);
  // One datagram as one frame; dropped (counted) without an open stream.
  void send(std::uint32_t slot, std::span<const std::uint8_t> datagram);
  void close(std::uint32_t slot);
  void close_all();

  // Frames dropped: the oldest of a full queue, or sent without an open stream.
  std::uint64_t send_dropped() const;

 private:
  struct Slot {
    std::uint64_t generation = 0;  // of the open() in progress or done
    std::shared_ptr<io::TcpStream> stream;
  };
  void on_connected(std::uint32_t slot, std::uint64_t generation,
                    Expected<boost::asio::ip::tcp::socket, io::IoError> r, const Endpoint& to);

  boost::asio::io_context& io_;
  spdlog::logger& log_;
  Handlers handlers_;
  std::map<std::uint32_t, Slot> slots_;
  std::uint64_t next_generation_ = 1;
  std::uint64_t dropped_ = 0;  // by streams since closed, and without a stream
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for connects that outlive us
};

}  // namespace p2p::daemon
