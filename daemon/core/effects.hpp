// NodeEffects: everything the node core asks of the world. The shell (daemon/shell) carries it
// out with sockets, the TUN device and the system clocks; the simulated network
// (tests/support/sim_net) with its NAT models and virtual clock. Every part of the core (the
// coordinator link, the session table, the paths, the data path) reaches the world through the
// one instance its Node was given.
#pragma once

#include <cstdint>
#include <span>

#include "daemon/core/tcp_punch.hpp"
#include "net/ip.hpp"

namespace p2p::crypto {
class CryptoJobs;  // crypto/crypto_workers.hpp
}

namespace p2p::core {

class PunchSocketEffects;  // birthday_punch.hpp

class NodeEffects {
 public:
  virtual ~NodeEffects() = default;
  virtual void send_udp(const Endpoint& to, std::span<const std::uint8_t> datagram) = 0;
  virtual void write_tun(std::span<const std::uint8_t> packet) = 0;
  virtual void fill_random(std::span<std::uint8_t> out) = 0;
  // Wall clock, nanoseconds since the Unix epoch: certificate validity and handshake
  // timestamps. Injected so that tests control it.
  virtual std::uint64_t unix_nanos() = 0;
  // The coordinator now sees us at another public endpoint (a new upstream, a rebooted
  // router, a remapping NAT). Called from inside on_udp(): note it, act after the event.
  virtual void public_endpoint_moved(const Endpoint& /*was*/, const Endpoint& /*now_at*/) {}
  // The node took a newer CA-signed revocation list (its encoding, crypto/revocation_list.hpp):
  // the shell may keep it (mesh.yaml revocation_list). Called from inside the core.
  virtual void revocation_list_accepted(std::span<const std::uint8_t> /*encoded*/) {}
  // The coordinator link's TCP carrier (daemon/core/coordinator_link.hpp), at most one stream
  // per coordinator `slot`: open a connection to its TCP main port `to` (the shell answers with
  // Node::on_coordinator_stream, open or failed, and hands each frame it reads to
  // Node::on_coordinator_frame); send one datagram on it as one frame (net/stream_frame.hpp);
  // close it (nothing more is reported for it).
  virtual void coordinator_stream_open(std::uint32_t /*slot*/, const Endpoint& /*to*/) {}
  virtual void coordinator_stream_send(std::uint32_t /*slot*/,
                                       std::span<const std::uint8_t> /*datagram*/) {}
  virtual void coordinator_stream_close(std::uint32_t /*slot*/) {}
  // Extra UDP sockets for birthday punching (birthday_punch.hpp); nullptr: none, and this node
  // does not take the symmetric side of a birthday punch.
  virtual PunchSocketEffects* punch_sockets() { return nullptr; }
  // TCP paths (issue 10). The punch port's sockets (daemon/core/tcp_punch.hpp); nullptr: this
  // world has no TCP, and no TCP path is ever punched.
  virtual TcpPunchEffects* tcp_punch() { return nullptr; }
  // Sends one datagram on the established peer stream `stream` (the punch's handle); the shell
  // frames it (net/stream_frame.hpp). Only ever called for a stream the shell handed over.
  virtual void send_stream(std::uint32_t /*stream*/, std::span<const std::uint8_t> /*datagram*/) {}
  // Closes the stream (its path is gone or unwanted); nothing more arrives from it.
  virtual void close_stream(std::uint32_t /*stream*/) {}
  // Sealing on worker threads (mesh.yaml performance: workers): while a batch is handed in,
  // the jobs it may defer the encryption of packets sent by send_udp() to (the shell runs them
  // before the batch's datagrams leave); nullptr: everything is sealed at once.
  virtual crypto::CryptoJobs* crypto_jobs() { return nullptr; }

  std::uint64_t random_u64() {
    std::uint64_t v = 0;
    fill_random(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof v));
    return v;
  }
};

}  // namespace p2p::core
