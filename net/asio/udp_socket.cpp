#include "net/asio/udp_socket.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "net/asio/socket_address.hpp"

namespace p2p::io {

namespace asio = boost::asio;

struct UdpSocket::Buffers {
  // Receive side: one entry per pool buffer of a batch.
  std::array<mmsghdr, kMaxBatch> rx_msgs{};
  std::array<iovec, kMaxBatch> rx_iov{};
  std::array<sockaddr_storage, kMaxBatch> rx_addr{};
  // Send side: the queue, and the arena for copied datagrams.
  std::array<mmsghdr, kQueueMessages> tx_msgs{};
  std::array<iovec, kQueueMessages> tx_iov{};
  std::array<sockaddr_storage, kQueueMessages> tx_addr{};
  std::array<std::uint8_t, kQueueArena> arena{};

  // Points queue entry i at its address (namelen bytes) and its one iovec.
  void point_message(std::size_t i, socklen_t namelen) {
    auto& h = tx_msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &tx_addr[i];
    h.msg_namelen = namelen;
    h.msg_iov = &tx_iov[i];
    h.msg_iovlen = 1;
  }
};

namespace {

// Sets a socket buffer size, past the sysctl maximum when we have CAP_NET_ADMIN.
void set_buffer(int fd, int force_option, int option, int bytes) {
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, force_option, &bytes, sizeof bytes) == 0) return;
  (void)setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes);
}

}  // namespace

Expected<UdpSocket, IoError> UdpSocket::open(asio::io_context& io, const Endpoint& local,
                                             const UdpOptions& options) {
  const int family = local.is_v4() ? AF_INET : AF_INET6;
  const std::string where = "UDP socket on " + local.to_string();
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(system_error(where + ": socket", errno));
  if (family == AF_INET6) {
    int v6only = is_unspecified(local.address) ? 0 : 1;
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.receive_buffer);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.send_buffer);
  sockaddr_storage sa;
  socklen_t len = to_sockaddr(local, family, sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int err = errno;
    ::close(fd);
    return fail(system_error(where + ": bind", err));
  }
  len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    int err = errno;
    ::close(fd);
    return fail(system_error(where + ": getsockname", err));
  }
  Endpoint bound = from_sockaddr(sa, len).value_or(local);
  bound.address = local.address;  // keep the configured (possibly wildcard) address as given
  asio::ip::udp::socket socket(io);
  boost::system::error_code ec;
  socket.assign(family == AF_INET ? asio::ip::udp::v4() : asio::ip::udp::v6(), fd, ec);
  if (ec) {
    ::close(fd);
    return fail(IoError{ec.value(), where + ": " + ec.message()});
  }
  return UdpSocket(std::move(socket), family, bound, options);
}

UdpSocket::UdpSocket(asio::ip::udp::socket socket, int family, Endpoint local,
                     const UdpOptions& options)
    : socket_(std::move(socket)),
      family_(family),
      local_(local),
      max_batch_(std::clamp<std::size_t>(options.max_batch, 1, kMaxBatch)),
      buf_(std::make_unique<Buffers>()),
      retry_timer_(socket_.get_executor()) {}

UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&&) noexcept = default;
UdpSocket::~UdpSocket() = default;

void UdpSocket::close() {
  boost::system::error_code ec;
  socket_.close(ec);
  retry_timer_.cancel();
}

Expected<std::size_t, IoError> UdpSocket::receive_batch(PacketPool& pool,
                                                        std::span<ReceivedDatagram> out) {
  std::size_t n = std::min({out.size(), pool.size(), max_batch_});
  if (n == 0) return std::size_t{0};
  auto& b = *buf_;
  for (std::size_t i = 0; i < n; ++i) {
    b.rx_iov[i] = iovec{pool.packet(i), PacketPool::kPacketCapacity};
    auto& h = b.rx_msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &b.rx_addr[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &b.rx_iov[i];
    h.msg_iovlen = 1;
  }
  int r;
  do {
    r = ::recvmmsg(socket_.native_handle(), b.rx_msgs.data(), static_cast<unsigned>(n),
                   MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return fail(system_error("recvmmsg on " + local_.to_string(), errno));
  }
  // Compact: skip truncated datagrams and unknown address families.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) {
    const auto& h = b.rx_msgs[i].msg_hdr;
    auto from = from_sockaddr(b.rx_addr[i], h.msg_namelen);
    if ((h.msg_flags & MSG_TRUNC) || !from) {
      ++stats_.truncated;
      continue;
    }
    if (kept != i) std::memcpy(pool.packet(kept), pool.packet(i), b.rx_msgs[i].msg_len);
    out[kept] = ReceivedDatagram{b.rx_msgs[i].msg_len, *from};
    ++kept;
  }
  stats_.received += kept;
  return kept;
}

bool UdpSocket::queue(const Endpoint& to, std::span<const std::uint8_t> datagram, Hold hold) {
  auto full = [&] {
    return queued_ == kQueueMessages ||
           (hold == Hold::kCopy && arena_used_ + datagram.size() > kQueueArena);
  };
  if (full()) flush();
  if (full()) {  // still: the kernel takes nothing now; never wait for it
    ++stats_.send_dropped;
    return false;
  }
  auto& b = *buf_;
  socklen_t len = to_sockaddr(to, family_, b.tx_addr[queued_]);
  if (len == 0) {
    ++stats_.send_dropped;
    return false;
  }
  void* base = const_cast<std::uint8_t*>(datagram.data());
  if (hold == Hold::kCopy) {
    base = b.arena.data() + arena_used_;
    std::memcpy(base, datagram.data(), datagram.size());
    arena_used_ += (datagram.size() + 15) & ~std::size_t{15};
  }
  b.tx_iov[queued_] = iovec{base, datagram.size()};
  b.point_message(queued_, len);
  ++queued_;
  return true;
}

std::size_t UdpSocket::flush() {
  auto& b = *buf_;
  std::size_t off = 0, sent = 0;
  no_buffers_ = false;
  while (off < queued_) {
    int r = ::sendmmsg(socket_.native_handle(), b.tx_msgs.data() + off,
                       static_cast<unsigned>(queued_ - off), MSG_DONTWAIT);
    if (r > 0) {
      off += static_cast<std::size_t>(r);
      sent += static_cast<std::size_t>(r);
      continue;
    }
    int err = r < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      // The socket buffer or the device queue is full: the rest waits for room.
      no_buffers_ = err == ENOBUFS;
      ++stats_.send_blocked;
      stats_.last_send_errno = err;
      break;
    }
    // This datagram was refused (EHOSTUNREACH, ENETUNREACH, EPERM, ...): skip it.
    ++stats_.send_errors;
    stats_.last_send_errno = err;
    ++off;
  }
  stats_.sent += sent;
  keep_unsent(off);
  return sent;
}

void UdpSocket::keep_unsent(std::size_t from) {
  auto& b = *buf_;
  std::uint8_t* const arena = b.arena.data();
  auto in_arena = [&](const iovec& v) {
    auto* p = static_cast<std::uint8_t*>(v.iov_base);
    return p >= arena && p < arena + kQueueArena;
  };
  auto aligned = [](std::size_t n) { return (n + 15) & ~std::size_t{15}; };
  // Copies first, in the order they lie in the arena, so that each moves down (or stays).
  std::array<std::uint16_t, kQueueMessages> order;
  std::size_t copies = 0;
  for (std::size_t i = from; i < queued_; ++i) {
    if (in_arena(b.tx_iov[i])) order[copies++] = static_cast<std::uint16_t>(i);
  }
  std::sort(order.begin(), order.begin() + copies, [&](std::uint16_t x, std::uint16_t y) {
    return b.tx_iov[x].iov_base < b.tx_iov[y].iov_base;
  });
  std::size_t used = 0;
  for (std::size_t k = 0; k < copies; ++k) {
    iovec& v = b.tx_iov[order[k]];
    std::memmove(arena + used, v.iov_base, v.iov_len);
    v.iov_base = arena + used;
    used += aligned(v.iov_len);
  }
  // Then references, behind them; then the entries move to the front of the queue.
  std::size_t kept = 0;
  for (std::size_t i = from; i < queued_; ++i) {
    iovec v = b.tx_iov[i];
    if (!in_arena(v)) {
      if (used + v.iov_len > kQueueArena) {
        ++stats_.send_dropped;
        continue;
      }
      std::memcpy(arena + used, v.iov_base, v.iov_len);
      v.iov_base = arena + used;
      used += aligned(v.iov_len);
    }
    const socklen_t namelen = b.tx_msgs[i].msg_hdr.msg_namelen;
    b.tx_addr[kept] = b.tx_addr[i];
    b.tx_iov[kept] = v;
    b.point_message(kept, namelen);
    ++kept;
  }
  queued_ = kept;
  arena_used_ = used;
}

void UdpSocket::async_wait_sendable(std::function<void(const boost::system::error_code&)> handler) {
  if (no_buffers_) {
    retry_timer_.expires_after(kNoBufsRetry);
    retry_timer_.async_wait(std::move(handler));
  } else {
    socket_.async_wait(asio::socket_base::wait_write, std::move(handler));
  }
}

}  // namespace p2p::io
