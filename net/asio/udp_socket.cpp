#include "net/asio/udp_socket.hpp"

#include <fcntl.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "net/asio/socket_address.hpp"
#include "net/udp_offload.hpp"

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
  // What one sendmmsg() hands over: a message per datagram, or per run (gso), with the number
  // of datagrams each carries and its UDP_SEGMENT control message.
  std::array<mmsghdr, kQueueMessages> out_msgs{};
  std::array<std::size_t, kQueueMessages> out_counts{};
  std::array<std::size_t, kQueueMessages> run_sizes{};
  struct alignas(cmsghdr) Control {
    std::array<std::uint8_t, CMSG_SPACE(sizeof(std::uint16_t))> bytes;
  };
  std::array<Control, kQueueMessages> out_control{};

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

// The coalesced receive side (gro): kGroBuffers messages of kGroBufferSize bytes, and where
// receive_batch() is in handing them out (message `msg`, its datagram `seg`).
struct UdpSocket::GroBuffers {
  std::array<mmsghdr, kGroBuffers> msgs{};
  std::array<iovec, kGroBuffers> iov{};
  std::array<sockaddr_storage, kGroBuffers> addr{};
  struct alignas(cmsghdr) Control {
    std::array<std::uint8_t, CMSG_SPACE(sizeof(int))> bytes;
  };
  std::array<Control, kGroBuffers> control{};
  std::array<std::size_t, kGroBuffers> length{};    // 0: nothing usable
  std::array<std::size_t, kGroBuffers> gso_size{};  // 0: one datagram
  std::array<Endpoint, kGroBuffers> from{};
  std::size_t count = 0, msg = 0, seg = 0;
  std::vector<std::uint8_t> data = std::vector<std::uint8_t>(kGroBuffers * kGroBufferSize);
};

namespace {

// A receive message for one datagram from anyone into `iov`.
void point_receive(msghdr& h, sockaddr_storage& from, iovec& iov) {
  h = msghdr{};
  h.msg_name = &from;
  h.msg_namelen = sizeof(sockaddr_storage);
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
}

// recvmmsg without blocking, again after a signal.
int receive_messages(int fd, mmsghdr* msgs, std::size_t n) {
  int r;
  do {
    r = ::recvmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  return r;
}

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
      retry_timer_(socket_.get_executor()) {
  // The probes: setting UDP_SEGMENT to 0 (no default segmentation) succeeds where the kernel
  // has GSO; UDP_GRO is switched on where it has that.
  const int fd = socket_.native_handle();
  if (options.gso) {
    int none = 0;
    gso_ = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &none, sizeof none) == 0 ? Offload::kOn
                                                                         : Offload::kUnsupported;
  }
  if (options.gro) {
    int on = 1;
    gro_ = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0 ? Offload::kOn
                                                                 : Offload::kUnsupported;
    if (gro_ == Offload::kOn) gro_buf_ = std::make_unique<GroBuffers>();
  }
}

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
  if (gro_buf_) return receive_coalesced(pool, out, n);
  auto& b = *buf_;
  for (std::size_t i = 0; i < n; ++i) {
    b.rx_iov[i] = iovec{pool.packet(i), PacketPool::kPacketCapacity};
    point_receive(b.rx_msgs[i].msg_hdr, b.rx_addr[i], b.rx_iov[i]);
  }
  int r = receive_messages(socket_.native_handle(), b.rx_msgs.data(), n);
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

std::size_t UdpSocket::build_messages(std::size_t from, bool split_first) {
  auto& b = *buf_;
  std::size_t m = 0;
  for (std::size_t i = from; i < queued_; ++m) {
    std::size_t count = 1;
    if (gso_ == Offload::kOn && !(split_first && m == 0)) {
      // The datagrams to this one's destination that follow it, then the run among them.
      const auto& name = b.tx_msgs[i].msg_hdr;
      std::size_t same = 1;
      b.run_sizes[0] = b.tx_iov[i].iov_len;
      while (i + same < queued_ && same < udp_offload::kMaxSegments &&
             b.tx_msgs[i + same].msg_hdr.msg_namelen == name.msg_namelen &&
             std::memcmp(&b.tx_addr[i + same], &b.tx_addr[i], name.msg_namelen) == 0) {
        b.run_sizes[same] = b.tx_iov[i + same].iov_len;
        ++same;
      }
      count = udp_offload::gso_run_length({b.run_sizes.data(), same});
    }
    msghdr& h = b.out_msgs[m].msg_hdr;
    h = b.tx_msgs[i].msg_hdr;  // its iovec is the first of `count` consecutive ones
    h.msg_iovlen = count;
    if (count > 1) {
      h.msg_control = b.out_control[m].bytes.data();
      h.msg_controllen = b.out_control[m].bytes.size();
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      const auto size = static_cast<std::uint16_t>(b.tx_iov[i].iov_len);
      std::memcpy(CMSG_DATA(c), &size, sizeof size);
    }
    b.out_counts[m] = count;
    i += count;
  }
  return m;
}

std::size_t UdpSocket::flush() {
  auto& b = *buf_;
  std::size_t off = 0, sent = 0;
  no_buffers_ = false;
  bool split_first = false;  // the kernel refused the first run as one message
  while (off < queued_) {
    const std::size_t m = build_messages(off, split_first);
    int r = ::sendmmsg(socket_.native_handle(), b.out_msgs.data(), static_cast<unsigned>(m),
                       MSG_DONTWAIT);
    if (r > 0) {
      for (std::size_t k = 0; k < static_cast<std::size_t>(r); ++k) {
        off += b.out_counts[k];
        sent += b.out_counts[k];
        if (b.out_counts[k] > 1) ++stats_.gso_sends;
      }
      split_first = false;
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
    if (b.out_counts[0] > 1 && (err == EIO || err == EINVAL)) {
      // The device cannot segment (EIO: never again), or not this run (EINVAL): one by one.
      if (err == EIO) gso_ = Offload::kUnsupported;
      split_first = true;
      continue;
    }
    // This datagram was refused (EHOSTUNREACH, ENETUNREACH, EPERM, ...): skip it.
    ++stats_.send_errors;
    stats_.last_send_errno = err;
    off += b.out_counts[0];
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

const char* to_string(UdpSocket::Offload o) {
  switch (o) {
    case UdpSocket::Offload::kOff: return "off";
    case UdpSocket::Offload::kOn: return "on";
    case UdpSocket::Offload::kUnsupported: return "unsupported";
  }
  return "off";
}

bool UdpSocket::has_pending() const {
  return gro_buf_ && gro_buf_->msg < gro_buf_->count;
}

template <class Take>
Expected<std::size_t, IoError> UdpSocket::take_coalesced(std::size_t n, Take take) {
  auto& g = *gro_buf_;
  std::size_t kept = 0;
  bool read = false;  // one recvmmsg per call at most
  while (kept < n) {
    if (g.msg == g.count) {
      if (read) break;
      read = true;
      for (std::size_t i = 0; i < kGroBuffers; ++i) {
        g.iov[i] = iovec{g.data.data() + i * kGroBufferSize, kGroBufferSize};
        auto& h = g.msgs[i].msg_hdr;
        point_receive(h, g.addr[i], g.iov[i]);
        h.msg_control = g.control[i].bytes.data();
        h.msg_controllen = g.control[i].bytes.size();
      }
      int r = receive_messages(socket_.native_handle(), g.msgs.data(), kGroBuffers);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || kept > 0) break;
        return fail(system_error("recvmmsg on " + local_.to_string(), errno));
      }
      g.count = static_cast<std::size_t>(r);
      g.msg = g.seg = 0;
      for (std::size_t i = 0; i < g.count; ++i) {
        auto& h = g.msgs[i].msg_hdr;
        auto from = from_sockaddr(g.addr[i], h.msg_namelen);
        g.length[i] = 0;
        g.gso_size[i] = 0;
        if ((h.msg_flags & MSG_TRUNC) || !from) {
          ++stats_.truncated;
          continue;
        }
        g.length[i] = g.msgs[i].msg_len;
        g.from[i] = *from;
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
          if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
              c->cmsg_len < CMSG_LEN(sizeof(int)))
            continue;
          int size;
          std::memcpy(&size, CMSG_DATA(c), sizeof size);
          g.gso_size[i] = size > 0 ? static_cast<std::size_t>(size) : 0;
        }
        if (udp_offload::gro_segment_count(g.length[i], g.gso_size[i]) > 1) ++stats_.gro_buffers;
      }
      continue;
    }
    std::uint8_t* const base = g.data.data() + g.msg * kGroBufferSize;
    const std::span<const std::uint8_t> buffer{base, g.length[g.msg]};
    if (g.seg >= udp_offload::gro_segment_count(buffer.size(), g.gso_size[g.msg])) {
      ++g.msg;
      g.seg = 0;
      continue;
    }
    auto datagram = udp_offload::gro_segment(buffer, g.gso_size[g.msg], g.seg++);
    const std::span<std::uint8_t> bytes{base + (datagram.data() - buffer.data()), datagram.size()};
    if (take(kept, bytes, g.from[g.msg])) ++kept;
  }
  stats_.received += kept;
  return kept;
}

Expected<std::size_t, IoError> UdpSocket::receive_coalesced(PacketPool& pool,
                                                            std::span<ReceivedDatagram> out,
                                                            std::size_t n) {
  return take_coalesced(n, [&](std::size_t i, std::span<std::uint8_t> d, const Endpoint& from) {
    if (d.size() > PacketPool::kPacketCapacity) {
      ++stats_.truncated;
      return false;
    }
    std::memcpy(pool.packet(i), d.data(), d.size());
    out[i] = ReceivedDatagram{d.size(), from};
    return true;
  });
}

Expected<std::size_t, IoError> UdpSocket::receive_in_place(std::span<ReceivedInPlace> out) {
  if (!gro_buf_) return fail(system_error("in-place receive on " + local_.to_string(), EOPNOTSUPP));
  return take_coalesced(out.size(),
                        [&](std::size_t i, std::span<std::uint8_t> d, const Endpoint& from) {
                          out[i] = ReceivedInPlace{d, from};
                          return true;
                        });
}

bool UdpSocket::holds(std::span<const std::uint8_t> bytes) const {
  if (!gro_buf_ || bytes.empty()) return false;
  const std::uint8_t* begin = gro_buf_->data.data();
  return bytes.data() >= begin && bytes.data() + bytes.size() <= begin + gro_buf_->data.size();
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
