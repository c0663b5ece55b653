#include "daemon/shell/coordinator_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace p2p::daemon {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

void set_keepalive(tcp::socket& s) {
  const int fd = s.native_handle();
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &CoordinatorStreams::kKeepIdle, sizeof(int));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &CoordinatorStreams::kKeepInterval, sizeof(int));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &CoordinatorStreams::kKeepCount, sizeof(int));
}

}  // namespace

CoordinatorStreams::CoordinatorStreams(asio::io_context& io, spdlog::logger& log, Handlers handlers)
    : io_(io), log_(log), handlers_(std::move(handlers)) {}

CoordinatorStreams::~CoordinatorStreams() {
  *alive_ = false;
  close_all();
}

void CoordinatorStreams::open(std::uint32_t slot, const Endpoint& to) {
  close(slot);
  const std::uint64_t generation = next_generation_++;
  slots_[slot].generation = generation;
  io::connect_tcp(tcp::socket(io_), to, kConnectTimeout,
                  [this, alive = alive_, slot, generation, to](auto r) {
                    if (*alive) on_connected(slot, generation, std::move(r), to);
                  });
}

void CoordinatorStreams::on_connected(std::uint32_t slot, std::uint64_t generation,
                                      Expected<tcp::socket, io::IoError> r, const Endpoint& to) {
  auto it = slots_.find(slot);
  if (it == slots_.end() || it->second.generation != generation) return;  // closed since
  if (!r) {
    log_.debug("coordinator tcp {}: {}", to.to_string(), r.error().message);
    slots_.erase(it);
    handlers_.on_state(slot, false);
    return;
  }
  set_keepalive(*r);
  io::TcpStreamOptions options;
  options.max_frame = kMaxFrame;
  options.read_chunk = 16 * 1024;
  auto stream = io::TcpStream::open(std::move(*r), options);
  it->second.stream = stream;
  stream->start([this, slot](PacketView frame) { handlers_.on_frame(slot, frame); },
                [this, alive = alive_, slot, generation](const io::IoError& why) {
                  if (!*alive) return;
                  auto s = slots_.find(slot);
                  if (s == slots_.end() || s->second.generation != generation) return;
                  log_.debug("coordinator tcp closed: {}", why.message);
                  dropped_ += s->second.stream->stats().send_dropped;
                  slots_.erase(s);
                  handlers_.on_state(slot, false);
                });
  handlers_.on_state(slot, true);
}

void CoordinatorStreams::send(std::uint32_t slot, std::span<const std::uint8_t> datagram) {
  auto it = slots_.find(slot);
  if (it == slots_.end() || !it->second.stream || !it->second.stream->send(datagram)) ++dropped_;
}

void CoordinatorStreams::close(std::uint32_t slot) {
  auto it = slots_.find(slot);
  if (it == slots_.end()) return;
  if (it->second.stream) {
    dropped_ += it->second.stream->stats().send_dropped;
    it->second.stream->close();
  }
  slots_.erase(it);
}

void CoordinatorStreams::close_all() {
  while (!slots_.empty()) close(slots_.begin()->first);
}

std::uint64_t CoordinatorStreams::send_dropped() const {
  std::uint64_t n = dropped_;
  for (const auto& [slot, s] : slots_) {
    if (s.stream) n += s.stream->stats().send_dropped;
  }
  return n;
}

}  // namespace p2p::daemon
