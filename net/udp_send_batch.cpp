#include "net/udp_send_batch.hpp"

namespace p2p {

bool UdpSendBatch::add(const Endpoint& to, std::span<const std::uint8_t> datagram) {
  if (size_ == entries_.size()) {
    ++dropped_;
    return false;
  }
  entries_[size_++] = Entry{to, datagram};
  return true;
}

}  // namespace p2p
