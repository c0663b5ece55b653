// NodeShell: the coordinator link's TCP carrier, carried out by CoordinatorStreams.
#include "daemon/shell/node_shell.hpp"

namespace p2p::daemon {

void NodeShell::coordinator_stream_open(std::uint32_t slot, const Endpoint& to) {
  if (stopped_) return;
  if (!streams_) {
    streams_ = std::make_unique<CoordinatorStreams>(
        io_, *log_.node,
        CoordinatorStreams::Handlers{[this](std::uint32_t s, bool open) {
                                       const Time now = Clock::now();
                                       node_->on_coordinator_stream(now, s, open);
                                       after_event(now);
                                     },
                                     [this](std::uint32_t s, PacketView frame) {
                                       const Time now = Clock::now();
                                       node_->on_coordinator_frame(now, s, frame);
                                       after_event(now);
                                     }});
  }
  streams_->open(slot, to);
}

void NodeShell::coordinator_stream_send(std::uint32_t slot,
                                        std::span<const std::uint8_t> datagram) {
  if (streams_) streams_->send(slot, datagram);
}

void NodeShell::coordinator_stream_close(std::uint32_t slot) {
  if (streams_) streams_->close(slot);
}

}  // namespace p2p::daemon
