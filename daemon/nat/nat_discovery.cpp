#include "daemon/nat/nat_discovery.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

namespace p2p::nat {

std::string_view to_string(Behaviour b) {
  switch (b) {
    case Behaviour::kUnknown:
      return "unknown";
    case Behaviour::kEndpointIndependent:
      return "endpoint-independent";
    case Behaviour::kAddressDependent:
      return "address-dependent";
    case Behaviour::kAddressAndPortDependent:
      return "address-and-port-dependent";
  }
  return "unknown";
}

PortAllocation analyse_ports(std::vector<std::uint16_t> ports) {
  PortAllocation out;
  out.ports = std::move(ports);
  if (out.ports.size() < 2) return out;
  std::map<int, int> counts;  // delta -> how often
  bool small = true;
  for (std::size_t i = 1; i < out.ports.size(); ++i) {
    const auto d =
        static_cast<std::int16_t>(static_cast<std::uint16_t>(out.ports[i] - out.ports[i - 1]));
    if (d == 0 || std::abs(d) > kMaxSequentialStep) small = false;
    ++counts[d];
  }
  if (!small) {
    out.kind = PortAllocation::Kind::kRandom;
    return out;
  }
  out.kind = PortAllocation::Kind::kSequential;
  int best_count = 0;
  for (const auto& [delta, count] : counts) {
    if (count > best_count || (count == best_count && std::abs(delta) < std::abs(out.step))) {
      best_count = count;
      out.step = delta;
    }
  }
  return out;
}

NatType classify(std::optional<bool> behind_nat, Behaviour mapping, Behaviour filtering) {
  if (!behind_nat) return NatType::kUnknown;
  if (!*behind_nat) {
    if (filtering == Behaviour::kUnknown) return NatType::kUnknown;
    return filtering == Behaviour::kEndpointIndependent ? NatType::kOpen
                                                        : NatType::kFirewalled;
  }
  switch (mapping) {
    case Behaviour::kUnknown:
      return NatType::kUnknown;
    case Behaviour::kAddressDependent:
    case Behaviour::kAddressAndPortDependent:
      return NatType::kSymmetric;
    case Behaviour::kEndpointIndependent:
      break;
  }
  switch (filtering) {
    case Behaviour::kUnknown:
      return NatType::kUnknown;
    case Behaviour::kEndpointIndependent:
      return NatType::kFullCone;
    case Behaviour::kAddressDependent:
      return NatType::kRestrictedCone;
    case Behaviour::kAddressAndPortDependent:
      return NatType::kPortRestrictedCone;
  }
  return NatType::kUnknown;
}

std::string describe(const Report& r) {
  auto yes_no = [](std::optional<bool> b) -> std::string {
    return b ? (*b ? "yes" : "no") : "unknown";
  };
  std::string s;
  if (r.udp_blocked) {
    // All that is known: this server did not answer (it may be down, the address wrong, or
    // UDP to it blocked on the way).
    return "NAT type:        unknown: no answer from " + r.server.to_string() + "\n" +
           "STUN server:     " + r.server.to_string() + "\n" + "UDP:             no answer from " +
           r.server.to_string() + " (server down, wrong address, or UDP to it blocked)\n";
  }
  s += "NAT type:        " + std::string(wire::to_string(r.type)) + "\n";
  s += "STUN server:     " + r.server.to_string() + "\n";
  s += "UDP:             reachable\n";
  s +=
      "public endpoint: " + (r.public_endpoint ? r.public_endpoint->to_string() : "unknown") + "\n";
  s += "behind NAT:      " + yes_no(r.behind_nat) + "\n";
  if (r.port_preserved) s += "port preserved:  " + yes_no(r.port_preserved) + "\n";
  s += "mapping:         " + std::string(to_string(r.mapping)) + "\n";
  s += "filtering:       " + std::string(to_string(r.filtering)) + "\n";
  if (!r.server_rfc5780) s += "note:            server lacks RFC 5780 (no OTHER-ADDRESS)\n";
  const auto& pa = r.port_allocation;
  if (pa.kind != PortAllocation::Kind::kNotMeasured) {
    s += "port allocation: ";
    s += pa.kind == PortAllocation::Kind::kSequential
             ? "sequential (step " + std::to_string(pa.step) + ")"
             : std::string("random");
    s += " from ports";
    for (auto p : pa.ports) s += " " + std::to_string(p);
    s += "\n";
  }
  s += "hairpinning:     " + yes_no(r.hairpinning) + "\n";
  return s;
}

// ---- Discovery -----------------------------------------------------------------------------

Discovery::Discovery(DiscoveryConfig config, Effects& effects, RandomFill random)
    : config_(std::move(config)), effects_(effects), random_(std::move(random)) {
  probes_.reserve(8);  // at most seven probes per run
  report_.server = config_.server;
}

Time Discovery::next_deadline() const {
  Time next = Time::max();
  if (phase_ == Phase::kDone) return next;
  for (const auto& p : probes_) {
    if (p.state != ProbeState::kPending) continue;
    next = std::min({next, p.next_send, p.first_sent + config_.test_timeout});
  }
  return next;
}

void Discovery::send_probe(Time now, ProbeKind kind, const Endpoint& to,
                           std::optional<stun::ChangeRequest> change) {
  Probe p;
  p.kind = kind;
  p.to = to;
  random_(p.id);
  auto request = stun::binding_request(p.id, change);
  if (!config_.software.empty()) request.software = config_.software;
  p.bytes = stun::encode(request);
  p.first_sent = now;
  p.rto = config_.initial_rto;
  p.next_send = now + p.rto;
  effects_.send(p.to, p.bytes);
  probes_.push_back(std::move(p));
}

Discovery::Probe* Discovery::find(ProbeKind kind) {
  for (auto& p : probes_) {
    if (p.kind == kind) return &p;
  }
  return nullptr;
}

Time Discovery::start(Time now) {
  if (phase_ != Phase::kIdle) return next_deadline();
  phase_ = Phase::kTestI;
  send_probe(now, ProbeKind::kTestI, config_.server);
  return next_deadline();
}

Time Discovery::on_tick(Time now) {
  if (phase_ == Phase::kIdle || phase_ == Phase::kDone) return next_deadline();
  for (auto& p : probes_) {
    if (p.state != ProbeState::kPending) continue;
    if (now >= p.first_sent + config_.test_timeout) {
      p.state = ProbeState::kTimedOut;
    } else if (now >= p.next_send) {
      effects_.send(p.to, p.bytes);
      p.rto *= 2;
      p.next_send = now + p.rto;
    }
  }
  advance(now);
  return next_deadline();
}

Time Discovery::on_response(Time now, const Endpoint& from,
                            std::span<const std::uint8_t> datagram) {
  if (phase_ == Phase::kIdle || phase_ == Phase::kDone) return next_deadline();
  auto m = stun::parse(datagram);
  if (!m || m->method != stun::kMethodBinding) return next_deadline();
  for (auto& p : probes_) {
    if (p.state != ProbeState::kPending || p.id != m->transaction_id) continue;
    if (p.kind == ProbeKind::kHairpin) {
      // Our own request, come back through the NAT's public address.
      if (m->cls == stun::MessageClass::kRequest) p.state = ProbeState::kAnswered;
    } else {
      handle(p, from, *m);
    }
    break;
  }
  advance(now);
  return next_deadline();
}

void Discovery::handle(Probe& p, const Endpoint& from, const stun::Message& m) {
  if (m.cls == stun::MessageClass::kError) {
    p.state = ProbeState::kFailed;  // e.g. 420: the server does not do CHANGE-REQUEST
    return;
  }
  if (m.cls != stun::MessageClass::kSuccess) return;
  // RFC 8489 7.3.3: unknown comprehension-required attributes fail the transaction.
  if (!m.unknown_required.empty()) {
    p.state = ProbeState::kFailed;
    return;
  }
  const auto& mapped = m.xor_mapped_address ? m.xor_mapped_address : m.mapped_address;
  if (!mapped) return;  // useless answer; keep waiting for a retransmission's
  p.state = ProbeState::kAnswered;
  p.mapped = *mapped;
  p.from = from;
  if (p.kind == ProbeKind::kTestI && m.other_address) {
    // Usable only if it is a different address AND port of the server's family.
    const auto& o = *m.other_address;
    const auto& s = config_.server;
    if (o.address.index() == s.address.index() && o.address != s.address && o.port != s.port &&
        o.port != 0) {
      other_ = o;
    }
  }
}

void Discovery::advance(Time now) {
  // Each step either waits for a pending probe or moves to the next phase (and sends).
  for (Phase before = Phase::kIdle; before != phase_;) {
    before = phase_;
    switch (phase_) {
      case Phase::kIdle:
      case Phase::kDone:
        return;
      case Phase::kTestI: {
        const auto state = find(ProbeKind::kTestI)->state;
        if (state == ProbeState::kTimedOut) {
          report_.udp_blocked = true;
          finish();
        } else if (state == ProbeState::kFailed) {
          finish();  // UDP reaches the server, but it refused a plain Binding: nothing to learn
        } else if (state == ProbeState::kAnswered) {
          after_test_i(now);
        }
        break;
      }
      case Phase::kFiltering: {
        Probe* ii = find(ProbeKind::kFilterII);
        Probe* iii = find(ProbeKind::kFilterIII);
        if (ii->state == ProbeState::kPending) break;
        if (ii->state == ProbeState::kAnswered) {
          report_.filtering =
              ii->from == *other_ ? Behaviour::kEndpointIndependent : Behaviour::kUnknown;
        } else if (ii->state == ProbeState::kFailed) {
          report_.filtering = Behaviour::kUnknown;
        } else if (iii->state == ProbeState::kPending) {
          break;
        } else if (iii->state == ProbeState::kAnswered) {
          const Endpoint expected{config_.server.address, other_->port};
          report_.filtering =
              iii->from == expected ? Behaviour::kAddressDependent : Behaviour::kUnknown;
        } else if (iii->state == ProbeState::kTimedOut) {
          report_.filtering = Behaviour::kAddressAndPortDependent;
        }
        if (iii->state == ProbeState::kPending) iii->state = ProbeState::kFailed;  // not needed
        after_filtering(now);
        break;
      }
      case Phase::kMapping: {
        const Probe* ii = find(ProbeKind::kMapII);
        const Probe* iii = find(ProbeKind::kMapIII);
        const Probe* iv = find(ProbeKind::kMapIV);
        const Endpoint m1 = *report_.public_endpoint;
        if (ii->state == ProbeState::kPending) break;
        if (ii->state != ProbeState::kAnswered) {
          after_mapping(now);  // lost or refused: mapping stays unknown
        } else if (ii->mapped == m1) {
          report_.mapping = Behaviour::kEndpointIndependent;
          after_mapping(now);
        } else if (!iii) {
          send_probe(now, ProbeKind::kMapIII, *other_);
        } else if (iii->state == ProbeState::kPending) {
          break;
        } else if (iii->state != ProbeState::kAnswered) {
          after_mapping(now);
        } else if (iii->mapped == ii->mapped) {
          report_.mapping = Behaviour::kAddressDependent;
          report_.port_allocation.ports = {m1.port, ii->mapped.port};
          after_mapping(now);
        } else {
          report_.mapping = Behaviour::kAddressAndPortDependent;
          report_.port_allocation.ports = {m1.port, ii->mapped.port, iii->mapped.port};
          if (!config_.measure_port_allocation) {
            after_mapping(now);
          } else if (!iv) {
            send_probe(now, ProbeKind::kMapIV, Endpoint{config_.server.address, other_->port});
          } else if (iv->state != ProbeState::kPending) {
            if (iv->state == ProbeState::kAnswered) {
              report_.port_allocation.ports.push_back(iv->mapped.port);
            }
            after_mapping(now);
          }
        }
        break;
      }
      case Phase::kHairpin: {
        const auto state = find(ProbeKind::kHairpin)->state;
        if (state == ProbeState::kPending) break;
        report_.hairpinning = state == ProbeState::kAnswered;
        finish();
        break;
      }
    }
    // A probe sent in this step (phase unchanged) still needs its answer: stop here.
  }
}

void Discovery::after_test_i(Time now) {
  const Probe* p = find(ProbeKind::kTestI);
  report_.public_endpoint = p->mapped;
  const auto& locals = config_.local_endpoints;
  report_.behind_nat = std::find(locals.begin(), locals.end(), p->mapped) == locals.end();
  if (*report_.behind_nat && !locals.empty()) {
    report_.port_preserved = p->mapped.port == locals.front().port;
  }
  if (!other_) {
    // RFC 5780 needs OTHER-ADDRESS: report what is known, guess nothing else.
    if (!*report_.behind_nat) report_.mapping = Behaviour::kEndpointIndependent;
    after_mapping(now);
    return;
  }
  report_.server_rfc5780 = true;
  phase_ = Phase::kFiltering;
  send_probe(now, ProbeKind::kFilterII, config_.server, stun::ChangeRequest{true, true});
  send_probe(now, ProbeKind::kFilterIII, config_.server, stun::ChangeRequest{false, true});
}

void Discovery::after_filtering(Time now) {
  if (!*report_.behind_nat) {
    report_.mapping = Behaviour::kEndpointIndependent;  // no NAT: the mapping is the identity
    finish();
    return;
  }
  phase_ = Phase::kMapping;
  send_probe(now, ProbeKind::kMapII, Endpoint{other_->address, config_.server.port});
}

void Discovery::after_mapping(Time now) {
  if (report_.mapping == Behaviour::kAddressDependent ||
      report_.mapping == Behaviour::kAddressAndPortDependent) {
    report_.port_allocation = analyse_ports(std::move(report_.port_allocation.ports));
  }
  if (config_.test_hairpinning && *report_.behind_nat) {
    phase_ = Phase::kHairpin;
    send_probe(now, ProbeKind::kHairpin, *report_.public_endpoint);
    return;
  }
  finish();
}

void Discovery::finish() {
  phase_ = Phase::kDone;
  report_.type = report_.udp_blocked
                     ? NatType::kUdpBlocked
                     : classify(report_.behind_nat, report_.mapping, report_.filtering);
}

wire::NatSummary summarize(const Report& r) {
  wire::NatSummary s;
  s.type = r.type;
  if (r.port_allocation.kind == PortAllocation::Kind::kSequential) {
    s.allocation = wire::PortAllocation::kSequential;
    s.port_step = static_cast<std::int16_t>(r.port_allocation.step);
  } else if (r.port_allocation.kind == PortAllocation::Kind::kRandom) {
    s.allocation = wire::PortAllocation::kRandom;
  } else if (r.port_preserved.value_or(false)) {
    s.allocation = wire::PortAllocation::kPreserving;
  }
  return s;
}

}  // namespace p2p::nat
