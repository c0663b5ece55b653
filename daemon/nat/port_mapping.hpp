// Port mapping, the I/O-free half: what a gateway answered, whether to believe it, and when to
// ask again. The blocking half (PCP over a socket, libnatpmp, libminiupnpc) runs on a worker
// thread in the shell (daemon/shell/port_mapper.hpp) and brings each answer here.
//
// A gateway is hostile until its answer checks out (check_mapping): the mapping must be for
// our port (and, where the protocol says, our address), UDP, with a lifetime between
// kMinLifetime and kMaxLifetime, to a public external address (not private, loopback,
// link-local, CGNAT, documentation, multicast or reserved) and a non-zero port. Anything else
// is refused with a reason that names the protocol and what was wrong.
//
// MappingSchedule decides when to ask: at start, at half the granted lifetime (renewal), at
// once after a network change, and after a failure with a doubling backoff (kFirstRetry up to
// kMaxRetry). Time is handed in; deadline() is the next time due() may say yes.
// Threading: none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/expected.hpp"
#include "net/ip.hpp"
#include "net/pcp.hpp"
#include "net/time.hpp"

namespace p2p::nat {

enum class MappingProtocol : std::uint8_t { kPcp, kNatPmp, kUpnp };
const char* to_string(MappingProtocol p);
std::optional<MappingProtocol> parse_mapping_protocol(std::string_view s);

inline constexpr std::uint32_t kRequestedLifetime = 7200;  // seconds, what we ask for
inline constexpr std::uint32_t kMinLifetime = 60;
inline constexpr std::uint32_t kMaxLifetime = 86400;  // longer is a broken or lying gateway
inline constexpr Duration kFirstRetry = std::chrono::seconds(60);
inline constexpr Duration kMaxRetry = std::chrono::minutes(30);
inline constexpr Duration kSameErrorLogInterval = std::chrono::minutes(10);

// What a gateway said, the same for the three protocols.
struct GatewayAnswer {
  MappingProtocol protocol = MappingProtocol::kPcp;
  std::uint16_t internal_port = 0;
  std::optional<IpAddress> internal_client;  // UPnP names the host; PCP/NAT-PMP map the sender
  Endpoint external;
  std::uint32_t lifetime = 0;  // seconds; UPnP: 0 is "permanent" (renewed like kRequestedLifetime)
};

struct Mapping {
  MappingProtocol protocol = MappingProtocol::kPcp;
  Endpoint external;
  std::uint16_t internal_port = 0;
  Duration lifetime{};
  Time granted{};
  Time expires() const { return granted + lifetime; }
  Time renew_at() const { return granted + lifetime / 2; }
};

// True for an address no peer on the Internet can reach us at.
bool is_unusable_external(const IpAddress& a);
// Believes `a` or says why not. `our_client`: our address on the gateway's LAN, when known.
Expected<Mapping, std::string> check_mapping(Time now, const GatewayAnswer& a,
                                             std::uint16_t our_port,
                                             const std::optional<IpAddress>& our_client);
// A PCP MAP response to the request with `nonce`: the frame decoded, then the result code,
// nonce and protocol checked; check_mapping() does the rest.
Expected<GatewayAnswer, std::string> pcp_answer(std::span<const std::uint8_t> datagram,
                                                const wire::PcpNonce& nonce);

class MappingSchedule {
 public:
  explicit MappingSchedule(bool enabled) : enabled_(enabled) {}

  // True when a (re)mapping request should start now; the caller then calls started() and,
  // with its outcome, on_result().
  bool due(Time now) const { return enabled_ && !in_flight_ && now >= next_; }
  void started() { in_flight_ = true; }
  // The outcome. Returns whether a failure should be logged at warning level (a new reason,
  // or the same one after kSameErrorLogInterval): a gateway that keeps failing the same way
  // is one line per 10 minutes, not one per attempt.
  bool on_result(Time now, const Expected<Mapping, std::string>& r);
  // Addresses, links or the default route changed: the gateway may be another; ask now.
  void on_network_changed(Time now);
  // The mapping lapsed without renewal (now past expires()): forget it. True if it did.
  bool expire(Time now);

  const std::optional<Mapping>& mapping() const { return mapping_; }
  const std::string& last_error() const { return last_error_; }
  bool enabled() const { return enabled_; }
  bool in_flight() const { return in_flight_; }
  Time deadline() const;

 private:
  bool enabled_;
  bool in_flight_ = false;
  Time next_{};  // the first request is due at once
  Duration backoff_ = kFirstRetry;
  std::optional<Mapping> mapping_;
  std::string last_error_;
  Time last_error_logged_{};
};

}  // namespace p2p::nat
