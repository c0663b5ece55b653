#include "tests/support/sim_tcp.hpp"

#include <algorithm>

namespace p2p::sim {

SimTcp::HostId SimTcp::add_public_host(Ipv4 address) {
  Host h;
  h.address = address;
  hosts_.push_back(std::move(h));
  return static_cast<HostId>(hosts_.size() - 1);
}

int SimTcp::add_nat(Ipv4 public_address, TcpNatModel model) {
  Nat n;
  n.public_address = public_address;
  n.model = model;
  nats_.push_back(std::move(n));
  return static_cast<int>(nats_.size() - 1);
}

SimTcp::HostId SimTcp::add_host_behind(int nat, Ipv4 private_address) {
  Host h;
  h.address = private_address;
  h.nat = nat;
  hosts_.push_back(std::move(h));
  return static_cast<HostId>(hosts_.size() - 1);
}

Ipv4 SimTcp::address(HostId h) const {
  return hosts_[h].address;
}

void SimTcp::at(Time t, std::function<void()> fn) {
  queue_.emplace(t, std::move(fn));
}

bool SimTcp::run_until(Time until, const std::function<bool()>& done) {
  while (!done()) {
    if (queue_.empty() || queue_.begin()->first > until) return false;
    auto node = queue_.extract(queue_.begin());
    now_ = std::max(now_, node.key());
    node.mapped()();
  }
  return true;
}

void SimTcp::listen(HostId h, std::uint16_t port) {
  hosts_[h].listening[port] = true;
}

void SimTcp::connect(HostId h, std::uint16_t port, const Endpoint& to) {
  auto key = std::make_pair(port, to);
  hosts_[h].conns[key] = Conn{ConnState::kSynSent, false};
  send_from_host(h, Segment{Endpoint{hosts_[h].address, port}, to, kSyn});
  at(now_ + std::chrono::seconds(1), [this, h, port, to] { retransmit(h, port, to, 1); });
}

void SimTcp::retransmit(HostId h, std::uint16_t port, Endpoint remote, int nth) {
  auto it = hosts_[h].conns.find({port, remote});
  if (it == hosts_[h].conns.end() || it->second.state != ConnState::kSynSent) return;
  if (it->second.syns_sent != nth) return;  // a newer connect owns this key now
  ++it->second.syns_sent;
  send_from_host(h, Segment{Endpoint{hosts_[h].address, port}, remote, kSyn});
  if (nth < 2)
    at(now_ + std::chrono::seconds(2),
       [this, h, port, remote, nth] { retransmit(h, port, remote, nth + 1); });
}

void SimTcp::close_port(HostId h, std::uint16_t port) {
  auto& host = hosts_[h];
  host.listening.erase(port);
  std::erase_if(host.conns, [port](const auto& kv) { return kv.first.first == port; });
}

void SimTcp::close(HostId h, std::uint16_t port, const Endpoint& remote) {
  hosts_[h].conns.erase({port, remote});
}

std::optional<SimTcp::HostId> SimTcp::host_at(Ipv4 a) const {
  for (std::size_t i = 0; i < hosts_.size(); ++i)
    if (hosts_[i].nat < 0 && hosts_[i].address == a) return static_cast<HostId>(i);
  return std::nullopt;
}

void SimTcp::send_from_host(HostId h, const Segment& s) {
  int nat = hosts_[h].nat;
  if (nat < 0)
    at(now_ + wan, [this, s] { deliver_public(s); });
  else
    at(now_ + lan, [this, nat, s] { at_nat_outbound(nat, s); });
}

void SimTcp::at_nat_outbound(int id, Segment s) {
  Nat& nat = nats_[id];
  // The mapping this segment uses: one per inside endpoint (independent), per destination
  // address (address-dependent) or per destination endpoint (symmetric).
  std::uint16_t port = 0;
  for (auto& [p, m] : nat.by_public_port) {
    if (m.inside != s.from) continue;
    bool same =
        nat.model.mapping == Behaviour::kIndependent ||
        std::any_of(m.allowed.begin(), m.allowed.end(), [&](const Endpoint& a) {
          return nat.model.mapping == Behaviour::kAddress ? a.address == s.to.address : a == s.to;
        });
    if (same) {
      port = p;
      break;
    }
  }
  if (port == 0) {
    port = nat.by_public_port.contains(s.from.port) ? 0 : s.from.port;  // preserving if free
    while (port == 0 || nat.by_public_port.contains(port)) port = nat.next_port++;
    nat.by_public_port[port] = Mapping{s.from, {}};
  }
  auto& allowed = nat.by_public_port[port].allowed;
  if (std::find(allowed.begin(), allowed.end(), s.to) == allowed.end()) allowed.push_back(s.to);
  s.from = Endpoint{nat.public_address, port};
  at(now_ + wan, [this, s] { deliver_public(s); });
}

void SimTcp::deliver_public(const Segment& s) {
  auto to_v4 = std::get_if<Ipv4>(&s.to.address);
  if (!to_v4) return;
  if (auto h = host_at(*to_v4)) return at_host(*h, s);
  for (std::size_t id = 0; id < nats_.size(); ++id) {
    Nat& nat = nats_[id];
    if (nat.public_address != *to_v4) continue;
    auto m = nat.by_public_port.find(s.to.port);
    bool pass =
        m != nat.by_public_port.end() &&
        std::any_of(m->second.allowed.begin(), m->second.allowed.end(), [&](const Endpoint& a) {
          switch (nat.model.filtering) {
            case Behaviour::kIndependent: return true;
            case Behaviour::kAddress: return a.address == s.from.address;
            case Behaviour::kAddressAndPort: return a == s.from;
          }
          return false;
        });
    if (!pass) {
      trace.push_back("nat " + nat.public_address.to_string() + " blocks " +
                      (s.flags & kSyn ? "SYN" : "segment") + " from " + s.from.to_string());
      if ((s.flags & kSyn) && !(s.flags & kAck) && nat.model.unsolicited == Unsolicited::kRst) {
        ++rsts_from_nats;
        Segment rst{s.to, s.from, kRst};
        at(now_ + wan, [this, rst] { deliver_public(rst); });
      } else if (s.flags & kSyn) {
        ++syns_dropped;
      }
      return;
    }
    Segment in = s;
    in.to = m->second.inside;
    for (std::size_t h = 0; h < hosts_.size(); ++h)
      if (hosts_[h].nat == int(id) && hosts_[h].address == std::get<Ipv4>(in.to.address))
        at(now_ + lan, [this, h, in] { at_host(static_cast<HostId>(h), in); });
    return;
  }
}

void SimTcp::at_host(HostId h, const Segment& s) {
  Host& host = hosts_[h];
  const std::uint16_t port = s.to.port;
  auto key = std::make_pair(port, s.from);
  auto it = host.conns.find(key);
  auto reply = [&](std::uint8_t flags) { send_from_host(h, Segment{s.to, s.from, flags}); };
  if (s.flags & kRst) {
    if (it != host.conns.end() && it->second.state != ConnState::kEstablished) {
      bool mine = !it->second.inbound;
      host.conns.erase(it);
      if (mine && events.failed) events.failed(h, port, s.from);
    }
    return;
  }
  if ((s.flags & kSyn) && !(s.flags & kAck)) {
    if (it != host.conns.end()) {
      if (it->second.state == ConnState::kSynSent) {  // simultaneous open
        it->second.state = ConnState::kSynReceived;
        reply(kSyn | kAck);
      }
      return;
    }
    if (host.listening.contains(port)) {
      host.conns[key] = Conn{ConnState::kSynReceived, true};
      reply(kSyn | kAck);
      return;
    }
    reply(kRst | kAck);
    return;
  }
  if ((s.flags & kSyn) && (s.flags & kAck)) {
    if (it == host.conns.end()) return reply(kRst);
    if (it->second.state == ConnState::kSynSent || it->second.state == ConnState::kSynReceived) {
      bool was_open = it->second.state == ConnState::kSynReceived && it->second.inbound;
      if (was_open) return;
      it->second.state = ConnState::kEstablished;
      reply(kAck);
      if (events.established) events.established(h, port, s.from, false);
    }
    return;
  }
  if (s.flags & kAck) {
    if (it != host.conns.end() && it->second.state == ConnState::kSynReceived) {
      it->second.state = ConnState::kEstablished;
      if (events.established) events.established(h, port, s.from, it->second.inbound);
    }
  }
}

}  // namespace p2p::sim
