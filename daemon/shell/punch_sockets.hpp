// PunchSockets: the extra UDP sockets of a birthday punch (daemon/core/birthday_punch.hpp),
// core::PunchSocketEffects for p2pvpnd.
//
// Each socket is bound to the node socket's address and port 0 (the kernel picks a free
// port; the NAT then makes a mapping of its own for it). Sends are one non-blocking sendto()
// each (a full socket buffer drops the probe: they are best effort, and counted). Every
// datagram read from one goes to `receive` with the socket's id, which the shell hands to
// Node::on_punch_udp(). The core closes what it no longer needs; close_all() at stop().
// At most kMaxSockets are open at once, whatever the core asks.
//
// Threading: the io_context's one thread.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "daemon/core/birthday_punch.hpp"
#include "net/asio/loop.hpp"
#include "net/ip.hpp"
#include "net/packet_view.hpp"

namespace p2p::daemon {

class PunchSockets final : public core::PunchSocketEffects {
 public:
  static constexpr std::size_t kMaxSockets = 1024;
  using Receive = std::function<void(std::uint32_t socket, const Endpoint& from, PacketView d)>;

  PunchSockets(boost::asio::io_context& io, IpAddress address, Receive receive,
               spdlog::logger& log);
  ~PunchSockets() override { close_all(); }
  PunchSockets(const PunchSockets&) = delete;
  PunchSockets& operator=(const PunchSockets&) = delete;

  std::uint32_t open_punch_socket() override;
  void send_punch(std::uint32_t socket, const Endpoint& to,
                  std::span<const std::uint8_t> datagram) override;
  void close_punch_socket(std::uint32_t socket) override;
  void adopt_punch_socket(std::uint32_t socket) override;
  void close_all();
  std::size_t open_sockets() const { return sockets_.size(); }

 private:
  struct Socket {
    int fd = -1;
    Endpoint local;
    std::unique_ptr<io::FdWatch> watch;
  };
  void wait(std::uint32_t id, Socket& s);
  void on_readable(std::uint32_t id);

  boost::asio::io_context& io_;
  IpAddress address_;
  int family_;
  Receive receive_;
  spdlog::logger& log_;
  std::map<std::uint32_t, Socket> sockets_;
  std::uint32_t next_id_ = 1;
  std::vector<std::uint8_t> buffer_;
  std::uint64_t send_drops_ = 0, open_failures_ = 0;
};

}  // namespace p2p::daemon
