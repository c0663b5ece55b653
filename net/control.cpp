#include "net/control.hpp"

#include <cstdio>
#include <cstdlib>

#include "net/byte_io.hpp"

namespace p2p::wire {
namespace {

void put_nat(ByteWriter& w, const NatSummary& n) {
  w.u8(static_cast<std::uint8_t>(n.type));
  w.u8(static_cast<std::uint8_t>(n.allocation));
  w.u16(static_cast<std::uint16_t>(n.port_step));
}

std::optional<NatSummary> get_nat(ByteReader& r) {
  auto t = r.u8();
  auto a = r.u8();
  auto s = r.u16();
  if (!t || !a || !s || *t > static_cast<std::uint8_t>(kLastNatType) || *a > 3) return std::nullopt;
  return NatSummary{static_cast<NatType>(*t), static_cast<PortAllocation>(*a),
                    static_cast<std::int16_t>(*s)};
}

void put_endpoints(ByteWriter& w, const std::vector<Endpoint>& eps) {
  auto n = std::min(eps.size(), kMaxLocalEndpoints);
  w.u8(static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) w.endpoint(eps[i]);
}

std::optional<std::vector<Endpoint>> get_endpoints(ByteReader& r) {
  auto n = r.u8();
  if (!n || *n > kMaxLocalEndpoints) return std::nullopt;
  std::vector<Endpoint> eps;
  eps.reserve(*n);
  for (int i = 0; i < *n; ++i) {
    auto e = r.endpoint();
    if (!e) return std::nullopt;
    eps.push_back(*e);
  }
  return eps;
}

// The optional tail: nothing, or [1][endpoint].
void put_mapped(ByteWriter& w, const std::optional<Endpoint>& e) {
  if (!e) return;
  w.u8(1);
  w.endpoint(*e);
}

// Absent when the message ends here; otherwise it must be [1][endpoint] and end the message.
bool get_mapped(ByteReader& r, std::optional<Endpoint>& out) {
  if (r.done()) return true;
  auto flag = r.u8();
  if (!flag || *flag != 1) return false;
  auto e = r.endpoint();
  if (!e) return false;
  out = *e;
  return true;
}

struct Encoder {
  ByteWriter& w;
  void operator()(const Register& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kRegister));
    put_endpoints(w, m.local_endpoints);
    put_nat(w, m.nat);
    put_mapped(w, m.mapped);
  }
  void operator()(const RegisterOk& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kRegisterOk));
    w.endpoint(m.observed);
    w.u16(m.interval_seconds);
  }
  void operator()(const Refused& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kRefused));
    w.u8(static_cast<std::uint8_t>(m.code));
    w.str8(m.reason.substr(0, kMaxReasonLength));
  }
  void operator()(const PeerRequest& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPeerRequest));
    w.u32(m.request_id);
    if (auto* v = std::get_if<Ipv4>(&m.target)) {
      w.u8(4);
      w.u32(v->value);
    } else {
      w.u8(1);
      w.str8(std::get<std::string>(m.target).substr(0, kMaxNameLength));
    }
  }
  void operator()(const Introduce& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kIntroduce));
    w.u32(m.request_id);
    w.blob16(m.certificate);
    w.endpoint(m.observed);
    put_endpoints(w, m.local_endpoints);
    put_nat(w, m.nat);
    w.u8(m.initiate ? 1 : 0);
    put_mapped(w, m.mapped);
  }
  void operator()(const PeerUnknown& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPeerUnknown));
    w.u32(m.request_id);
    w.str8(m.reason.substr(0, kMaxReasonLength));
  }
  void operator()(const Goodbye&) { w.u8(static_cast<std::uint8_t>(ControlType::kGoodbye)); }
  void operator()(const PathProbe& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPathProbe));
    w.u64(m.probe_id);
    w.endpoint(m.sent_to);
  }
  void operator()(const PathProbeAck& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPathProbeAck));
    w.u64(m.probe_id);
    w.endpoint(m.observed);
  }
  void operator()(const RevocationHave& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kRevocationHave));
    w.u64(m.sequence);
  }
  void operator()(const RevocationChunk& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kRevocationChunk));
    w.u64(m.sequence);
    w.u8(m.index);
    w.u8(m.count);
    if (m.bytes.size() > kRevocationChunkSize) {
      std::fprintf(stderr, "fatal: revocation chunk of %zu bytes\n", m.bytes.size());
      std::abort();
    }
    w.blob16(m.bytes);
  }
  void operator()(const Ping& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPing));
    w.u32(m.id);
  }
  void operator()(const Pong& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kPong));
    w.u32(m.id);
  }
  void operator()(const TcpPunchRequest& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kTcpPunchRequest));
    w.u32(m.punch_id);
    w.u32(m.to.value);
    w.bytes(m.token);
  }
  void operator()(const TcpPunchOffer& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kTcpPunchOffer));
    w.u32(m.punch_id);
    w.u32(m.from.value);
    w.bytes(m.token);
  }
  void operator()(const TcpPunchGo& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kTcpPunchGo));
    w.u32(m.punch_id);
    w.u32(m.peer.value);
    w.endpoint(m.peer_endpoint);
  }
  void operator()(const TcpPunchFailed& m) {
    w.u8(static_cast<std::uint8_t>(ControlType::kTcpPunchFailed));
    w.u32(m.punch_id);
    w.str8(m.reason.substr(0, kMaxReasonLength));
  }
};

std::optional<ControlMessage> decode_body(ControlType type, ByteReader& r) {
  switch (type) {
    case ControlType::kRegister: {
      auto eps = get_endpoints(r);
      auto nat = eps ? get_nat(r) : std::nullopt;
      std::optional<Endpoint> mapped;
      if (!nat || !get_mapped(r, mapped)) return std::nullopt;
      return Register{std::move(*eps), *nat, mapped};
    }
    case ControlType::kRegisterOk: {
      auto e = r.endpoint();
      auto i = r.u16();
      if (!e || !i) return std::nullopt;
      return RegisterOk{*e, *i};
    }
    case ControlType::kRefused: {
      auto c = r.u8();
      auto s = r.str8(kMaxReasonLength);
      if (!c || !s || *c < 1 || *c > 5) return std::nullopt;
      return Refused{static_cast<RefuseCode>(*c), std::move(*s)};
    }
    case ControlType::kPeerRequest: {
      auto id = r.u32();
      auto kind = r.u8();
      if (!id || !kind) return std::nullopt;
      // Built field by field: GCC 12 -O2 with sanitizers warns (falsely) that the string
      // alternative may be used uninitialised when the variant is built inside a brace list.
      PeerRequest req;
      req.request_id = *id;
      if (*kind == 4) {
        auto v = r.u32();
        if (!v) return std::nullopt;
        req.target = Ipv4{*v};
        return req;
      }
      if (*kind != 1) return std::nullopt;
      auto name = r.str8(kMaxNameLength);
      if (!name || name->empty()) return std::nullopt;
      req.target.emplace<std::string>(std::move(*name));
      return req;
    }
    case ControlType::kIntroduce: {
      auto id = r.u32();
      auto cert = r.blob16(kMaxCertificateSize);
      auto observed = r.endpoint();
      auto eps = r.ok() ? get_endpoints(r) : std::nullopt;
      auto nat = eps ? get_nat(r) : std::nullopt;
      auto initiate = r.u8();
      if (!id || !cert || !observed || !nat || !initiate || *initiate > 1) return std::nullopt;
      std::optional<Endpoint> mapped;
      if (!get_mapped(r, mapped)) return std::nullopt;
      return Introduce{*id,       std::vector<std::uint8_t>(cert->begin(), cert->end()),
                       *observed, std::move(*eps),
                       *nat,      *initiate == 1,
                       mapped};
    }
    case ControlType::kPeerUnknown: {
      auto id = r.u32();
      auto s = r.str8(kMaxReasonLength);
      if (!id || !s) return std::nullopt;
      return PeerUnknown{*id, std::move(*s)};
    }
    case ControlType::kGoodbye: return Goodbye{};
    case ControlType::kPathProbe:
    case ControlType::kPathProbeAck: {
      auto id = r.u64();
      auto e = r.endpoint();
      if (!id || !e) return std::nullopt;
      if (type == ControlType::kPathProbe) return PathProbe{*id, *e};
      return PathProbeAck{*id, *e};
    }
    case ControlType::kRevocationHave: {
      auto seq = r.u64();
      if (!seq) return std::nullopt;
      return RevocationHave{*seq};
    }
    case ControlType::kRevocationChunk: {
      auto seq = r.u64();
      auto index = r.u8();
      auto count = r.u8();
      auto bytes = r.blob16(kRevocationChunkSize);
      if (!seq || !index || !count || !bytes || *count == 0 || *count > kMaxRevocationChunks ||
          *index >= *count || bytes->empty())
        return std::nullopt;
      return RevocationChunk{*seq, *index, *count, {bytes->begin(), bytes->end()}};
    }
    case ControlType::kPing:
    case ControlType::kPong: {
      auto id = r.u32();
      if (!id) return std::nullopt;
      if (type == ControlType::kPing) return Ping{*id};
      return Pong{*id};
    }
    case ControlType::kTcpPunchRequest:
    case ControlType::kTcpPunchOffer: {
      auto id = r.u32();
      auto vip = r.u32();
      auto token = r.array<16>();
      if (!id || !vip || !token) return std::nullopt;
      if (type == ControlType::kTcpPunchRequest) return TcpPunchRequest{*id, Ipv4{*vip}, *token};
      return TcpPunchOffer{*id, Ipv4{*vip}, *token};
    }
    case ControlType::kTcpPunchGo: {
      auto id = r.u32();
      auto vip = r.u32();
      auto e = r.endpoint();
      if (!id || !vip || !e) return std::nullopt;
      return TcpPunchGo{*id, Ipv4{*vip}, *e};
    }
    case ControlType::kTcpPunchFailed: {
      auto id = r.u32();
      auto s = r.str8(kMaxReasonLength);
      if (!id || !s) return std::nullopt;
      return TcpPunchFailed{*id, std::move(*s)};
    }
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(NatType t) {
  switch (t) {
    case NatType::kUnknown: return "unknown";
    case NatType::kOpen: return "open internet";
    case NatType::kFullCone: return "full cone";
    case NatType::kRestrictedCone: return "restricted cone";
    case NatType::kPortRestrictedCone: return "port-restricted cone";
    case NatType::kSymmetric: return "symmetric";
    case NatType::kUdpBlocked: return "UDP blocked";
    case NatType::kFirewalled: return "no NAT, firewalled";
  }
  return "unknown";
}

const char* to_string(PortAllocation a) {
  switch (a) {
    case PortAllocation::kUnknown: return "unknown";
    case PortAllocation::kPreserving: return "port-preserving";
    case PortAllocation::kSequential: return "sequential";
    case PortAllocation::kRandom: return "random";
  }
  return "unknown";
}

void encode_control(std::vector<std::uint8_t>& out, const ControlMessage& m) {
  ByteWriter w(out);
  std::visit(Encoder{w}, m);
  if (!w.ok()) {
    std::fprintf(stderr, "fatal: cannot encode control message %s\n", control_name(m));
    std::abort();
  }
}

PacketView encode_control_packet(std::vector<std::uint8_t>& buffer, const ControlMessage& m) {
  buffer.assign(kHeadroom, 0);
  encode_control(buffer, m);
  const std::size_t len = buffer.size() - kHeadroom;
  buffer.resize(buffer.size() + kTailroom);
  return PacketView(buffer.data(), buffer.size(), kHeadroom, len);
}

std::optional<ControlMessage> decode_control(std::span<const std::uint8_t> plaintext) {
  ByteReader r(plaintext);
  auto t = r.u8();
  if (!t) return std::nullopt;
  auto type = static_cast<ControlType>(*t);
  bool known = (*t >= 0x01 && *t <= 0x07) || *t == 0x10 || *t == 0x11 || (*t >= 0x20 && *t <= 0x27);
  if (!known) return std::nullopt;
  auto m = decode_body(type, r);
  if (!m || !r.done()) return std::nullopt;
  return m;
}

const char* control_name(const ControlMessage& m) {
  static constexpr const char* kNames[] = {
      "Register",        "RegisterOk",    "Refused",   "PeerRequest",     "Introduce",
      "PeerUnknown",     "Goodbye",       "PathProbe", "PathProbeAck",    "RevocationHave",
      "RevocationChunk", "Ping",          "Pong",      "TcpPunchRequest", "TcpPunchOffer",
      "TcpPunchGo",      "TcpPunchFailed"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlMessage>);
  return kNames[m.index()];
}

}  // namespace p2p::wire
