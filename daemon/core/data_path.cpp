#include "daemon/core/data_path.hpp"

namespace p2p::core {
namespace {

Ipv4 read_ipv4(std::span<const std::uint8_t> p, std::size_t at) {
  return Ipv4{std::uint32_t{p[at]} << 24 | std::uint32_t{p[at + 1]} << 16 |
              std::uint32_t{p[at + 2]} << 8 | p[at + 3]};
}

}  // namespace

DataPath::DataPath(Ipv4Prefix own)
    : own_(own),
      mesh_{own.network(), own.length},
      broadcast_{mesh_.network().value | (mesh_.length == 0    ? ~0u
                                          : mesh_.length >= 32 ? 0u
                                                               : ~(~0u << (32 - mesh_.length)))} {}

std::optional<Ipv4> DataPath::route(std::span<const std::uint8_t> p) const {
  if (p.size() < 20 || (p[0] >> 4) != 4) return std::nullopt;
  Ipv4 dst = read_ipv4(p, 16);
  if (!mesh_.contains(dst) || dst == own_.address || dst == broadcast_ || dst == mesh_.network())
    return std::nullopt;
  return dst;
}

DataPath::Verdict DataPath::inspect(std::span<const std::uint8_t> p, Ipv4 peer) const {
  if (p.empty()) return {Inbound::kKeepalive};
  switch (p[0] >> 4) {
    case 4: {
      if (p.size() < 20 || (p[0] & 0x0f) < 5) return {Inbound::kMalformed};
      std::size_t total = std::size_t{p[2]} << 8 | p[3];
      if (total < 20 || total > p.size()) return {Inbound::kMalformed};
      if (read_ipv4(p, 12) != peer || read_ipv4(p, 16) != own_.address)
        return {Inbound::kBadSource};
      return {Inbound::kPacket, total};
    }
    case 6: return {Inbound::kNotRouted};
    default: return {Inbound::kControl};
  }
}

std::optional<QueueBudget::Queued> QueueBudget::oldest() const {
  if (order_.empty()) return std::nullopt;
  return order_.front();
}

std::uint64_t QueueBudget::add(Ipv4 owner, std::size_t bytes) {
  ++packets_;
  bytes_ += bytes;
  order_.push_back({next_seq_, owner});
  return next_seq_++;
}

std::size_t PacketQueue::push(std::span<const std::uint8_t> packet, std::size_t limit, Ipv4 owner,
                              QueueBudget& budget) {
  std::size_t dropped = 0;
  if (packets_.size() >= limit && !packets_.empty()) {
    budget.remove(packets_.front().bytes.size());
    packets_.pop_front();
    dropped = 1;
  }
  const std::uint64_t seq = budget.add(owner, packet.size());
  packets_.push_back({seq, std::vector<std::uint8_t>(packet.begin(), packet.end())});
  return dropped;
}

std::optional<std::vector<std::uint8_t>> PacketQueue::pop(QueueBudget& budget) {
  if (packets_.empty()) return std::nullopt;
  auto p = std::move(packets_.front().bytes);
  packets_.pop_front();
  budget.remove(p.size());
  return p;
}

std::size_t PacketQueue::clear(QueueBudget& budget) {
  std::size_t n = packets_.size();
  for (const auto& p : packets_) budget.remove(p.bytes.size());
  packets_.clear();
  return n;
}

std::optional<std::uint64_t> PacketQueue::front_seq() const {
  if (packets_.empty()) return std::nullopt;
  return packets_.front().seq;
}

}  // namespace p2p::core
