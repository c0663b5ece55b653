// Fuzz target: hostile datagrams into the node core and the coordinator core, as they would
// arrive on the UDP socket from anyone on the internet. The first input byte picks the core
// (bit 0), the socket (bits 1-2), whether an initiation gets a valid mac1 stamped so the
// fuzzer reaches past the cheap checks (bit 3), whether time jumps by 30 s instead of
// stepping 10 ms (bit 4: pending tables fill and expire, buckets refill, cookie secrets
// rotate) and the source address (bits 5-7); the rest is the datagram. Neither core may
// crash, hang or grow without bound.
#include <sodium.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <vector>

#include "coordinator/core/coordinator.hpp"
#include "crypto/auth_handshake.hpp"
#include "crypto/handshake_guard.hpp"
#include "daemon/core/node.hpp"

namespace {

using namespace p2p;
constexpr UnixTime kNow = 1'800'000'000;

struct Fx : core::NodeEffects, coord::CoordinatorEffects {
  std::uint64_t counter = 0;
  void send_udp(const Endpoint&, std::span<const std::uint8_t>) override {}
  void write_tun(std::span<const std::uint8_t>) override {}
  void send_udp(wire::stun::ServerSocket, const Endpoint&, std::span<const std::uint8_t>) override {
  }
  void send_tcp(coord::ConnectionId, std::span<const std::uint8_t>) override {}
  void fill_random(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = static_cast<std::uint8_t>(++counter * 0x9e3779b97f4a7c15ull >> 56);
  }
  std::uint64_t unix_nanos() override { return kNow * 1'000'000'000ull; }
};

crypto::Identity issue(const crypto::CaCertificate& ca, const crypto::Ed25519KeyPair& key,
                       const char* name, const char* vip, crypto::Role role) {
  auto kp = crypto::noise::KeyPair::generate();
  crypto::Certificate c;
  c.name = name;
  c.vip = *Ipv4Prefix::parse(vip);
  c.public_key = kp.public_key;
  c.role = role;
  c.not_before = kNow - 10;
  c.not_after = kNow + 1000;
  return crypto::Identity::make(std::move(kp), crypto::sign(c, ca, key).value());
}

struct World {
  Fx fx;
  crypto::GuardKeys node_keys, coordinator_keys;
  std::unique_ptr<core::Node> node;
  std::unique_ptr<coord::Coordinator> coordinator;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(kBufferSize);

  World() {
    auto ca_key = crypto::Ed25519KeyPair::generate();
    auto ca = crypto::make_ca_certificate("fuzz-ca", ca_key, kNow - 100, kNow + 10000).value();
    auto log =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    core::NodeSettings ns;
    ns.coordinators = {*Endpoint::parse("203.0.113.10:7400")};
    auto node_id = issue(ca, ca_key, "n", "10.77.0.2/24", crypto::Role::node);
    node_keys = crypto::GuardKeys::derive(node_id.key.public_key);
    coordinator_keys = crypto::GuardKeys::derive(ca.public_key);
    node = std::make_unique<core::Node>(std::move(node_id), ca, ns, fx, log);
    node->start(Time{});
    wire::stun::ServerConfig sc;
    sc.primary = *Endpoint::parse("203.0.113.10:7400");
    sc.alternate_address = IpAddress{*Ipv4::parse("203.0.113.11")};
    sc.alternate_port = 7401;
    coordinator = std::make_unique<coord::Coordinator>(
        issue(ca, ca_key, "c", "10.77.0.1/24", crypto::Role::coordinator), ca,
        coord::CoordinatorSettings{}, wire::stun::Server::create(sc).value(), fx, log);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World w;
  static Time now{};
  if (size < 1 || size > 2000) return 0;
  now += (data[0] & 0x10) ? std::chrono::milliseconds(30'000) : std::chrono::milliseconds(10);
  std::memcpy(w.buffer.data() + kHeadroom, data + 1, size - 1);
  PacketView v(w.buffer.data(), w.buffer.size(), kHeadroom, size - 1);
  if ((data[0] & 0x08) && wire::parse_handshake_init(v.span()))
    crypto::stamp_macs(v.span(), (data[0] & 1) ? w.coordinator_keys : w.node_keys, std::nullopt);
  const Endpoint from{Ipv4{0xc6336400u | (data[0] >> 5)}, 4000};
  if (data[0] & 1) {
    w.coordinator->on_udp(now, static_cast<wire::stun::ServerSocket>((data[0] >> 1) & 3), from, v);
    if (w.coordinator->next_deadline() <= now) w.coordinator->on_tick(now);
  } else if (data[0] & 0x04) {
    w.node->on_punch_udp(now, 1, from, v);  // as read on a birthday punch's extra socket
  } else {
    w.node->on_udp(now, from, v);
    if (w.node->next_deadline() <= now) w.node->on_tick(now);
  }
  return 0;
}
