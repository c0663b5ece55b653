// Control messages: the plaintext of an authenticated Data message whose first byte is
// 0x01..0x3f (see wire/packet.hpp). Between a node and its coordinator they carry
// registration, peer requests and introductions; between two peers they carry path probes.
// (Relayed peer datagrams are not control messages: they travel in the Relay and Relayed
// frames of net/packet.hpp, which the coordinator forwards without decrypting.) Every message is
// [type u8][fields...], big-endian, strictly bounded: decode_control() rejects unknown types, short
// fields, oversize lists and trailing bytes.
//
//   node -> coordinator                      coordinator -> node
//   Register {local endpoints, nat, mapped}  RegisterOk {observed endpoint, interval}
//   PeerRequest {id, vip | name}             Refused {code, reason}
//   Goodbye {}                               Introduce {id, cert, endpoints, nat, initiate}
//                                            PeerUnknown {id, reason}
//   (Introduce also carries the peer's mapped endpoint, see below)
//   RevocationHave {sequence}                RevocationChunk {sequence, index, count, bytes}
//   Ping {id}                                Pong {id}  (same size: liveness and RTT)
//   peer <-> peer
//   PathProbe {probe id, sent-to endpoint}   PathProbeAck {probe id, observed source}
//
// The CA-signed revocation list (crypto/revocation_list.hpp, at most 32867 bytes) travels in
// RevocationChunks of at most kRevocationChunkSize bytes, at most kMaxRevocationChunks of
// them (net/revocation_push.hpp splits and reassembles): the coordinator pushes them after a
// node's RevocationHave names an older sequence, and to every registered node when its list
// changes. The wire does not trust them: the node verifies the reassembled list itself.
//   TCP punching (daemon/core/tcp_punch.hpp, coordinator/core/tcp_punch_broker.hpp):
//   node -> coordinator                      coordinator -> node
//   TcpPunchRequest {id, to vip, token}      TcpPunchOffer {id, from vip, token}
//                                            TcpPunchGo {id, peer vip, peer TCP endpoint}
//                                            TcpPunchFailed {id, reason}
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "net/ip.hpp"
#include "net/packet_view.hpp"

namespace p2p::wire {

inline constexpr std::size_t kMaxLocalEndpoints = 8;
// A certificate's name and its whole encoding are carried opaque here; these are the largest
// crypto/certificate.hpp can produce (it static_asserts that they agree).
inline constexpr std::size_t kMaxNameLength = 63;
inline constexpr std::size_t kMaxCertificateSize = 1242;
inline constexpr std::size_t kMaxReasonLength = 200;
inline constexpr std::size_t kRevocationChunkSize = 1024;
inline constexpr std::size_t kMaxRevocationChunks = 33;  // 33 KiB: a full list

// The classic (RFC 3489) name of a NAT: what NAT discovery (daemon/nat/nat_discovery.hpp)
// classifies, what a node registers and what the coordinator passes on to its peers. The one
// NAT type of the code base; values are wire values (decode_control() rejects any other).
enum class NatType : std::uint8_t {
  kUnknown = 0,
  kOpen = 1,  // no NAT, no filtering ("open internet")
  kFullCone = 2,
  kRestrictedCone = 3,
  kPortRestrictedCone = 4,
  kSymmetric = 5,
  kUdpBlocked = 6,
  kFirewalled = 7,  // no NAT, but inbound is filtered; peers punch as to a port-restricted cone
};
inline constexpr NatType kLastNatType = NatType::kFirewalled;
enum class PortAllocation : std::uint8_t {
  kUnknown = 0,
  kPreserving = 1,
  kSequential = 2,
  kRandom = 3
};

struct NatSummary {
  NatType type = NatType::kUnknown;
  PortAllocation allocation = PortAllocation::kUnknown;
  std::int16_t port_step = 0;  // for kSequential: the observed delta between mappings
  bool operator==(const NatSummary&) const = default;
};
const char* to_string(NatType t);
const char* to_string(PortAllocation a);

enum class ControlType : std::uint8_t {
  kRegister = 0x01,
  kRegisterOk = 0x02,
  kRefused = 0x03,
  kPeerRequest = 0x04,
  kIntroduce = 0x05,
  kPeerUnknown = 0x06,
  kGoodbye = 0x07,
  // 0x08 and 0x09 were the relay's wrapping before it became its own frame: refused.
  kPathProbe = 0x10,
  kPathProbeAck = 0x11,
  kRevocationHave = 0x20,
  kRevocationChunk = 0x21,
  kPing = 0x22,
  kPong = 0x23,
  kTcpPunchRequest = 0x24,
  kTcpPunchOffer = 0x25,
  kTcpPunchGo = 0x26,
  kTcpPunchFailed = 0x27,
};

// `mapped` (Register, Introduce): the endpoint a router's port mapping (UPnP IGD, NAT-PMP,
// PCP) forwards to the node's socket. It travels as an optional tail, [1][endpoint], absent
// when there is none, so a message without it is byte for byte what it was before.
struct Register {
  std::vector<Endpoint> local_endpoints;  // at most kMaxLocalEndpoints
  NatSummary nat;
  std::optional<Endpoint> mapped;
  bool operator==(const Register&) const = default;
};
struct RegisterOk {
  Endpoint observed;               // the node's public endpoint as the coordinator sees it
  std::uint16_t interval_seconds;  // re-register at least this often
  bool operator==(const RegisterOk&) const = default;
};
enum class RefuseCode : std::uint8_t {
  kBadCertificate = 1,
  kRevoked = 2,
  kAddressInUse = 3,
  kNotRegistered = 4,
  kRateLimited = 5,
};
struct Refused {
  RefuseCode code;
  std::string reason;
  bool operator==(const Refused&) const = default;
};
struct PeerRequest {
  std::uint32_t request_id = 0;
  std::variant<Ipv4, std::string> target;  // virtual IP or name
  bool operator==(const PeerRequest&) const = default;
};
struct Introduce {
  std::uint32_t request_id;               // 0 when the other side asked
  std::vector<std::uint8_t> certificate;  // the peer's certificate, encoded (crypto/certificate)
  Endpoint observed;                      // the peer's public endpoint as the coordinator sees it
  std::vector<Endpoint> local_endpoints;  // the peer's own interface endpoints
  NatSummary nat;
  bool initiate;                   // true: the receiver starts the handshake
  std::optional<Endpoint> mapped;  // the peer's router port mapping
  bool operator==(const Introduce&) const = default;
};
struct PeerUnknown {
  std::uint32_t request_id;
  std::string reason;
  bool operator==(const PeerUnknown&) const = default;
};
struct Goodbye {
  bool operator==(const Goodbye&) const = default;
};
struct PathProbe {
  std::uint64_t probe_id;
  Endpoint sent_to;  // the endpoint the sender addressed (lets the receiver learn its mapping)
  bool operator==(const PathProbe&) const = default;
};
struct PathProbeAck {
  std::uint64_t probe_id;
  Endpoint observed;  // where the probe came from, as the receiver saw it
  bool operator==(const PathProbeAck&) const = default;
};

// The sequence of the newest revocation list the node holds (0: none), after each RegisterOk.
struct RevocationHave {
  std::uint64_t sequence = 0;
  bool operator==(const RevocationHave&) const = default;
};
// Part `index` (0-based) of `count` (1..kMaxRevocationChunks) of the encoded revocation list
// `sequence`; `bytes` is 1..kRevocationChunkSize bytes, all but the last chunk full.
struct RevocationChunk {
  std::uint64_t sequence = 0;
  std::uint8_t index = 0;
  std::uint8_t count = 0;
  std::vector<std::uint8_t> bytes;
  bool operator==(const RevocationChunk&) const = default;
};
// A node asks each coordinator it is registered with every few seconds; the coordinator answers
// at once with the same id. The answer is no larger than the question, and both travel inside
// the node's authenticated session (daemon/core/coordinator_link.hpp says why).
struct Ping {
  std::uint32_t id;
  bool operator==(const Ping&) const = default;
};
struct Pong {
  std::uint32_t id;
  bool operator==(const Pong&) const = default;
};

// TCP punching by simultaneous open. A token is what a node sends, alone, on the
// coordinator's assist port (net/tcp_assist.hpp): it ties that unauthenticated TCP connection,
// whose source is the node's public TCP endpoint, to the authenticated request or offer.
using PunchToken = std::array<std::uint8_t, 16>;
// A wants a TCP path to `to`: it is already connecting to the assist port with `token` from
// the port it punches from, and listening there.
struct TcpPunchRequest {
  std::uint32_t punch_id = 0;
  Ipv4 to;
  PunchToken token{};
  bool operator==(const TcpPunchRequest&) const = default;
};
// To B: A (`from`) wants a TCP path; connect to the assist port with `token` from a punch port.
struct TcpPunchOffer {
  std::uint32_t punch_id = 0;  // the coordinator's, echoed in the TcpPunchGo
  Ipv4 from;
  PunchToken token{};
  bool operator==(const TcpPunchOffer&) const = default;
};
// To both sides at the same moment: connect to `peer_endpoint` now (simultaneous open).
struct TcpPunchGo {
  std::uint32_t punch_id = 0;
  Ipv4 peer;
  Endpoint peer_endpoint;  // the peer's punch port as its NAT maps it, seen on the assist port
  bool operator==(const TcpPunchGo&) const = default;
};
struct TcpPunchFailed {
  std::uint32_t punch_id = 0;
  std::string reason;
  bool operator==(const TcpPunchFailed&) const = default;
};

using ControlMessage =
    std::variant<Register, RegisterOk, Refused, PeerRequest, Introduce, PeerUnknown, Goodbye,
                 PathProbe, PathProbeAck, RevocationHave, RevocationChunk, Ping, Pong,
                 TcpPunchRequest, TcpPunchOffer, TcpPunchGo, TcpPunchFailed>;

// Appends the encoding of `m` to `out` (out is not cleared, so a caller can encode after a
// header it already holds). Reasons, names and endpoint lists are cut to their limits; an
// Introduce certificate over 65535 bytes cannot be encoded and is a programming error that
// aborts rather than produce a truncated message.
void encode_control(std::vector<std::uint8_t>& out, const ControlMessage& m);
// Encodes `m` into `buffer` (reused, resized) behind kHeadroom bytes and with kTailroom after
// it: a view ready to be sealed in place (crypto::Session::seal). Valid while `buffer` is.
PacketView encode_control_packet(std::vector<std::uint8_t>& buffer, const ControlMessage& m);
std::optional<ControlMessage> decode_control(std::span<const std::uint8_t> plaintext);
const char* control_name(const ControlMessage& m);

}  // namespace p2p::wire
