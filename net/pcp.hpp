// PCP (RFC 6887) MAP requests and responses: the one port-mapping protocol without a Debian
// library (NAT-PMP is libnatpmp's, UPnP IGD libminiupnpc's). I/O-free: bytes in, values out.
//
//   request  (60 bytes): [version 2][R=0|opcode MAP=1][reserved u16][requested lifetime u32]
//                        [client IP, 16 bytes (IPv4-mapped for IPv4)]
//                        [nonce 12][protocol u8][reserved 3][internal port u16]
//                        [suggested external port u16][suggested external IP, 16 bytes]
//   response (60..1100): [version 2][R=1|opcode][reserved u8][result u8][lifetime u32]
//                        [epoch u32][reserved 12]
//                        [nonce 12][protocol u8][reserved 3][internal port u16]
//                        [assigned external port u16][assigned external IP, 16 bytes]
//                        [options, ignored]
// decode_pcp_map_response() checks the frame only (size, version, R bit, opcode, a multiple of
// 4 at most kPcpMaxMessage long); whether the answer is the one we asked for (nonce, protocol,
// port, lifetime, a sane external address) is nat::check_mapping's (daemon/nat/port_mapping).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "net/ip.hpp"

namespace p2p::wire {

inline constexpr std::uint16_t kPcpServerPort = 5351;
inline constexpr std::size_t kPcpMapMessageSize = 60;
inline constexpr std::size_t kPcpMaxMessage = 1100;
inline constexpr std::uint8_t kPcpVersion = 2;
inline constexpr std::uint8_t kPcpOpcodeMap = 1;
inline constexpr std::uint8_t kPcpProtocolUdp = 17;
using PcpNonce = std::array<std::uint8_t, 12>;

struct PcpMapRequest {
  IpAddress client;  // our address as the gateway sees it (the request's source)
  PcpNonce nonce{};  // random; the same for renewals and the delete of one mapping
  std::uint16_t internal_port = 0;
  std::uint16_t suggested_port = 0;  // 0: any
  std::uint32_t lifetime = 0;        // seconds; 0 deletes the mapping
};

// The result codes of RFC 6887 section 7.4 that a client acts on (others are just "failed").
enum class PcpResult : std::uint8_t {
  kSuccess = 0,
  kUnsuppVersion = 1,
  kNotAuthorized = 2,
  kMalformedRequest = 3,
  kUnsuppOpcode = 4,
  kNoResources = 8,
  kUnsuppProtocol = 9,
  kCannotProvideExternal = 11,
};

struct PcpMapResponse {
  std::uint8_t result = 0;  // PcpResult value, or another the RFC lists
  std::uint32_t lifetime = 0;
  std::uint32_t epoch = 0;
  PcpNonce nonce{};
  std::uint8_t protocol = 0;
  std::uint16_t internal_port = 0;
  Endpoint external;  // assigned external address (IPv4 when IPv4-mapped) and port
};

std::vector<std::uint8_t> encode_pcp_map_request(const PcpMapRequest& r);
std::optional<PcpMapResponse> decode_pcp_map_response(std::span<const std::uint8_t> datagram);
const char* pcp_result_name(std::uint8_t result);

}  // namespace p2p::wire
