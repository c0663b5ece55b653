// The p2pvpn datagram formats. Every node has ONE UDP socket that carries STUN, coordinator
// traffic and peer traffic, so the first byte tells them apart:
//
//   0x00..0x3f  STUN (RFC 8489: first two bits 00, magic cookie at offset 4) - wire/stun.hpp
//   0x81        HandshakeInit   [type][pattern u8][noise_len u16][sender_index u32]
//                               [noise message 1][zero padding][mac1 16][mac2 16]
//   0x82        HandshakeResp   [type][pad 3][sender_index u32][receiver_index u32][noise msg 2]
//   0x83        HandshakeFinal  [type][pad 3][receiver_index u32][noise message 3] (XX only)
//   0x84        Data            [type][pad 3][receiver_index u32][counter u64][ciphertext][tag16]
//   0x85        CookieReply     [type][pad 3][receiver_index u32][nonce 24][cookie 16][tag 16]
//   0x86        Relay           [type][pad 3][receiver_index u32][counter u64][to vip u32]
//                               [tag 16][inner peer datagram]        node -> coordinator
//   0x87        Relayed         [type][pad 3][receiver_index u32][counter u64][from vip u32]
//                               [tag 16][inner peer datagram]        coordinator -> node
//
// The relay frames carry a peer's datagram (a handshake message or Data, already end-to-end
// encrypted for the other peer) through the coordinator, which forwards it without opening or
// re-sealing it. The tag is the node<->coordinator session's ChaCha20-Poly1305 over an empty
// plaintext, with the 20 header bytes before it and the inner datagram's length (u32) as
// associated data (relay_ad()), under the session counter and replay window: it proves who
// sent the frame, to or from whom, how large it is, and that it is not a replay. The inner
// bytes are not covered: they are the peers' to authenticate, and do. An attacker on the path
// could swap them for others of the same length in a frame it intercepts; the receiving peer
// refuses those, so this does no more than dropping the frame would. Forwarding costs the
// coordinator two ChaCha20 blocks and two Poly1305 passes over 24 bytes instead of opening
// and sealing the whole payload, and the header is rewritten in place: the frame keeps its
// size, so a Relay becomes a Relayed in the same buffer.
//
// The initiation is the only datagram anyone may send us unprompted, so it carries what makes
// it cheap to refuse (crypto/handshake_guard.hpp, WireGuard's scheme): mac1 is a keyed BLAKE2b
// over everything before it, keyed by the responder's identity (IK: its static public key; XX:
// the network CA's public key, which every member knows - against the coordinator it only
// stops blind garbage from outsiders), checked before any Diffie-Hellman. mac2 is zero, or a
// MAC over everything before it keyed by the cookie a responder under load sent in a
// CookieReply (64 bytes: never larger than the init it answers), which proves the initiator
// receives at its source address. The initiation is padded to at least kMinInitSize and to the
// size of the answer it expects, and a responder never sends an unproven source an answer
// larger than what it sent: no amplification. A shorter initiation is refused unread.
//
// All integers are big-endian except the counter, which is little-endian like the Noise nonce
// it becomes (so the receive path reads it with one load). Pad bytes are zero on send and
// ignored on receive. Data's 16-byte header keeps the ciphertext 16-byte aligned in a buffer
// whose header starts aligned.
//
// Peers use Noise IK (the initiator learnt the responder's static key from the coordinator);
// a node and its coordinator use Noise XX (the node knows only the coordinator's address).
// The plaintext of a Data message is one of:
//   - empty: a keepalive;
//   - an IP packet (first nibble 4 or 6, so first byte 0x40..0x6f);
//   - a control message (first byte 0x01..0x3f) - wire/control.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace p2p::wire {

enum class PacketType : std::uint8_t {
  kHandshakeInit = 0x81,
  kHandshakeResp = 0x82,
  kHandshakeFinal = 0x83,
  kData = 0x84,
  kCookieReply = 0x85,
  kRelay = 0x86,
  kRelayed = 0x87,
};

enum class Pattern : std::uint8_t { kIK = 1, kXX = 2 };

inline constexpr std::size_t kDataHeaderSize = 16;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kDataOverhead = kDataHeaderSize + kTagSize;
inline constexpr std::size_t kMaxDatagram = 65535;
inline constexpr std::size_t kMacSize = 16;
inline constexpr std::size_t kInitHeaderSize = 8;
inline constexpr std::size_t kInitTrailerSize = 2 * kMacSize;  // mac1, mac2
// Every initiation is padded to at least this (the XX initiation's answer carries the
// coordinator's certificate: up to 512 - 119 = 393 bytes of it fit).
inline constexpr std::size_t kMinInitSize = 512;
inline constexpr std::size_t kCookieNonceSize = 24;
inline constexpr std::size_t kCookieSize = 16;
inline constexpr std::size_t kCookieReplySize = 8 + kCookieNonceSize + kCookieSize + kTagSize;
inline constexpr std::size_t kRelayFieldsSize = 20;  // the header bytes before the tag
inline constexpr std::size_t kRelayHeaderSize = kRelayFieldsSize + kTagSize;
inline constexpr std::size_t kRelayAdSize = kRelayFieldsSize + 4;

struct HandshakeInit {
  Pattern pattern;
  std::uint32_t sender_index;
  std::span<const std::uint8_t> noise;
  std::span<const std::uint8_t> mac1;  // kMacSize bytes
  std::span<const std::uint8_t> mac2;  // kMacSize bytes, all zero when no cookie is known
};
struct HandshakeResp {
  std::uint32_t sender_index;
  std::uint32_t receiver_index;
  std::span<const std::uint8_t> noise;
};
struct HandshakeFinal {
  std::uint32_t receiver_index;
  std::span<const std::uint8_t> noise;
};
struct CookieReply {
  std::uint32_t receiver_index;          // the initiation's sender_index
  std::span<const std::uint8_t> nonce;   // kCookieNonceSize
  std::span<const std::uint8_t> sealed;  // kCookieSize + kTagSize
};
struct DataHeader {
  std::uint32_t receiver_index;
  std::uint64_t counter;
  std::span<const std::uint8_t> ciphertext;  // includes the tag, >= kTagSize bytes
};
struct RelayFrame {
  PacketType type;  // kRelay or kRelayed
  std::uint32_t receiver_index;
  std::uint64_t counter;
  std::uint32_t vip;                    // Relay: the destination; Relayed: the sender
  std::span<const std::uint8_t> inner;  // the peer datagram, never empty
};

// What a datagram on a p2pvpn socket is: the one classifier, used by the node (for what
// arrives on its socket and what arrives through the relay) and by the coordinator. STUN is
// recognised by its header (wire::stun::is_stun); the rest by the first byte. kUnknown is
// garbage: count it and drop it.
enum class DatagramKind : std::uint8_t {
  kStun,
  kHandshakeInit,
  kHandshakeResp,
  kHandshakeFinal,
  kData,
  kCookieReply,
  kRelay,
  kRelayed,
  kUnknown,
};
DatagramKind classify(std::span<const std::uint8_t> d);

// Parsers: bounds-checked views into `d` (which must outlive the result); nullopt if the
// datagram is too short, has the wrong type or an unknown pattern.
std::optional<HandshakeInit> parse_handshake_init(std::span<const std::uint8_t> d);
std::optional<HandshakeResp> parse_handshake_resp(std::span<const std::uint8_t> d);
std::optional<HandshakeFinal> parse_handshake_final(std::span<const std::uint8_t> d);
std::optional<DataHeader> parse_data(std::span<const std::uint8_t> d);
// Exactly kCookieReplySize bytes.
std::optional<CookieReply> parse_cookie_reply(std::span<const std::uint8_t> d);
// A Relay or a Relayed frame: at least kRelayHeaderSize + 1 bytes.
std::optional<RelayFrame> parse_relay(std::span<const std::uint8_t> d);

// Builders append to `out` (cleared first).
// The initiation padded to max(padded_size, kMinInitSize) bytes (never less than its content),
// mac1 and mac2 zero: crypto/handshake_guard.hpp stamps them.
void build_handshake_init(std::vector<std::uint8_t>& out, Pattern p, std::uint32_t sender,
                          std::span<const std::uint8_t> noise, std::size_t padded_size = 0);
void build_handshake_resp(std::vector<std::uint8_t>& out, std::uint32_t sender,
                          std::uint32_t receiver, std::span<const std::uint8_t> noise);
void build_handshake_final(std::vector<std::uint8_t>& out, std::uint32_t receiver,
                           std::span<const std::uint8_t> noise);
void build_cookie_reply(std::vector<std::uint8_t>& out, std::uint32_t receiver,
                        std::span<const std::uint8_t, kCookieNonceSize> nonce,
                        std::span<const std::uint8_t, kCookieSize + kTagSize> sealed);
// Writes the 16-byte Data header in place at `header` (the caller's headroom).
void write_data_header(std::uint8_t* header, std::uint32_t receiver, std::uint64_t counter);
// Writes a relay frame's kRelayFieldsSize header bytes in place at `header` (not the tag).
void write_relay_fields(std::uint8_t* header, PacketType type, std::uint32_t receiver,
                        std::uint64_t counter, std::uint32_t vip);
// The associated data a relay frame's tag covers: its header fields and `inner_size`.
std::array<std::uint8_t, kRelayAdSize> relay_ad(const std::uint8_t* header, std::size_t inner_size);

}  // namespace p2p::wire
