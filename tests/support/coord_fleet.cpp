#include "tests/support/coord_fleet.hpp"

#include <spdlog/sinks/null_sink.h>
#include <time.h>

#include <algorithm>

#include "net/packet.hpp"

namespace p2p::sim {

using namespace std::chrono_literals;

std::shared_ptr<spdlog::logger> silent_logger(const std::string& name) {
  auto log =
      std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>());
  log->set_level(spdlog::level::off);
  return log;
}

namespace {

std::chrono::nanoseconds thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

FleetNode::FleetNode(CoordFleet& f, Endpoint seen, crypto::Identity id)
    : fleet(f),
      seen_as(seen),
      identity(std::move(id)),
      log(f.node_log()),
      link(
          identity, CoordFleet::kCoordinator, 0, 25s,
          [this](const crypto::Certificate& c) {
            return crypto::verify(c, fleet.ca().cert, CoordFleet::kUnixStart,
                                  crypto::VerifyPolicy{crypto::Role::coordinator, {}});
          },
          table, *this, *this, *log, drops) {}

void FleetNode::send_udp(const Endpoint&, std::span<const std::uint8_t> d) {
  fleet.to_coordinator(seen_as, d);
}

void FleetNode::fill_random(std::span<std::uint8_t> out) {
  fleet.fill_random(out);
}

std::uint64_t FleetNode::unix_nanos() {
  return fleet.unix_nanos();
}

void FleetNode::receive(Time now, std::span<const std::uint8_t> d) {
  // As the shell hands it over: in a buffer with headroom and tailroom.
  std::vector<std::uint8_t> buf(kHeadroom + d.size() + kTailroom);
  std::copy(d.begin(), d.end(), buf.begin() + kHeadroom);
  PacketView v(buf.data(), buf.size(), kHeadroom, d.size());
  switch (wire::classify(d)) {
    case wire::DatagramKind::kHandshakeResp: {
      auto r = wire::parse_handshake_resp(d);
      if (r && table.find(r->receiver_index) == core::SessionOwner{true, 0})
        link.on_handshake_resp(now, *r);
      break;
    }
    case wire::DatagramKind::kData: {
      auto h = wire::parse_data(v.span());
      if (!h || table.find(h->receiver_index) != core::SessionOwner{true, 0}) break;
      link.on_data(now, *h, v.sub(wire::kDataHeaderSize, v.size() - wire::kDataHeaderSize));
      break;
    }
    case wire::DatagramKind::kRelayed: {
      auto f = wire::parse_relay(v.span());
      if (!f || table.find(f->receiver_index) != core::SessionOwner{true, 0}) break;
      link.on_relayed_frame(now, *f, v);
      break;
    }
    case wire::DatagramKind::kCookieReply: {
      auto r = wire::parse_cookie_reply(d);
      if (r && table.find(r->receiver_index) == core::SessionOwner{true, 0})
        link.on_cookie_reply(now, *r);
      break;
    }
    default: break;
  }
}

CoordFleet::CoordFleet(coord::CoordinatorSettings settings) : node_log_(silent_logger("node")) {
  core_ = std::make_unique<coord::Coordinator>(
      ca_.issue("coordinator", "10.0.0.1/16", crypto::Role::coordinator), ca_.cert,
      std::move(settings), std::nullopt, *this, silent_logger("coordinator"));
  buffer_.resize(kBufferSize);
}

FleetNode& CoordFleet::add(const std::string& name, Ipv4 vip, Endpoint seen_as) {
  return add(ca_.issue(name, vip.to_string() + "/16"), seen_as);
}

FleetNode& CoordFleet::add(crypto::Identity id, Endpoint seen_as) {
  auto& slot = nodes_[seen_as];
  slot = std::make_unique<FleetNode>(*this, seen_as, std::move(id));
  return *slot;
}

void CoordFleet::connect(FleetNode& n) {
  n.link.set_network_key(ca_.cert.public_key);
  n.link.start(now_);
  deliver();
}

void CoordFleet::forget(FleetNode& n) {
  nodes_.erase(n.seen_as);
}

void CoordFleet::to_coordinator(const Endpoint& from, std::span<const std::uint8_t> d) {
  in_flight_.push_back({from, kCoordinator, {d.begin(), d.end()}});
}

void CoordFleet::send_udp(wire::stun::ServerSocket, const Endpoint& to,
                          std::span<const std::uint8_t> d) {
  ++datagrams_to_nodes;
  in_flight_.push_back({kCoordinator, to, {d.begin(), d.end()}});
}

void CoordFleet::deliver() {
  while (!in_flight_.empty()) {
    Datagram d = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (d.to == kCoordinator) {
      if (d.data.size() > kMaxPacket) continue;
      std::copy(d.data.begin(), d.data.end(), buffer_.begin() + kHeadroom);
      PacketView v(buffer_.data(), buffer_.size(), kHeadroom, d.data.size());
      const auto before = timing ? thread_cpu() : std::chrono::nanoseconds{};
      core_->on_udp(now_, wire::stun::ServerSocket::kPrimary, d.from, v);
      if (timing) {
        coordinator_cpu += thread_cpu() - before;
        ++coordinator_datagrams;
      }
    } else if (auto it = nodes_.find(d.to); it != nodes_.end()) {
      it->second->receive(now_, d.data);
    }
  }
}

void CoordFleet::advance(Duration d) {
  const Time end = now_ + d;
  for (;;) {
    Time next = std::min(end, core_->next_deadline());
    for (auto& [ep, n] : nodes_) next = std::min(next, n->link.deadline());
    now_ = std::max(now_, next);
    if (core_->next_deadline() <= now_) core_->on_tick(now_);
    for (auto& [ep, n] : nodes_) {
      if (n->link.deadline() <= now_) n->link.tick(now_);
    }
    deliver();
    if (now_ >= end) return;
  }
}

void CoordFleet::fill_random(std::span<std::uint8_t> out) {
  for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
}

std::uint64_t CoordFleet::unix_nanos() {
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(now_ - Time{});
  return static_cast<std::uint64_t>(kUnixStart) * 1'000'000'000ull +
         static_cast<std::uint64_t>(since.count());
}

}  // namespace p2p::sim
