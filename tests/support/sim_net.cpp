#include "tests/support/sim_net.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

#include "net/packet.hpp"
#include "net/stun.hpp"

namespace p2p::sim {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<spdlog::logger> make_logger(const std::string& name) {
  // P2P_SIM_LOG=debug shows the cores' logs while a test runs.
  const char* level = std::getenv("P2P_SIM_LOG");
  if (!level)
    return std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>());
  auto log =
      std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_level(spdlog::level::from_str(level));
  return log;
}

const char* describe(std::span<const std::uint8_t> d) {
  switch (wire::classify(d)) {
    case wire::DatagramKind::kStun: return "stun";
    case wire::DatagramKind::kHandshakeInit: return "init";
    case wire::DatagramKind::kHandshakeResp: return "resp";
    case wire::DatagramKind::kHandshakeFinal: return "final";
    case wire::DatagramKind::kData: return "data";
    case wire::DatagramKind::kCookieReply: return "cookie";
    case wire::DatagramKind::kRelay: return "relay";
    case wire::DatagramKind::kRelayed: return "relayed";
    case wire::DatagramKind::kUnknown: return "garbage";
  }
  return "?";
}

std::uint16_t checksum(std::span<const std::uint8_t> b, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < b.size(); i += 2) sum += std::uint32_t{b[i]} << 8 | b[i + 1];
  if (b.size() % 2) sum += std::uint32_t{b.back()} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

}  // namespace

// ---------------------------------------------------------------------------------------

TestCa::TestCa(UnixTime now_, std::string name)
    : key(crypto::Ed25519KeyPair::generate()),
      cert(crypto::make_ca_certificate(std::move(name), key, now_ - 86400, now_ + 3650 * 86400)
               .value()),
      now(now_) {}

crypto::Identity TestCa::issue(const std::string& name, const std::string& vip_prefix,
                               crypto::Role role, UnixTime not_before, UnixTime not_after) const {
  auto kp = crypto::noise::KeyPair::generate();
  crypto::Certificate c;
  c.name = name;
  c.vip = *Ipv4Prefix::parse(vip_prefix);
  c.public_key = kp.public_key;
  c.role = role;
  c.not_before = not_before ? not_before : now - 3600;
  c.not_after = not_after ? not_after : now + 365 * 86400;
  auto signed_cert = crypto::sign(std::move(c), cert, key);
  if (!signed_cert) throw std::runtime_error("issue: " + signed_cert.error().message);
  return crypto::Identity::make(std::move(kp), std::move(signed_cert).value());
}

std::vector<std::uint8_t> make_udp_packet(Ipv4 src, Ipv4 dst, std::uint16_t sport,
                                          std::uint16_t dport,
                                          std::span<const std::uint8_t> payload) {
  std::size_t total = 20 + 8 + payload.size();
  std::vector<std::uint8_t> p(total);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[8] = 64;
  p[9] = 17;
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<std::uint8_t>(src.value >> (24 - 8 * i));
    p[16 + i] = static_cast<std::uint8_t>(dst.value >> (24 - 8 * i));
  }
  auto c = checksum(std::span(p).first(20));
  p[10] = static_cast<std::uint8_t>(c >> 8);
  p[11] = static_cast<std::uint8_t>(c);
  p[20] = static_cast<std::uint8_t>(sport >> 8);
  p[21] = static_cast<std::uint8_t>(sport);
  p[22] = static_cast<std::uint8_t>(dport >> 8);
  p[23] = static_cast<std::uint8_t>(dport);
  std::size_t ulen = 8 + payload.size();
  p[24] = static_cast<std::uint8_t>(ulen >> 8);
  p[25] = static_cast<std::uint8_t>(ulen);
  std::memcpy(p.data() + 28, payload.data(), payload.size());
  return p;  // UDP checksum 0: allowed over IPv4
}

// ---------------------------------------------------------------------------------------

SimNode::SimNode(SimNet& net, std::string name, Endpoint socket, crypto::Identity id,
                 const crypto::CaCertificate& ca, core::NodeSettings settings)
    : net_(net), name_(std::move(name)), socket_(socket), vip_(id.certificate.vip.address) {
  node_ = std::make_unique<core::Node>(std::move(id), ca, std::move(settings), *this,
                                       make_logger(name_));
}

void SimNode::tun_send(std::span<const std::uint8_t> ip) {
  std::vector<std::uint8_t> buf(kHeadroom + ip.size() + kTailroom);
  std::memcpy(buf.data() + kHeadroom, ip.data(), ip.size());
  node_->on_tun(net_.now(), PacketView(buf.data(), buf.size(), kHeadroom, ip.size()));
}

void SimNode::send_udp_to(Ipv4 dst, std::string_view text, std::uint16_t port) {
  auto pkt =
      make_udp_packet(vip_, dst, 40000, port,
                      std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  tun_send(pkt);
}

void SimNode::discover(Endpoint server, nat::SchedulerSettings settings) {
  stun_server_ = server;
  if (!discovery_) {
    discovery_ = std::make_unique<nat::DiscoveryScheduler>(
        std::move(settings), *this, [this](std::span<std::uint8_t> out) { fill_random(out); },
        [this](Time now, const nat::Report& report) {
          nat_report_ = report;
          ++nat_reports_;
          node_->set_nat(now, nat::summarize(report));
        },
        make_logger(name_ + "-nat"));
    node_->set_stun_sink([this](Time now, const Endpoint& from, std::span<const std::uint8_t> d) {
      discovery_->on_stun(now, from, d);
    });
  }
  discovery_->request(net_.now(), std::nullopt);
  after_event(net_.now());
}

void SimNode::network_changed() {
  const Time now = net_.now();
  node_->network_changed(now, {socket_});
  if (discovery_) discovery_->on_network_changed(now);
  after_event(now);
}

void SimNode::public_endpoint_moved(const Endpoint&, const Endpoint&) {
  public_moved_ = true;  // acted on in after_event(), outside the Node
}

void SimNode::after_event(Time now) {
  if (!discovery_) return;
  if (discovery_->next_deadline() <= now) discovery_->on_tick(now);
  if (public_moved_) {
    public_moved_ = false;
    discovery_->on_public_endpoint_moved(now);
  }
  if (node_->registered() != registered_) {
    registered_ = !registered_;
    discovery_->on_registered(now, registered_);
  }
}

Time SimNode::next_deadline() const {
  Time t = node_->next_deadline();
  if (discovery_) t = std::min(t, discovery_->next_deadline());
  return t;
}

void SimNode::tick(Time now) {
  if (node_->next_deadline() <= now) node_->on_tick(now);
  after_event(now);
}

void SimNode::on_udp(Time now, const Endpoint& from, PacketView datagram) {
  node_->on_udp(now, from, datagram);
  after_event(now);
}

void SimNode::send_udp(const Endpoint& to, std::span<const std::uint8_t> d) {
  net_.send(socket_, to, d);
}

void SimNode::fill_random(std::span<std::uint8_t> out) {
  for (auto& b : out) b = static_cast<std::uint8_t>(net_.rng()());
}

std::uint64_t SimNode::unix_nanos() {
  return static_cast<std::uint64_t>(net_.unix_now()) * 1'000'000'000ull +
         static_cast<std::uint64_t>((net_.now().time_since_epoch() % 1s).count());
}

SimCoordinator::SimCoordinator(SimNet& net, Endpoint primary, std::optional<Ipv4> alternate,
                               crypto::Identity id, const crypto::CaCertificate& ca,
                               coord::CoordinatorSettings settings)
    : net_(net), primary_(primary), alternate_(alternate) {
  wire::stun::ServerConfig sc;
  sc.primary = primary;
  if (alternate) {
    sc.alternate_address = IpAddress{*alternate};
    sc.alternate_port = static_cast<std::uint16_t>(primary.port + 1);
  }
  auto stun = wire::stun::Server::create(sc);
  core_ = std::make_unique<coord::Coordinator>(std::move(id), ca, std::move(settings),
                                               std::move(stun).value(), *this,
                                               make_logger("coordinator"));
}

Endpoint SimCoordinator::socket_endpoint(wire::stun::ServerSocket s) const {
  Endpoint e = primary_;
  auto bits = static_cast<int>(s);
  if (bits & 2) e.address = *alternate_;
  if (bits & 1) e.port = static_cast<std::uint16_t>(primary_.port + 1);
  return e;
}

void SimCoordinator::send_udp(wire::stun::ServerSocket from, const Endpoint& to,
                              std::span<const std::uint8_t> d) {
  net_.send(socket_endpoint(from), to, d);
}

void SimCoordinator::send_tcp(coord::ConnectionId connection, std::span<const std::uint8_t> d) {
  net_.stream_to_node(connection, d);
}

void SimCoordinator::fill_random(std::span<std::uint8_t> out) {
  for (auto& b : out) b = static_cast<std::uint8_t>(net_.rng()());
}

std::uint64_t SimCoordinator::unix_nanos() {
  return static_cast<std::uint64_t>(net_.unix_now()) * 1'000'000'000ull;
}

// ---------------------------------------------------------------------------------------

struct SimNet::Nat {
  struct Mapping {
    Endpoint inside;
    Endpoint first_dst;  // the destination that created it (keys ADM/APDM mappings)
    std::uint16_t port;
    Time last_used;
    std::set<Endpoint> permitted;  // destinations the inside host sent to through it
  };
  Ipv4 public_ip;
  NatModel model;
  bool blocked = false;
  std::vector<Mapping> mappings;
  std::uint16_t next_port = 20000;
  std::set<IpAddress> hosts;                          // private addresses behind it
  std::map<std::uint16_t, Endpoint> forwards;         // external port -> inside (port mappings)
  std::set<std::pair<Endpoint, Endpoint>> forwarded;  // (inside, remote) flows they carried
};

struct SimNet::InFlight {
  Endpoint seen_from;  // the source as the receiver sees it
  Endpoint to;         // the receiving socket
  std::vector<std::uint8_t> data;
  std::function<void()> action = {};  // set: an event on the timeline instead (later())
};

SimNet::SimNet(std::uint64_t seed, UnixTime unix_start)
    : rng_(seed), unix_start_(unix_start), buffer_(kBufferSize) {}

SimNet::~SimNet() = default;

UnixTime SimNet::unix_now() const {
  return unix_start_ +
         std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count();
}

int SimNet::add_nat(Ipv4 public_address, NatModel model) {
  auto n = std::make_unique<Nat>();
  n->public_ip = public_address;
  n->model = model;
  nats_.push_back(std::move(n));
  return static_cast<int>(nats_.size()) - 1;
}

void SimNet::set_nat_model(int nat, NatModel model) {
  nats_.at(nat)->model = model;
}
void SimNet::set_blocked(int nat, bool blocked) {
  nats_.at(nat)->blocked = blocked;
}
void SimNet::flush_nat(int nat) {
  nats_.at(nat)->mappings.clear();
}

SimCoordinator& SimNet::add_coordinator(Endpoint primary, std::optional<Ipv4> alternate,
                                        crypto::Identity id, const crypto::CaCertificate& ca,
                                        coord::CoordinatorSettings settings) {
  coordinators_.push_back(std::make_unique<SimCoordinator>(*this, primary, alternate, std::move(id),
                                                           ca, std::move(settings)));
  auto* c = coordinators_.back().get();
  int sockets = alternate ? 4 : 1;
  for (int s = 0; s < sockets; ++s) {
    auto sock = static_cast<wire::stun::ServerSocket>(s);
    hosts_[c->socket_endpoint(sock)] = Receiver{nullptr, c, sock, -1};
  }
  return *c;
}

SimNode& SimNet::add_node(std::string name, int nat, Endpoint socket, crypto::Identity id,
                          const crypto::CaCertificate& ca, core::NodeSettings settings) {
  auto node =
      std::make_unique<SimNode>(*this, name, socket, std::move(id), ca, std::move(settings));
  auto* n = node.get();
  nodes_[name] = std::move(node);
  hosts_[socket] = Receiver{n, nullptr, {}, nat};
  if (nat >= 0) nats_.at(nat)->hosts.insert(socket.address);
  n->node().set_local_endpoints(now_, {socket});
  n->node().start(now_);
  return *n;
}

void SimNet::remove_node(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  hosts_.erase(it->second->socket());
  std::erase_if(streams_, [&](const auto& x) { return x.second.node == it->second.get(); });
  std::erase_if(hosts_, [&](const auto& h) { return h.second.node == it->second.get(); });
  nodes_.erase(it);
}

Duration SimNet::delay(bool lan) {
  Duration d = lan ? lan_latency : latency;
  if (jitter.count() > 0) {
    d += Duration(static_cast<Duration::rep>(rng_() % static_cast<std::uint64_t>(jitter.count())));
  }
  return d;
}

void SimNet::record(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d,
                    const char* fate) {
  if (tap) tap(Tapped{now_, from, to, d, fate});
  auto ms = std::chrono::duration_cast<std::chrono::microseconds>(now_.time_since_epoch()).count();
  trace_.push_back(std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + "ms " +
                   from.to_string() + " -> " + to.to_string() + " " + describe(d) + " " +
                   std::to_string(d.size()) + "B " + fate);
  if (trace_.size() > 4000) trace_.erase(trace_.begin(), trace_.begin() + 2000);
}

std::string SimNet::trace_tail(std::size_t n) const {
  std::string out;
  for (std::size_t i = trace_.size() > n ? trace_.size() - n : 0; i < trace_.size(); ++i)
    out += "  " + trace_[i] + "\n";
  return out;
}

void SimNet::add_port_forward(int nat, std::uint16_t external_port, Endpoint inside) {
  nats_.at(nat)->forwards[external_port] = inside;
}

Ipv4 SimNet::nat_public_ip(int nat) const {
  return nats_.at(nat)->public_ip;
}

std::optional<Endpoint> SimNet::translate_out(Nat& nat, const Endpoint& from, const Endpoint& to) {
  for (const auto& [port, inside] : nat.forwards) {
    if (inside == from && nat.forwarded.contains({from, to})) return Endpoint{nat.public_ip, port};
  }
  std::erase_if(nat.mappings, [&](const Nat::Mapping& m) {
    return now_ - m.last_used >= nat.model.mapping_timeout;
  });
  Nat::Mapping* found = nullptr;
  for (auto& m : nat.mappings) {
    if (m.inside != from) continue;
    bool match = nat.model.mapping == Behaviour::kIndependent ||
                 (nat.model.mapping == Behaviour::kAddress && m.first_dst.address == to.address) ||
                 (nat.model.mapping == Behaviour::kAddressAndPort && m.first_dst == to);
    if (match) {
      found = &m;
      break;
    }
  }
  if (!found) {
    auto used = [&](std::uint16_t p) {
      return std::any_of(nat.mappings.begin(), nat.mappings.end(),
                         [&](const Nat::Mapping& m) { return m.port == p; });
    };
    std::uint16_t port = 0;
    switch (nat.model.allocation) {
      case Allocation::kPreserving:
        port = from.port;
        while (used(port)) port = static_cast<std::uint16_t>(port + 1 < 1024 ? 1024 : port + 1);
        break;
      case Allocation::kSequential:
        do {
          port = nat.next_port;
          nat.next_port = static_cast<std::uint16_t>(nat.next_port + nat.model.port_step);
          if (nat.next_port < 1024) nat.next_port = 1024;
        } while (used(port));
        break;
      case Allocation::kRandom:
        do port = static_cast<std::uint16_t>(1024 + rng_() % (65536 - 1024));
        while (used(port));
        break;
    }
    nat.mappings.push_back(Nat::Mapping{from, to, port, now_, {}});
    found = &nat.mappings.back();
  }
  found->last_used = now_;
  found->permitted.insert(to);
  return Endpoint{nat.public_ip, found->port};
}

std::optional<Endpoint> SimNet::translate_in(Nat& nat, const Endpoint& from, const Endpoint& to) {
  if (auto f = nat.forwards.find(to.port); f != nat.forwards.end()) {
    nat.forwarded.insert({f->second, from});
    return f->second;
  }
  std::erase_if(nat.mappings, [&](const Nat::Mapping& m) {
    return now_ - m.last_used >= nat.model.mapping_timeout;
  });
  for (auto& m : nat.mappings) {
    if (m.port != to.port) continue;
    bool ok = nat.model.filtering == Behaviour::kIndependent ||
              (nat.model.filtering == Behaviour::kAddress &&
               std::any_of(m.permitted.begin(), m.permitted.end(),
                           [&](const Endpoint& e) { return e.address == from.address; })) ||
              (nat.model.filtering == Behaviour::kAddressAndPort && m.permitted.contains(from));
    if (!ok) return std::nullopt;
    m.last_used = now_;
    return m.inside;
  }
  return std::nullopt;
}

int SimNet::nat_by_public(const IpAddress& a) const {
  for (std::size_t i = 0; i < nats_.size(); ++i) {
    if (IpAddress{nats_[i]->public_ip} == a) return static_cast<int>(i);
  }
  return -1;
}

void SimNet::inject(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d) {
  record(from, to, d, "injected");
  auto f = std::make_unique<InFlight>(InFlight{from, to, {d.begin(), d.end()}, {}});
  queue_.emplace(std::make_pair(now_ + delay(false), seq_++), std::move(f));
}

void SimNet::send(const Endpoint& from, const Endpoint& to, std::span<const std::uint8_t> d) {
  auto src = hosts_.find(from);
  if (src == hosts_.end()) return;
  int nat = src->second.nat;
  auto enqueue = [&](const Endpoint& seen_from, const Endpoint& dst, bool lan, const char* how) {
    if (drop_udp && drop_udp(seen_from, dst)) {
      record(seen_from, dst, d, "dropped: filter");
      return;
    }
    if (loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < loss) {
      record(seen_from, dst, d, "lost");
      return;
    }
    record(seen_from, dst, d, how);
    auto f = std::make_unique<InFlight>(InFlight{seen_from, dst, {d.begin(), d.end()}, {}});
    queue_.emplace(std::make_pair(now_ + delay(lan), seq_++), std::move(f));
  };
  Endpoint seen = from;
  if (nat >= 0) {
    Nat& n = *nats_[nat];
    if (n.hosts.contains(to.address)) {  // same LAN
      if (hosts_.contains(to))
        enqueue(from, to, true, "lan");
      else
        record(from, to, d, "dropped: no such LAN host");
      return;
    }
    if (n.blocked) {
      record(from, to, d, "dropped: UDP blocked");
      return;
    }
    seen = *translate_out(n, from, to);
    if (IpAddress{n.public_ip} == to.address) {  // hairpin
      if (!n.model.hairpin) {
        record(seen, to, d, "dropped: no hairpinning");
        return;
      }
      auto inside = translate_in(n, seen, to);
      if (inside)
        enqueue(seen, *inside, true, "hairpin");
      else
        record(seen, to, d, "dropped: hairpin filtered");
      return;
    }
  }
  int dst_nat = nat_by_public(to.address);
  if (dst_nat >= 0) {
    Nat& n = *nats_[dst_nat];
    if (n.blocked) {
      record(seen, to, d, "dropped: UDP blocked");
      return;
    }
    auto inside = translate_in(n, seen, to);
    if (inside)
      enqueue(seen, *inside, false, "via nat");
    else
      record(seen, to, d, "dropped: filtered by NAT");
    return;
  }
  auto dst = hosts_.find(to);
  if (dst == hosts_.end() || dst->second.nat >= 0) {
    record(seen, to, d, "dropped: no host");
    return;
  }
  enqueue(seen, to, false, "sent");
}

void SimNet::later(Duration delay, std::function<void()> fn) {
  at(now_ + delay, std::move(fn));
}

void SimNet::at(Time t, std::function<void()> fn) {
  auto f = std::make_unique<InFlight>();
  f->action = std::move(fn);
  queue_.emplace(std::make_pair(std::max(t, now_), seq_++), std::move(f));
}

void SimNet::deliver(const InFlight& f) {
  if (f.action) return f.action();
  auto it = hosts_.find(f.to);
  if (it == hosts_.end()) return;
  ++delivered_;
  std::memcpy(buffer_.data() + kHeadroom, f.data.data(), f.data.size());
  PacketView v(buffer_.data(), buffer_.size(), kHeadroom, f.data.size());
  if (it->second.node && it->second.punch_socket != 0)
    it->second.node->on_punch_udp(now_, it->second.punch_socket, f.seen_from, v);
  else if (it->second.node)
    it->second.node->on_udp(now_, f.seen_from, v);
  else
    it->second.coord->core().on_udp(now_, it->second.socket, f.seen_from, v);
}

bool SimNet::run_until(const std::function<bool()>& done, Duration limit) {
  Time end = now_ + limit;
  std::uint64_t same_time_events = 0;
  Time last = now_;
  while (!done()) {
    Time next = end;
    if (!queue_.empty()) next = std::min(next, queue_.begin()->first.first);
    for (auto& [name, n] : nodes_) next = std::min(next, n->next_deadline());
    for (auto& c : coordinators_) next = std::min(next, c->core().next_deadline());
    if (next >= end) {
      now_ = end;
      return done();
    }
    now_ = std::max(now_, next);
    if (now_ == last) {
      if (++same_time_events > 200000) throw std::runtime_error("SimNet: livelock at one instant");
    } else {
      same_time_events = 0;
      last = now_;
    }
    if (!queue_.empty() && queue_.begin()->first.first <= now_) {
      auto f = std::move(queue_.begin()->second);
      queue_.erase(queue_.begin());
      deliver(*f);
      continue;
    }
    for (auto& [name, n] : nodes_) {
      if (n->next_deadline() <= now_) n->tick(now_);
    }
    for (auto& c : coordinators_) {
      if (c->core().next_deadline() <= now_) c->core().on_tick(now_);
    }
  }
  return true;
}

void SimNet::run_for(Duration d) {
  run_until([] { return false; }, d);
}

}  // namespace p2p::sim
