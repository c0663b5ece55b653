#include "daemon/shell/punch_sockets.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/shell/node_shell.hpp"
#include "net/asio/socket_address.hpp"

namespace p2p::daemon {

PunchSockets::PunchSockets(boost::asio::io_context& io, IpAddress address, Receive receive,
                           spdlog::logger& log)
    : io_(io),
      address_(address),
      family_(std::holds_alternative<Ipv4>(address) ? AF_INET : AF_INET6),
      receive_(std::move(receive)),
      log_(log),
      buffer_(kBufferSize) {}

std::uint32_t PunchSockets::open_punch_socket() {
  if (sockets_.size() >= kMaxSockets) return 0;
  int fd = ::socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (open_failures_++ == 0) log_.warn("birthday punch: socket(): {}", std::strerror(errno));
    return 0;
  }
  if (family_ == AF_INET6) {
    int off = 0;
    (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  sockaddr_storage sa{};
  socklen_t len = io::to_sockaddr(Endpoint{address_, 0}, family_, sa);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (len == 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    if (open_failures_++ == 0) log_.warn("birthday punch: bind(): {}", std::strerror(errno));
    ::close(fd);
    return 0;
  }
  const std::uint32_t id = next_id_++;
  Socket& s = sockets_[id];
  s.fd = fd;
  s.local = io::from_sockaddr(bound, bound_len).value_or(Endpoint{});
  s.watch = std::make_unique<io::FdWatch>(io_, fd);
  wait(id, s);
  return id;
}

void PunchSockets::wait(std::uint32_t id, Socket& s) {
  s.watch->async_wait_readable([this, id](const boost::system::error_code& ec) {
    if (!ec) on_readable(id);
  });
}

void PunchSockets::on_readable(std::uint32_t id) {
  // A datagram may make the core close this socket (or any other): look it up each time.
  for (int i = 0; i < 16; ++i) {
    auto it = sockets_.find(id);
    if (it == sockets_.end()) return;
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const auto n = ::recvfrom(it->second.fd, buffer_.data() + kHeadroom, kMaxPacket, 0,
                              reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) break;  // EAGAIN, or an ICMP error queued on the socket
    auto sender = io::from_sockaddr(from, from_len);
    if (!sender || n == 0) continue;
    receive_(id, *sender,
             PacketView(buffer_.data(), buffer_.size(), kHeadroom, static_cast<std::size_t>(n)));
  }
  if (auto it = sockets_.find(id); it != sockets_.end()) wait(id, it->second);
}

void PunchSockets::send_punch(std::uint32_t socket, const Endpoint& to,
                              std::span<const std::uint8_t> d) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end()) return;
  sockaddr_storage sa{};
  socklen_t len = io::to_sockaddr(to, family_, sa);
  if (len == 0 ||
      ::sendto(it->second.fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&sa), len) < 0)
    ++send_drops_;
}

void PunchSockets::close_punch_socket(std::uint32_t socket) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end()) return;
  it->second.watch->release();  // cancels the wait; its handler sees the socket gone
  ::close(it->second.fd);
  sockets_.erase(it);
}

void PunchSockets::adopt_punch_socket(std::uint32_t socket) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end()) return;
  log_.info("birthday punch: socket udp={} carries a direct path now",
            it->second.local.to_string());
}

void PunchSockets::close_all() {
  while (!sockets_.empty()) close_punch_socket(sockets_.begin()->first);
  if (send_drops_ != 0)
    log_.info("birthday punch: {} probes not sent (socket buffer full)", send_drops_);
  send_drops_ = 0;
}

// NodeShell's side: the sockets exist while the birthday punch is enabled.
void NodeShell::open_punch_sockets(const config::MeshConfig& config) {
  if (!config.punch.birthday.enabled) return;
  punch_ = std::make_unique<PunchSockets>(
      io_, listen_address_,
      [this](std::uint32_t socket, const Endpoint& from, PacketView d) {
        const Time now = Clock::now();
        node_->on_punch_udp(now, socket, from, d);
        after_event(now);
      },
      *log_.node);
}

}  // namespace p2p::daemon
