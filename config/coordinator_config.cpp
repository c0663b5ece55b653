#include "config/coordinator_config.hpp"

#include <algorithm>
#include <variant>

#include "config/common_schema.hpp"

namespace p2p::config {
namespace {

using namespace std::chrono_literals;
using C = CoordinatorConfig;

void check_relay(const Value& map, C::Relay& relay) {
  auto burst = map.child("burst");
  if (!burst) {
    relay.burst = std::max(relay.rate_limit, C::kMinRelayBurst);
  } else if (relay.burst < C::kMinRelayBurst) {
    burst->fail("a burst below 16 KiB (\"132kbit\") cannot pass a full-size packet");
  }
}

void check_alternate(const Value& map, C& c) {
  auto address = map.child("alternate_address");
  auto port = map.child("alternate_port");
  if (!address) {
    if (port) port->fail("alternate_port needs alternate_address");
    return;
  }
  const IpAddress& alt = *c.alternate_address;
  if (alt.index() != c.listen.address.index()) {
    address->fail("the alternate address must have the listen address's family (" +
                  to_string(c.listen.address) + ")");
  }
  if (alt == IpAddress{Ipv4{}} || alt == IpAddress{Ipv6{}}) {
    address->fail("the alternate address must be a specific address, not " + to_string(alt));
  }
  if (alt == c.listen.address) address->fail("the alternate address equals the listen address");
  if (!port) {
    if (c.listen.port == 65535) {
      address->fail("the listen port is 65535, so alternate_port must be given");
    }
    c.alternate_port = static_cast<std::uint16_t>(c.listen.port + 1);
  } else if (*c.alternate_port == c.listen.port) {
    port->fail("the alternate port must differ from the listen port");
  }
  // RFC 5780 names the primary address in every answer (RESPONSE-ORIGIN, OTHER-ADDRESS), and a
  // wildcard socket would also hold the alternate address's ports: the primary address must be
  // a specific one.
  if (c.listen.address == IpAddress{Ipv4{}} || c.listen.address == IpAddress{Ipv6{}}) {
    const std::string wildcard = to_string(c.listen.address);
    const std::string fix =
        "write listen: " +
        std::string(std::holds_alternative<Ipv4>(alt) ? "203.0.113.10" : "[2001:db8::10]") + ":" +
        std::to_string(c.listen.port) +
        " with your primary public address (the coordinator then serves "
        "both addresses)";
    if (auto listen = map.child("listen")) {
      listen->fail(
          "with alternate_address the listen address must be the primary public "
          "address, not " +
          wildcard + ": " + fix);
    }
    address->fail(
        "alternate_address needs listen set to the primary public address (the "
        "default listens on " +
        wildcard + "): " + fix);
  }
}

const Schema<C::Relay> kRelay{{
                                  {"enabled", kOptional, into(&C::Relay::enabled, read_bool)},
                                  {"rate_limit", kOptional, into(&C::Relay::rate_limit, read_rate)},
                                  {"burst", kOptional, into(&C::Relay::burst, read_data_size)},
                              },
                              check_relay};

void check_limits(const Value& map, C::Limits& l) {
  auto burst_at_least_rate = [&](const char* key, std::uint64_t rate, std::uint64_t burst) {
    if (auto v = map.child(key); v && burst < rate)
      v->fail("the burst must be at least the rate (" + std::to_string(rate) + ")");
  };
  burst_at_least_rate("lookup_burst", l.lookup_rate, l.lookup_burst);
  burst_at_least_rate("introduction_burst", l.introduction_rate, l.introduction_burst);
  if (!map.child("lookup_burst")) l.lookup_burst = std::max(l.lookup_burst, l.lookup_rate);
  if (!map.child("introduction_burst"))
    l.introduction_burst = std::max(l.introduction_burst, l.introduction_rate);
}

void check_stun(const Value& map, C::Stun& stun) {
  auto burst = map.child("burst");
  if (!burst) {
    stun.burst = std::max({stun.burst, stun.rate_limit, C::kMinStunBurst});
  } else if (stun.burst < C::kMinStunBurst || stun.burst < stun.rate_limit) {
    burst->fail("the burst must be at least 2 KiB (\"16kbit\") and one second of rate_limit");
  }
}

constexpr std::uint64_t kMaxRequestRate = 100'000, kMaxRequestBurst = 1'000'000;
const Schema<C::Limits> kLimits{
    {
        {"max_nodes", kOptional,
         into(&C::Limits::max_nodes, integer_in<std::uint64_t>(1, 1'000'000))},
        {"lookup_rate", kOptional,
         into(&C::Limits::lookup_rate, integer_in<std::uint64_t>(1, kMaxRequestRate))},
        {"lookup_burst", kOptional,
         into(&C::Limits::lookup_burst, integer_in<std::uint64_t>(1, kMaxRequestBurst))},
        {"introduction_rate", kOptional,
         into(&C::Limits::introduction_rate, integer_in<std::uint64_t>(1, kMaxRequestRate))},
        {"introduction_burst", kOptional,
         into(&C::Limits::introduction_burst, integer_in<std::uint64_t>(1, kMaxRequestBurst))},
    },
    check_limits};

const Schema<C::Stun> kStun{
    {
        {"rate_limit", kOptional, into(&C::Stun::rate_limit, read_rate)},
        {"burst", kOptional, into(&C::Stun::burst, read_data_size)},
        {"sources", kOptional, into(&C::Stun::sources, integer_in<std::uint64_t>(64, 4'194'304))},
    },
    check_stun};

void check_tcp(const Value& map, C::Tcp& tcp) {
  if (tcp.assist && tcp.main == tcp.assist)
    map.child("assist")->fail("assist must be another port than main");
}

const Schema<C::Tcp> kTcp{
    {
        {"main", kRequired, into(&C::Tcp::main, read_endpoint)},
        {"assist", kOptional, into(&C::Tcp::assist, read_endpoint)},
        {"max_connections", kOptional,
         into(&C::Tcp::max_connections, integer_in<std::uint64_t>(1, 1'000'000))},
        {"per_source", kOptional, into(&C::Tcp::per_source, integer_in<std::uint64_t>(1, 65536))},
    },
    check_tcp};

const Schema<C::Performance> kPerformance{{
    {"udp_gso", kOptional, into(&C::Performance::udp_gso, read_bool)},
    {"udp_gro", kOptional, into(&C::Performance::udp_gro, read_bool)},
}};

const Schema<C> kCoordinator{
    {
        {"key", kRequired, into(&C::key, read_private_key_file)},
        {"cert", kRequired, into(&C::cert, read_readable_file)},
        {"ca", kRequired, into(&C::ca, read_readable_file)},
        {"listen", kOptional, into(&C::listen, read_endpoint)},
        {"alternate_address", kOptional, into(&C::alternate_address, read_ip)},
        {"alternate_port", kOptional,
         into(&C::alternate_port, integer_in<std::uint16_t>(1, 65535))},
        {"revoked", kOptional, into(&C::revoked, read_revoked)},
        {"node_timeout", kOptional, into(&C::node_timeout, duration_in(5s, 24h))},
        {"relay", kOptional, into(&C::relay, section(kRelay))},
        {"limits", kOptional, into(&C::limits, section(kLimits))},
        {"stun", kOptional, into(&C::stun, section(kStun))},
        {"log", kOptional, into(&C::log, section(log_schema()))},
        {"control_socket", kOptional, into(&C::control_socket, read_path)},
        {"metrics", kOptional, into(&C::metrics, section(metrics_schema()))},
        {"tcp", kOptional, into(&C::tcp, section(kTcp))},
        {"revocation_list", kOptional, into(&C::revocation_list, read_path)},
        {"performance", kOptional, into(&C::performance, section(kPerformance))},
    },
    check_alternate};

}  // namespace

std::optional<Endpoint> CoordinatorConfig::alternate() const {
  if (!alternate_address || !alternate_port) return std::nullopt;
  return Endpoint{*alternate_address, *alternate_port};
}

CoordinatorConfig parse_coordinator_config(std::string_view text,
                                           const std::filesystem::path& file_name) {
  return read_config(text, file_name, kCoordinator);
}

CoordinatorConfig load_coordinator_config(const std::filesystem::path& file) {
  return parse_coordinator_config(read_config_file(file), file);
}

}  // namespace p2p::config
