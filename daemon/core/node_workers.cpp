// Node, opening on worker threads: the two entry points the shell uses around a batch of
// datagrams whose Data it opens ahead (crypto/crypto_workers.hpp). Everything that decides
// (replays, order, what reaches the TUN) stays in on_udp(), one datagram at a time.
#include "daemon/core/node.hpp"
#include "net/packet.hpp"

namespace p2p::core {

std::optional<std::size_t> Node::prepare_open(Time now, PacketView packet,
                                              crypto::CryptoJobs& jobs) {
  if (wire::classify(packet.span()) != wire::DatagramKind::kData) return std::nullopt;
  auto h = wire::parse_data(packet.span());
  if (!h) return std::nullopt;
  auto owner = sessions_.find(h->receiver_index);
  if (!owner || owner->coordinator) return std::nullopt;
  const Peer* p = std::as_const(peers_).find(Ipv4{owner->vip});
  if (!p) return std::nullopt;
  PacketView body = packet.sub(wire::kDataHeaderSize, packet.size() - wire::kDataHeaderSize);
  return p->sessions.prepare_open(now, *h, body.span(), jobs);
}

void Node::on_udp(Time now, const Endpoint& from, PacketView packet,
                  const crypto::CryptoJob* opened) noexcept {
  opened_ = opened;
  on_udp(now, from, packet);
  opened_ = nullptr;
}

}  // namespace p2p::core
