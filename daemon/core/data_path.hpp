// The data path's rules, shared by every peer: which peer a packet from the TUN is for, what a
// peer's decrypted plaintext is and whether it may enter the TUN (cryptokey routing: only from
// the peer's certified virtual IP, only to ours), and the bounded queue of packets that wait
// for a session. Pure functions of the bytes and the node's address: no state but the queue's.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "net/ip.hpp"

namespace p2p::core {

class DataPath {
 public:
  explicit DataPath(Ipv4Prefix own);

  // The mesh address an IP packet from the TUN goes to; nullopt: not ours to route (not
  // IPv4, outside the mesh prefix, our own address, the prefix's network or broadcast address).
  std::optional<Ipv4> route(std::span<const std::uint8_t> packet) const;

  // What a peer sent inside its session.
  enum class Inbound {
    kKeepalive,  // empty
    kPacket,     // an IPv4 packet from the peer to us: write `length` bytes to the TUN
    kControl,    // a control message (first byte 0x01..0x3f)
    kMalformed,  // an IPv4 header that does not hold together
    kBadSource,  // an IPv4 packet not from the peer's virtual IP or not to ours
    kNotRouted,  // IPv6: carried in certificates, not routed inside the mesh yet
  };
  struct Verdict {
    Inbound kind;
    std::size_t length = 0;  // kPacket: the IP total length (trailing bytes are not written)
  };
  Verdict inspect(std::span<const std::uint8_t> plaintext, Ipv4 peer) const;

  const Ipv4Prefix& own() const { return own_; }

 private:
  Ipv4Prefix own_;
  Ipv4Prefix mesh_;
  Ipv4 broadcast_;
};

// The one budget for the packets that wait for a session, across all peers: at most
// `max_packets` packets and `max_bytes` bytes in all. It also remembers the order in which they
// were queued (a sequence number and the peer's address each), so that going over the budget
// drops the oldest packet of the whole node, whoever it was for.
class QueueBudget {
 public:
  QueueBudget(std::size_t max_packets, std::size_t max_bytes)
      : max_packets_(max_packets), max_bytes_(max_bytes) {}
  bool over() const { return packets_ > max_packets_ || bytes_ > max_bytes_; }
  std::size_t packets() const { return packets_; }
  std::size_t bytes() const { return bytes_; }
  // New bounds (a reload); what is queued beyond them drains, nothing more joins it.
  void set_limits(std::size_t max_packets, std::size_t max_bytes) {
    max_packets_ = max_packets;
    max_bytes_ = max_bytes;
  }

  struct Queued {
    std::uint64_t seq;
    Ipv4 owner;
  };
  // The oldest entry in queueing order; it may name a packet already gone (sent, or dropped
  // with its queue): the owner's queue tells (PacketQueue::front_seq).
  std::optional<Queued> oldest() const;
  void pop_oldest() { order_.pop_front(); }
  // Keeps the order's size within twice the packets queued (plus a little): drops the entries
  // for which `live` is false. Amortised O(1) per packet.
  template <class Live>
  void compact(Live live) {
    if (order_.size() <= 2 * packets_ + 64) return;
    std::erase_if(order_, [&](const Queued& q) { return !live(q); });
  }

 private:
  friend class PacketQueue;
  std::uint64_t add(Ipv4 owner, std::size_t bytes);
  void remove(std::size_t bytes) {
    --packets_;
    bytes_ -= bytes;
  }

  std::size_t max_packets_, max_bytes_;
  std::size_t packets_ = 0, bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  std::deque<Queued> order_;
};

// IP packets waiting for a peer's session, oldest first, at most `limit`: a packet pushed into
// a full queue pushes the oldest out. Every packet counts against the node's QueueBudget.
// Copies (this is the slow path of a connection starting).
class PacketQueue {
 public:
  // Returns how many packets were pushed out to make room (0 or 1).
  std::size_t push(std::span<const std::uint8_t> packet, std::size_t limit, Ipv4 owner,
                   QueueBudget& budget);
  std::optional<std::vector<std::uint8_t>> pop(QueueBudget& budget);
  // Empties the queue; returns how many packets were dropped.
  std::size_t clear(QueueBudget& budget);
  // The sequence number (QueueBudget) of the oldest packet waiting.
  std::optional<std::uint64_t> front_seq() const;
  std::size_t size() const { return packets_.size(); }
  bool empty() const { return packets_.empty(); }

 private:
  struct Packet {
    std::uint64_t seq;
    std::vector<std::uint8_t> bytes;
  };
  std::deque<Packet> packets_;
};

}  // namespace p2p::core
