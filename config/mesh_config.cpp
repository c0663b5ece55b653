#include "config/mesh_config.hpp"

#include <algorithm>

#include "config/common_schema.hpp"

namespace p2p::config {
namespace {

using namespace std::chrono_literals;
using M = MeshConfig;

// Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
std::string read_ifname(const Value& v) {
  std::string s = read_text(v);
  bool bad_char = std::any_of(s.begin(), s.end(), [](char c) {
    return c == '/' || c == ':' || c == ' ' || static_cast<unsigned char>(c) > 0x7e;
  });
  if (s.size() > 15 || s == "." || s == ".." || bad_char) {
    v.expected("an interface name (1..15 characters, no '/', ':' or spaces)");
  }
  return s;
}

void check_peer(const Value& map, M::Peer& peer) {
  if (peer.name.has_value() == peer.vip.has_value()) {
    map.fail("a peer needs exactly one of 'name' and 'vip'");
  }
  // An entry overrides something: its path (force), its transport, or both.
  if (!peer.force && !map.child("transport")) map.fail_missing("force");
}

std::string peer_identity(const M::Peer& p) {
  return p.name ? "name " + *p.name : "vip " + p.vip->to_string();
}

// A socket bound to an IPv4 address cannot reach IPv6 coordinators.
void check_mesh(const Value& map, M& c) {
  if (!std::holds_alternative<Ipv4>(c.listen.address)) return;
  auto list = map.child("coordinators")->elements();
  for (std::size_t i = 0; i < c.coordinators.size(); ++i) {
    if (!c.coordinators[i].is_v4()) {
      list[i].fail("an IPv6 coordinator needs an IPv6 listen.address (\"::\" listens on both)");
    }
  }
  if (c.discovery.server && !c.discovery.server->is_v4()) {
    map.child("discovery")
        ->child("server")
        ->fail("an IPv6 STUN server needs an IPv6 listen.address (\"::\" listens on both)");
  }
}

// A coordinators[] entry: "IP:PORT", or { endpoint: IP:PORT, tcp: PORT } with the TCP main
// port the node falls back to when UDP gets no answer.
struct CoordinatorEntry {
  Endpoint endpoint;
  std::optional<std::uint16_t> tcp;
};

const Schema<CoordinatorEntry> kCoordinatorEntry{{
    {"endpoint", kRequired, into(&CoordinatorEntry::endpoint, read_remote_endpoint)},
    {"tcp", kOptional, into(&CoordinatorEntry::tcp, integer_in<std::uint16_t>(1, 65535))},
}};

CoordinatorEntry read_coordinator(const Value& v) {
  // A mapping with neither key is more likely a mistyped endpoint ("1.2.3.4:" is one).
  if (v.node().IsMap() && (v.child("endpoint") || v.child("tcp")))
    return section(kCoordinatorEntry)(v);
  return CoordinatorEntry{read_remote_endpoint(v), std::nullopt};
}

std::string coordinator_key(const CoordinatorEntry& e) {
  return e.endpoint.to_string();
}

void read_coordinators(const Value& v, M& out) {
  out.coordinators.clear();
  out.coordinator_tcp.clear();
  for (auto& e : list_of(read_coordinator, 1, coordinator_key)(v)) {
    out.coordinators.push_back(e.endpoint);
    out.coordinator_tcp.push_back(e.tcp);
  }
}

const Schema<M::Node> kNode{{
    {"key", kRequired, into(&M::Node::key, read_private_key_file)},
    {"cert", kRequired, into(&M::Node::cert, read_readable_file)},
}};

const Schema<M::Tun> kTun{{
    {"name", kOptional, into(&M::Tun::name, read_ifname)},
    {"mtu", kOptional, into(&M::Tun::mtu, integer_in<std::uint16_t>(576, 9000))},
}};

const Schema<M::Listen> kListen{{
    {"port", kOptional, into(&M::Listen::port, integer_in<std::uint16_t>(0, 65535))},
    {"address", kOptional, into(&M::Listen::address, read_ip)},
}};

const Schema<M::Peer> kPeer{
    {
        {"name", kOptional, into(&M::Peer::name, read_node_name)},
        {"vip", kOptional, into(&M::Peer::vip, read_ipv4)},
        {"force", kOptional,
         into(&M::Peer::force,
              one_of<ForcedPath>({{"direct", ForcedPath::direct}, {"relay", ForcedPath::relay}}))},
        {"transport", kOptional,
         into(&M::Peer::transport, one_of<PeerTransport>({{"auto", PeerTransport::automatic},
                                                          {"udp", PeerTransport::udp},
                                                          {"tcp", PeerTransport::tcp}}))},
    },
    check_peer};

using B = M::Punch::Birthday;
const Schema<B> kBirthday{{
    {"enabled", kOptional, into(&B::enabled, read_bool)},
    {"sockets", kOptional, into(&B::sockets, integer_in<std::uint32_t>(1, 1024))},
    {"probes_per_second", kOptional,
     into(&B::probes_per_second, integer_in<std::uint32_t>(1, 1000))},
    {"max_probes", kOptional, into(&B::max_probes, integer_in<std::uint32_t>(1, 8192))},
}};

const Schema<M::Punch> kPunch{{
    {"enabled", kOptional, into(&M::Punch::enabled, read_bool)},
    {"timeout", kOptional, into(&M::Punch::timeout, duration_in(1s, 5min))},
    {"port_prediction", kOptional, into(&M::Punch::port_prediction, read_bool)},
    {"birthday", kOptional, into(&M::Punch::birthday, section(kBirthday))},
    {"tcp_assist", kOptional, into(&M::Punch::tcp_assist, integer_in<std::uint16_t>(1, 65535))},
}};

const Schema<M::Relay> kRelay{{
    {"allowed", kOptional, into(&M::Relay::allowed, read_bool)},
}};

const Schema<M::Discovery> kDiscovery{{
    {"server", kOptional, into(&M::Discovery::server, read_remote_endpoint)},
    {"interval", kOptional, into(&M::Discovery::interval, duration_in(1min, 24h))},
}};

std::string same(const std::string& s) {
  return s;
}

const Schema<M::PortMapping> kPortMapping{{
    {"enabled", kOptional, into(&M::PortMapping::enabled, read_bool)},
    {"protocols", kOptional,
     into(&M::PortMapping::protocols,
          list_of(one_of<std::string>({{"pcp", "pcp"}, {"natpmp", "natpmp"}, {"upnp", "upnp"}}), 1,
                  same))},
}};

using L = M::Limits;
const Schema<L> kLimits{{
    {"max_peers", kOptional, into(&L::max_peers, integer_in<std::uint32_t>(1, 1'000'000))},
    {"peer_idle_timeout", kOptional, into(&L::peer_idle_timeout, duration_in(10s, 24h))},
    {"unknown_address_ttl", kOptional, into(&L::unknown_address_ttl, duration_in(1s, 1h))},
    {"unknown_addresses", kOptional,
     into(&L::unknown_addresses, integer_in<std::uint32_t>(0, 1'000'000))},
    {"lookups_per_second", kOptional,
     into(&L::lookups_per_second, integer_in<std::uint32_t>(1, 10'000))},
    {"lookup_burst", kOptional, into(&L::lookup_burst, integer_in<std::uint32_t>(1, 100'000))},
    {"queued_packets", kOptional,
     into(&L::queued_packets, integer_in<std::uint32_t>(1, 1'000'000))},
    {"queued_bytes", kOptional,
     into(&L::queued_bytes, integer_in<std::uint32_t>(65'536, 1u << 30))},
}};

// `auto` (nullopt) or a number of worker threads, 0..16.
std::optional<std::uint32_t> read_workers(const Value& v) {
  if (v.plain_scalar("auto or a number of workers (0..16)") == "auto") return std::nullopt;
  return static_cast<std::uint32_t>(read_integer(v, 0, 16));
}

const Schema<M::Performance> kPerformance{{
    {"tun_offload", kOptional, into(&M::Performance::tun_offload, read_bool)},
    {"udp_gso", kOptional, into(&M::Performance::udp_gso, read_bool)},
    {"udp_gro", kOptional, into(&M::Performance::udp_gro, read_bool)},
    {"workers", kOptional, into(&M::Performance::workers, read_workers)},
}};

const Schema<M> kMesh{
    {
        {"node", kRequired, into(&M::node, section(kNode))},
        {"ca", kRequired, into(&M::ca, read_readable_file)},
        {"coordinators", kRequired, read_coordinators},
        {"tun", kOptional, into(&M::tun, section(kTun))},
        {"listen", kOptional, into(&M::listen, section(kListen))},
        {"control_socket", kOptional, into(&M::control_socket, read_path)},
        {"log", kOptional, into(&M::log, section(log_schema()))},
        {"keepalive", kOptional, into(&M::keepalive, duration_in(1s, 10min))},
        {"revoked", kOptional, into(&M::revoked, read_revoked)},
        {"peers", kOptional, into(&M::peers, list_of(section(kPeer), 0, peer_identity))},
        {"punch", kOptional, into(&M::punch, section(kPunch))},
        {"relay", kOptional, into(&M::relay, section(kRelay))},
        {"discovery", kOptional, into(&M::discovery, section(kDiscovery))},
        {"limits", kOptional, into(&M::limits, section(kLimits))},
        {"metrics", kOptional, into(&M::metrics, section(metrics_schema()))},
        {"revocation_list", kOptional, into(&M::revocation_list, read_path)},
        {"port_mapping", kOptional, into(&M::port_mapping, section(kPortMapping))},
        {"performance", kOptional, into(&M::performance, section(kPerformance))},
    },
    check_mesh};

}  // namespace

MeshConfig parse_mesh_config(std::string_view text, const std::filesystem::path& file_name) {
  return read_config(text, file_name, kMesh);
}

MeshConfig load_mesh_config(const std::filesystem::path& file) {
  return parse_mesh_config(read_config_file(file), file);
}

}  // namespace p2p::config
