// UdpSocket: one non-blocking UDP socket read with recvmmsg() and written with sendmmsg().
//
// Receive: receive_batch() reads every datagram already queued, up to one per pool buffer
// (at most kMaxBatch), each straight to pool.packet(i) so that the cores find their headroom
// and tailroom around it. It never blocks; async_wait_readable() tells when to call it again.
//
// Send: queue() collects datagrams and flush() hands them to the kernel in one sendmmsg().
// A datagram queued by reference is not copied: its bytes must stay unchanged until the next
// flush() returns (the shells reference packets in the pool buffer of the batch being
// processed and flush before the next read into that pool; the cores send such a packet as
// the last thing they do with it). Anything else is copied into the queue's own arena.
// flush() never blocks: what the kernel does not take now (socket buffer full, EAGAIN, or
// device queue full, ENOBUFS) stays queued, in order, and referenced datagrams among it are
// copied into the arena first, so the caller may reuse its buffers as soon as flush()
// returns. async_wait_sendable() tells when to flush() again. The queue is bounded
// (kQueueMessages, kQueueArena): a datagram that finds it full after a flush is dropped and
// counted, never waited for. A shell stops producing (reading the TUN) while queued() > 0.
//
// Offloads (UdpOptions::gso, ::gro, both off by default; net/udp_offload.hpp): with gso, flush()
// sends each run of same-size datagrams to one destination as one message with a UDP_SEGMENT
// control message; a kernel without it (the probe at open() fails: gso() is kUnsupported)
// or a device that refuses it (EIO at the first such send: from then on kUnsupported) gets
// one datagram per message, as without the option; a run the kernel refuses with EINVAL (a
// segment larger than the path's MTU) is sent again datagram by datagram. With gro, the
// kernel may hand over several datagrams of one sender in one buffer (UDP_GRO): they are read
// into the socket's own buffers (kGroBuffers of 64 KiB, one recvmmsg) and copied out one
// datagram per pool buffer; what does not fit into one receive_batch() stays for the next
// (has_pending(): call receive_batch() again before waiting for readability).
//
// In-place receive (gro on): receive_in_place() hands out views of the datagrams in those
// coalesced buffers, each cut by its buffer's segment size, nothing copied. A view may be
// written (a relay re-seals it in place) and queued by reference (holds() says it lies in
// those buffers); it stays valid until the next receive_in_place() or receive_batch().
//
// Errors for single datagrams (unreachable network, no route) are counted and skipped; the
// data path never throws and allocates nothing after open(). Not thread-safe; one io_context.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>
// Asio after <utility> (Boost 1.74 needs std::exchange declared first).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "net/asio/io_error.hpp"
#include "net/asio/packet_pool.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"

namespace p2p::io {

struct UdpOptions {
  int receive_buffer = 4 << 20;  // SO_RCVBUF (forced past rmem_max when privileged)
  int send_buffer = 4 << 20;     // SO_SNDBUF
  std::size_t max_batch = 64;    // datagrams per receive_batch(), <= kMaxBatch
  bool gso = false;              // UDP_SEGMENT on send, where the kernel has it
  bool gro = false;              // UDP_GRO on receive, where the kernel has it
};

struct ReceivedDatagram {
  std::size_t length = 0;  // bytes at pool.packet(i)
  Endpoint from;
};

// A datagram where receive_in_place() left it, in the socket's own buffers.
struct ReceivedInPlace {
  std::span<std::uint8_t> bytes;
  Endpoint from;
};

struct UdpStats {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t send_errors = 0;   // refused by the kernel (unreachable, no route, ...)
  std::uint64_t send_dropped = 0;  // socket buffer stayed full, or unreachable family
  std::uint64_t truncated = 0;     // larger than a pool buffer (cannot happen for UDP/IPv4)
  int last_send_errno = 0;
  std::uint64_t send_blocked = 0;  // flushes that left datagrams queued for writability
  std::uint64_t gso_sends = 0;     // messages that carried more than one datagram (UDP_SEGMENT)
  std::uint64_t gro_buffers = 0;   // received buffers that held more than one datagram
};

class UdpSocket {
 public:
  static constexpr std::size_t kMaxBatch = 256;
  static constexpr std::size_t kQueueMessages = 256;
  static constexpr std::size_t kQueueArena = 512 * 1024;
  // ENOBUFS (a full device queue) does not show in poll(): retried after this long instead.
  static constexpr std::chrono::milliseconds kNoBufsRetry{1};
  // Coalesced receive buffers (gro): this many messages per recvmmsg, each up to 64 KiB.
  static constexpr std::size_t kGroBuffers = 16;
  static constexpr std::size_t kGroBufferSize = 65536;

  // What an offload asked for in UdpOptions came to.
  enum class Offload { kOff, kOn, kUnsupported };

  // Binds to `local` (port 0: any free port). An IPv6 wildcard socket is dual-stack.
  static Expected<UdpSocket, IoError> open(boost::asio::io_context& io, const Endpoint& local,
                                           const UdpOptions& options = {});

  UdpSocket(UdpSocket&&) noexcept;
  UdpSocket& operator=(UdpSocket&&) noexcept;
  ~UdpSocket();

  // The bound address and port.
  const Endpoint& local_endpoint() const { return local_; }
  int family() const { return family_; }
  int native_handle() { return socket_.native_handle(); }

  // Reads up to min(out.size(), pool.size(), max_batch) datagrams; datagram i goes to
  // pool.packet(i) and out[i]. Returns how many (0: none queued). An error only when nothing
  // was read.
  Expected<std::size_t, IoError> receive_batch(PacketPool& pool, std::span<ReceivedDatagram> out);

  // Calls `handler(error_code)` once the socket is readable.
  template <class Handler>
  void async_wait_readable(Handler&& handler) {
    socket_.async_wait(boost::asio::socket_base::wait_read, std::forward<Handler>(handler));
  }

  enum class Hold { kCopy, kReference };
  // Queues one datagram; false (and counted as dropped) if `to` is not reachable from this
  // socket's family or the datagram is larger than the arena.
  bool queue(const Endpoint& to, std::span<const std::uint8_t> datagram, Hold hold = Hold::kCopy);
  std::size_t queued() const { return queued_; }
  // Sends what the kernel takes without blocking; returns how many it took. Whatever is left
  // (queued() > 0) no longer refers to the caller's buffers.
  std::size_t flush();
  // Calls `handler(error_code)` once a flush() may make progress again: the socket is
  // writable, or, after ENOBUFS, kNoBufsRetry has passed. One wait at a time.
  void async_wait_sendable(std::function<void(const boost::system::error_code&)> handler);

  const UdpStats& stats() const { return stats_; }
  Offload gso() const { return gso_; }
  Offload gro() const { return gro_; }
  // Datagrams already read from the kernel (gro) that the next receive_batch() hands out.
  bool has_pending() const;
  // Closes the socket; pending waits complete with operation_aborted.
  void close();

  // Up to out.size() datagrams, as views into the coalesced buffers (at most one recvmmsg per
  // call; what does not fit stays for the next, has_pending()). Needs gro() == kOn: otherwise
  // an error (EOPNOTSUPP), and receive_batch() is the way. An error only when nothing was read.
  Expected<std::size_t, IoError> receive_in_place(std::span<ReceivedInPlace> out);
  // True when `bytes` lie inside the coalesced receive buffers.
  bool holds(std::span<const std::uint8_t> bytes) const;

 private:
  // Keeps the unsent datagrams [from, queued_) at the front of the queue, copying referenced
  // ones into the arena (dropping, counted, those that no longer fit).
  void keep_unsent(std::size_t from);

  // Fills the send messages for the queue from `from` on: runs with UDP_SEGMENT when gso_ is
  // on (except the first when `split_first`), else one datagram each. Returns how many.
  std::size_t build_messages(std::size_t from, bool split_first);
  Expected<std::size_t, IoError> receive_coalesced(PacketPool& pool,
                                                   std::span<ReceivedDatagram> out, std::size_t n);
  // Hands the coalesced buffers' datagrams, one by one, to `take(bytes, from)` (false: stop)
  // until `n` were taken, reading with one recvmmsg when none is left. Returns how many.
  template <class Take>
  Expected<std::size_t, IoError> take_coalesced(std::size_t n, Take take);

  struct Buffers;     // the mmsghdr/iovec/sockaddr arrays, allocated once
  struct GroBuffers;  // the coalesced receive buffers, allocated once when gro is on
  UdpSocket(boost::asio::ip::udp::socket socket, int family, Endpoint local,
            const UdpOptions& options);

  boost::asio::ip::udp::socket socket_;
  int family_ = AF_INET;
  Endpoint local_;
  std::size_t max_batch_ = 64;
  std::unique_ptr<Buffers> buf_;
  std::size_t queued_ = 0;
  std::size_t arena_used_ = 0;
  UdpStats stats_;
  boost::asio::steady_timer retry_timer_;  // the ENOBUFS retry
  bool no_buffers_ = false;                // the last flush() stopped at ENOBUFS
  Offload gso_ = Offload::kOff;
  Offload gro_ = Offload::kOff;
  std::unique_ptr<GroBuffers> gro_buf_;
};

// "on", "off", "unsupported".
const char* to_string(UdpSocket::Offload o);

}  // namespace p2p::io
