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

// IP packets waiting for a peer's session, oldest first, at most `limit`: a packet pushed into
// a full queue pushes the oldest out. Copies (this is the slow path of a connection starting).
class PacketQueue {
 public:
  // Returns how many packets were pushed out to make room (0 or 1).
  std::size_t push(std::span<const std::uint8_t> packet, std::size_t limit);
  std::optional<std::vector<std::uint8_t>> pop();
  // Empties the queue; returns how many packets were dropped.
  std::size_t clear();
  std::size_t size() const { return packets_.size(); }
  bool empty() const { return packets_.empty(); }

 private:
  std::deque<std::vector<std::uint8_t>> packets_;
};

}  // namespace p2p::core
