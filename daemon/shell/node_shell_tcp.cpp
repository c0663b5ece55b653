// NodeShell's TCP paths: the Node's punch ports and peer streams (tcp_paths.hpp), made at the
// first punch; each event is handed to the Node with the time, then after_event().
#include "daemon/shell/node_shell.hpp"

namespace p2p::daemon {

core::TcpPunchEffects* NodeShell::tcp_punch() {
  if (stopped_ || !config_.punch.tcp_assist) return nullptr;
  if (!tcp_paths_) {
    TcpPaths::Callbacks cb;
    cb.established = [this](std::uint32_t punch, bool inbound, const Endpoint& remote) {
      const Time now = Clock::now();
      const bool taken = node_->on_punch_established(now, punch, inbound, remote);
      after_event(now);
      return taken;
    };
    cb.connect_failed = [this](std::uint32_t punch) {
      const Time now = Clock::now();
      node_->on_punch_failed(now, punch);
      after_event(now);
    };
    cb.frame = [this](std::uint32_t stream, PacketView frame) {
      const Time now = Clock::now();
      node_->on_stream(now, stream, frame);
      after_event(now);
    };
    cb.closed = [this](std::uint32_t stream) {
      const Time now = Clock::now();
      node_->on_stream_closed(now, stream);
      after_event(now);
    };
    tcp_paths_ = std::make_unique<TcpPaths>(io_, std::move(cb), *log_.node);
  }
  return tcp_paths_.get();
}

void NodeShell::send_stream(std::uint32_t stream, std::span<const std::uint8_t> datagram) {
  if (tcp_paths_) tcp_paths_->send(stream, datagram);
}

void NodeShell::close_stream(std::uint32_t stream) {
  if (tcp_paths_) tcp_paths_->close(stream);
}

}  // namespace p2p::daemon
