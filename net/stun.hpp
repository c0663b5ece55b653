// STUN (RFC 8489) message codec and an I/O-free Binding server with the RFC 5780 NAT
// behaviour-discovery attributes. Namespace p2p::wire::stun.
//
// Demultiplexing. Coordinator and daemon each have ONE UDP socket that carries STUN next to
// p2pvpn's own datagrams. is_stun() recognises STUN by its header alone: first two bits 00,
// the magic cookie 0x2112A442 at offset 4, and a length field that is a multiple of 4 and
// matches the datagram. Every p2pvpn datagram starts with a byte >= 0x40 (wire/packet.hpp),
// so its first two bits are never 00 and the two can never be confused.
//
// Parsing. parse() checks everything against the datagram before reading it: header, cookie,
// length field == datagram size - 20, each attribute's length and padding inside the message,
// fixed attribute sizes, address families, ERROR-CODE ranges, FINGERPRINT (verified when
// present, and it must be the last attribute). Malformed input yields a ParseError; parse()
// never throws. What it allocates (SOFTWARE, reason phrase, attribute type lists) is sized from
// bytes actually present, so a parsed Message never holds more than the datagram's size.
// Known attributes are decoded into Message fields (the first of duplicates wins, as RFC 8489
// says); unknown comprehension-optional attributes (>= 0x8000) are skipped, unknown
// comprehension-required ones are listed in Message::unknown_required so a server can answer
// 420. MESSAGE-INTEGRITY, USERNAME etc. are not supported and count as unknown.
//
// Server. Server::on_request() answers a Binding request given the local socket it arrived on
// (one of the four RFC 5780 sockets A1:P1, A1:P2, A2:P1, A2:P2) and its source; it returns the
// response bytes and which local socket must send them (per CHANGE-REQUEST, RFC 5780 table 1).
// Without an alternate address only A1:P1 exists, OTHER-ADDRESS is never sent and a request
// with CHANGE-REQUEST gets 420 (RFC 5780 sections 6 and 6.1).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/expected.hpp"
#include "net/ip.hpp"

namespace p2p::wire::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::uint32_t kFingerprintXor = 0x5354554e;
inline constexpr std::uint16_t kMethodBinding = 0x001;
inline constexpr std::size_t kMaxSoftwareBytes = 763;   // RFC 8489 14.14 (128 characters)
inline constexpr std::size_t kMaxReasonBytes = 763;     // RFC 8489 14.8
inline constexpr std::size_t kMaxUnknownRequired = 16;  // listed at most; more are still noted

// Attribute types this codec understands.
enum class Attr : std::uint16_t {
  kMappedAddress = 0x0001,
  kChangeRequest = 0x0003,  // RFC 5780
  kErrorCode = 0x0009,
  kUnknownAttributes = 0x000A,
  kXorMappedAddress = 0x0020,
  kResponsePort = 0x0027,  // RFC 5780
  kSoftware = 0x8022,
  kFingerprint = 0x8028,
  kResponseOrigin = 0x802B,  // RFC 5780
  kOtherAddress = 0x802C,    // RFC 5780
};

enum class MessageClass : std::uint8_t { kRequest = 0, kIndication = 1, kSuccess = 2, kError = 3 };

using TransactionId = std::array<std::uint8_t, 12>;

struct ChangeRequest {
  bool change_ip = false;
  bool change_port = false;
  bool operator==(const ChangeRequest&) const = default;
};

struct ErrorCode {
  std::uint16_t code = 0;  // 300..699
  std::string reason;      // UTF-8, at most kMaxReasonBytes
  bool operator==(const ErrorCode&) const = default;
};

// A decoded (or to-be-encoded) message. Absent optional = attribute absent.
struct Message {
  MessageClass cls = MessageClass::kRequest;
  std::uint16_t method = kMethodBinding;  // 12 bits
  TransactionId transaction_id{};
  std::optional<Endpoint> mapped_address;
  std::optional<Endpoint> xor_mapped_address;
  std::optional<ChangeRequest> change_request;
  std::optional<std::uint16_t> response_port;
  std::optional<Endpoint> response_origin;
  std::optional<Endpoint> other_address;
  std::optional<std::string> software;
  std::optional<ErrorCode> error_code;
  std::vector<std::uint16_t> unknown_attributes;  // the UNKNOWN-ATTRIBUTES attribute, if any
  // parse(): a (verified) FINGERPRINT was present. encode(): append one.
  bool fingerprint = false;
  // parse() only, ignored by encode(): unknown comprehension-required attribute types seen,
  // without duplicates, at most kMaxUnknownRequired of them.
  std::vector<std::uint16_t> unknown_required;

  bool operator==(const Message&) const = default;
};

enum class ParseError : std::uint8_t {
  kTooShort,            // fewer than 20 bytes
  kNotStun,             // first two bits not 00
  kBadCookie,           // no magic cookie (also: RFC 3489 messages)
  kBadLength,           // length field not a multiple of 4 or not datagram size - 20
  kTruncatedAttribute,  // an attribute (or its padding) runs past the message
  kBadAttributeLength,  // wrong size for a fixed-size attribute
  kBadAddressFamily,    // address family neither 0x01 (IPv4) nor 0x02 (IPv6)
  kBadErrorCode,        // ERROR-CODE class outside 3..6 or number > 99
  kTooLong,             // SOFTWARE or reason phrase longer than RFC 8489 allows
  kBadFingerprint,      // FINGERPRINT present but wrong
  kAfterFingerprint,    // an attribute follows FINGERPRINT
};
std::string_view to_string(ParseError e);

// The cheap demultiplexing test described at the top of this file. Reads 8 bytes at most.
bool is_stun(std::span<const std::uint8_t> datagram);

// Full, strict parse (see the top of this file).
Expected<Message, ParseError> parse(std::span<const std::uint8_t> datagram);

// Encodes m: XOR-MAPPED-ADDRESS first (the attribute clients look for), then the others in a
// fixed order, FINGERPRINT last when m.fingerprint. Padding bytes are zero.
// Contract: strings within their limits, method < 0x1000, ERROR-CODE code 300..699 (the
// encoder truncates over-long strings rather than produce a message parse() rejects), and the
// whole message within the 16-bit length field, which only an UNKNOWN-ATTRIBUTES list of tens
// of thousands can break: such a message is a programming error that aborts, never a
// truncated encoding. Every message parse() returns re-encodes within the limit.
std::vector<std::uint8_t> encode(const Message& m);

// The CRC-32 (IEEE 802.3, as zlib) FINGERPRINT is built from, exposed for tests.
std::uint32_t crc32(std::span<const std::uint8_t> bytes);

// A Binding request with the given transaction id (and CHANGE-REQUEST when asked).
Message binding_request(const TransactionId& id, std::optional<ChangeRequest> change = {});

// ---- Server --------------------------------------------------------------------------------

// The four RFC 5780 sockets, as bits: 1 = alternate port (P2), 2 = alternate address (A2).
enum class ServerSocket : std::uint8_t {
  kPrimary = 0,     // A1:P1, the only one without an alternate address
  kAltPort = 1,     // A1:P2
  kAltAddress = 2,  // A2:P1
  kAltBoth = 3,     // A2:P2
};

struct ServerConfig {
  Endpoint primary;                            // A1:P1
  std::optional<IpAddress> alternate_address;  // A2; set = RFC 5780 behaviour discovery on
  std::uint16_t alternate_port = 0;            // P2; required (!= P1) with an alternate address
  std::string software = "p2pvpn";             // SOFTWARE in responses; empty = none
};

// A response to send: bytes, out of which local socket, to which endpoint.
struct ServerReply {
  std::vector<std::uint8_t> bytes;
  ServerSocket from = ServerSocket::kPrimary;
  Endpoint to;
};

class Server {
 public:
  // Fails (with a reason for the config loader) when the alternate address is of another
  // family than the primary, equals it, or comes without a distinct alternate port.
  static Expected<Server, std::string> create(ServerConfig config);

  bool has_alternate() const { return config_.alternate_address.has_value(); }
  // The local endpoint of socket s (s must exist: kPrimary, or any when has_alternate()).
  Endpoint endpoint(ServerSocket s) const;

  // Answers a datagram that arrived on local socket `received_on` from `source`.
  // Returns nothing for anything that is not a well-formed Binding request (responses,
  // indications, other methods, malformed bytes, a socket that does not exist): STUN over
  // UDP drops those silently. Otherwise a success response with XOR-MAPPED-ADDRESS,
  // MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS (with an alternate address), SOFTWARE and
  // FINGERPRINT, or an error response: 420 + UNKNOWN-ATTRIBUTES for unknown
  // comprehension-required attributes (and CHANGE-REQUEST without an alternate address),
  // 400 for RESPONSE-PORT 0. RESPONSE-PORT, when present, replaces the destination port.
  std::optional<ServerReply> on_request(ServerSocket received_on, const Endpoint& source,
                                        std::span<const std::uint8_t> datagram) const;

 private:
  explicit Server(ServerConfig config) : config_(std::move(config)) {}
  ServerConfig config_;
};

}  // namespace p2p::wire::stun
