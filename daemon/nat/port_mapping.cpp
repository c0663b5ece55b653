#include "daemon/nat/port_mapping.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

namespace p2p::nat {

const char* to_string(MappingProtocol p) {
  switch (p) {
    case MappingProtocol::kPcp: return "pcp";
    case MappingProtocol::kNatPmp: return "natpmp";
    case MappingProtocol::kUpnp: return "upnp";
  }
  return "?";
}

std::optional<MappingProtocol> parse_mapping_protocol(std::string_view s) {
  for (auto p : {MappingProtocol::kPcp, MappingProtocol::kNatPmp, MappingProtocol::kUpnp}) {
    if (s == to_string(p)) return p;
  }
  return std::nullopt;
}

bool is_unusable_external(const IpAddress& a) {
  if (is_private(a)) return true;
  if (const auto* v4 = std::get_if<Ipv4>(&a)) {
    for (const char* p : {"0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
                          "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3"}) {
      if (Ipv4Prefix::parse(p)->contains(*v4)) return true;
    }
    return false;
  }
  const auto& b = std::get<Ipv6>(a).bytes;
  bool unspecified = std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
  bool documentation = b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
  return unspecified || documentation || b[0] == 0xff;  // ff00::/8 multicast
}

Expected<Mapping, std::string> check_mapping(Time now, const GatewayAnswer& a,
                                             std::uint16_t our_port,
                                             const std::optional<IpAddress>& our_client) {
  const char* proto = to_string(a.protocol);
  if (a.internal_port != our_port) {
    return fail(fmt::format("{}: gateway mapped internal port {}, we asked for {}", proto,
                            a.internal_port, our_port));
  }
  if (a.internal_client && our_client && *a.internal_client != *our_client) {
    return fail(fmt::format("{}: gateway mapped the port to another host {}, we are {}", proto,
                            p2p::to_string(*a.internal_client), p2p::to_string(*our_client)));
  }
  if (a.external.port == 0) return fail(fmt::format("{}: gateway gave external port 0", proto));
  if (is_unusable_external(a.external.address)) {
    return fail(
        fmt::format("{}: gateway's external address {} is not a public address "
                    "(another NAT behind it?)",
                    proto, p2p::to_string(a.external.address)));
  }
  std::uint32_t lifetime = a.lifetime;
  if (lifetime == 0 && a.protocol == MappingProtocol::kUpnp) lifetime = kRequestedLifetime;
  if (lifetime < kMinLifetime || lifetime > kMaxLifetime) {
    return fail(fmt::format("{}: gateway granted a lifetime of {} s (accepted: {}..{} s)", proto,
                            a.lifetime, kMinLifetime, kMaxLifetime));
  }
  return Mapping{a.protocol, a.external, a.internal_port, std::chrono::seconds(lifetime), now};
}

Expected<GatewayAnswer, std::string> pcp_answer(std::span<const std::uint8_t> datagram,
                                                const wire::PcpNonce& nonce) {
  auto r = wire::decode_pcp_map_response(datagram);
  if (!r) return fail(fmt::format("pcp: malformed response ({} bytes)", datagram.size()));
  if (r->nonce != nonce) return fail(std::string("pcp: response for another request (nonce)"));
  if (r->result != 0) {
    return fail(
        fmt::format("pcp: gateway refused: {} ({})", wire::pcp_result_name(r->result), r->result));
  }
  if (r->protocol != wire::kPcpProtocolUdp) {
    return fail(fmt::format("pcp: gateway mapped protocol {}, we asked for UDP", r->protocol));
  }
  return GatewayAnswer{MappingProtocol::kPcp, r->internal_port, std::nullopt, r->external,
                       r->lifetime};
}

bool MappingSchedule::on_result(Time now, const Expected<Mapping, std::string>& r) {
  in_flight_ = false;
  if (r) {
    mapping_ = *r;
    backoff_ = kFirstRetry;
    last_error_.clear();
    next_ = r->renew_at();
    return false;
  }
  // A failed renewal keeps the mapping until it expires and tries again sooner.
  next_ = now + backoff_;
  if (mapping_ && mapping_->expires() > now) next_ = std::min(next_, mapping_->expires());
  backoff_ = std::min(backoff_ * 2, kMaxRetry);
  bool log = r.error() != last_error_ || now - last_error_logged_ >= kSameErrorLogInterval;
  last_error_ = r.error();
  if (log) last_error_logged_ = now;
  return log;
}

void MappingSchedule::on_network_changed(Time now) {
  backoff_ = kFirstRetry;
  next_ = now;
}

bool MappingSchedule::expire(Time now) {
  if (!mapping_ || now < mapping_->expires()) return false;
  mapping_.reset();
  return true;
}

Time MappingSchedule::deadline() const {
  if (!enabled_) return Time::max();
  Time t = in_flight_ ? Time::max() : next_;
  if (mapping_) t = std::min(t, mapping_->expires());
  return t;
}

}  // namespace p2p::nat
