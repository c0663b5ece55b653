#include "daemon/shell/port_mapper.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#define ENABLE_STRNATPMPERR 1  // libnatpmp exports it; its header declares it only then
#include <natpmp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <cstring>

namespace p2p::daemon {
namespace {

using namespace std::chrono_literals;
using nat::MappingProtocol;

constexpr int kPcpRetransmitMs[] = {250, 500, 1000};
constexpr auto kNatPmpBudget = 2s;
constexpr int kUpnpDiscoverMs = 1500;

std::optional<in_addr_t> default_gateway() {
  natpmp_t n;
  if (initnatpmp(&n, 0, 0) < 0) return std::nullopt;
  in_addr_t gw = n.gateway;
  closenatpmp(&n);
  return gw;
}

Ipv4 to_ipv4(in_addr_t network_order) {
  return Ipv4{ntohl(network_order)};
}

// A UDP socket connected to the gateway's PCP port, closed when it leaves scope.
struct PcpSocket {
  int fd = -1;
  ~PcpSocket() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

PortMapper::PortMapper(boost::asio::io_context& io, spdlog::logger& log)
    : io_(io), log_(log), worker_([this] { run(); }) {}

PortMapper::~PortMapper() {
  stop(std::nullopt);
}

void PortMapper::request(std::uint16_t port, std::vector<MappingProtocol> protocols,
                         std::optional<nat::Mapping> renewing, Done done) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  job_ = Job{port, std::move(protocols), renewing, std::move(done)};
  wake_.notify_one();
}

void PortMapper::stop(const std::optional<nat::Mapping>& mapping) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    job_.reset();
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
  // The worker is gone: its gateway state is ours now. A mapping it got while we were
  // stopping was never handed over, but is deleted all the same.
  const std::optional<nat::Mapping> held = mapping ? mapping : undelivered_;
  undelivered_.reset();
  if (!held) return;
  Expected<nat::Mapping, std::string> done = nat::Mapping{};
  switch (held->protocol) {
    case MappingProtocol::kPcp: done = map_pcp(held->internal_port, 0); break;
    case MappingProtocol::kNatPmp: done = map_natpmp(held->internal_port, 0); break;
    case MappingProtocol::kUpnp: done = delete_upnp(held->external.port); break;
  }
  if (done) {
    log_.info("port mapping {} {} deleted", nat::to_string(held->protocol),
              held->external.to_string());
  } else {
    log_.warn("port mapping {} {} not deleted ({}); the router drops it when its lease ends",
              nat::to_string(held->protocol), held->external.to_string(), done.error());
  }
}

void PortMapper::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || job_; });
      if (stopping_) return;
      job = std::move(*job_);
      job_.reset();
    }
    auto result = attempt(job);
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (result) undelivered_ = *result;
      return;
    }
    boost::asio::post(io_, [done = std::move(job.done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
}

Expected<nat::Mapping, std::string> PortMapper::attempt(const Job& job) {
  std::vector<MappingProtocol> order = job.protocols;
  if (job.renewing) {
    std::erase(order, job.renewing->protocol);
    order.insert(order.begin(), job.renewing->protocol);
  } else {
    pcp_nonce_.reset();
  }
  std::string errors;
  for (auto p : order) {
    Expected<nat::Mapping, std::string> r = fail(std::string());
    switch (p) {
      case MappingProtocol::kPcp: r = map_pcp(job.port, nat::kRequestedLifetime); break;
      case MappingProtocol::kNatPmp: r = map_natpmp(job.port, nat::kRequestedLifetime); break;
      case MappingProtocol::kUpnp: r = map_upnp(job.port); break;
    }
    if (r) return r;
    log_.debug("port mapping: {}", r.error());
    if (!errors.empty()) errors += "; ";
    errors += r.error();
  }
  return fail(errors.empty() ? std::string("no protocol enabled") : errors);
}

Expected<nat::Mapping, std::string> PortMapper::map_pcp(std::uint16_t port,
                                                        std::uint32_t lifetime) {
  auto gw = default_gateway();
  if (!gw) return fail(std::string("pcp: no default gateway"));
  PcpSocket s;
  s.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return fail(fmt::format("pcp: socket: {}", std::strerror(errno)));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(wire::kPcpServerPort);
  to.sin_addr.s_addr = *gw;
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    return fail(fmt::format("pcp: connect to gateway: {}", std::strerror(errno)));
  }
  sockaddr_in self{};
  socklen_t len = sizeof self;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&self), &len) < 0) {
    return fail(fmt::format("pcp: getsockname: {}", std::strerror(errno)));
  }
  if (!pcp_nonce_) {
    pcp_nonce_.emplace();
    randombytes_buf(pcp_nonce_->data(), pcp_nonce_->size());
  }
  wire::PcpMapRequest req{to_ipv4(self.sin_addr.s_addr), *pcp_nonce_, port, port, lifetime};
  const auto datagram = wire::encode_pcp_map_request(req);
  std::string last = fmt::format("pcp: no answer from gateway {}", to_string(to_ipv4(*gw)));
  for (int wait_ms : kPcpRetransmitMs) {
    if (::send(s.fd, datagram.data(), datagram.size(), 0) < 0) {
      return fail(fmt::format("pcp: send: {}", std::strerror(errno)));
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{s.fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      std::array<std::uint8_t, wire::kPcpMaxMessage + 4> buf;
      ssize_t n = ::recv(s.fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        // ICMP port unreachable: nothing speaks PCP there.
        if (errno == ECONNREFUSED) return fail(std::string("pcp: gateway does not speak PCP"));
        continue;
      }
      auto answer =
          nat::pcp_answer(std::span(buf.data(), static_cast<std::size_t>(n)), *pcp_nonce_);
      if (!answer) {
        last = answer.error();
        // A NAT-PMP-only gateway answers a version it does not know at once; no need to wait.
        if (n >= 2 && buf[0] == 0) return fail(std::string("pcp: gateway speaks NAT-PMP only"));
        continue;
      }
      if (lifetime == 0) return nat::Mapping{};  // deleted
      return nat::check_mapping(Clock::now(), *answer, port, std::nullopt);
    }
  }
  return fail(last);
}

Expected<nat::Mapping, std::string> PortMapper::map_natpmp(std::uint16_t port,
                                                           std::uint32_t lifetime) {
  natpmp_t n;
  if (initnatpmp(&n, 0, 0) < 0) return fail(std::string("natpmp: no default gateway"));
  const auto deadline = std::chrono::steady_clock::now() + kNatPmpBudget;
  auto await = [&](natpmpresp_t& resp) -> int {
    for (;;) {
      timeval tv{};
      getnatpmprequesttimeout(&n, &tv);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return NATPMP_TRYAGAIN;
      long wait = std::min<long>(left.count(), tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1);
      pollfd pfd{n.s, POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(std::max<long>(wait, 1)));
      int r = readnatpmpresponseorretry(&n, &resp);
      if (r != NATPMP_TRYAGAIN) return r;
    }
  };
  struct Closer {
    natpmp_t* n;
    ~Closer() { closenatpmp(n); }
  } closer{&n};
  natpmpresp_t resp{};
  Endpoint external;
  if (lifetime != 0) {
    if (sendpublicaddressrequest(&n) < 0) return fail(std::string("natpmp: send failed"));
    int r = await(resp);
    if (r == NATPMP_TRYAGAIN) return fail(std::string("natpmp: no answer from gateway"));
    if (r < 0) return fail(fmt::format("natpmp: {}", strnatpmperr(r)));
    if (resp.type != NATPMP_RESPTYPE_PUBLICADDRESS) {
      return fail(std::string("natpmp: wrong answer to the public address request"));
    }
    external.address = Ipv4{ntohl(resp.pnu.publicaddress.addr.s_addr)};
  }
  if (sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, port, lifetime ? port : 0, lifetime) < 0) {
    return fail(std::string("natpmp: send failed"));
  }
  int r = await(resp);
  if (r == NATPMP_TRYAGAIN) return fail(std::string("natpmp: no answer to the mapping request"));
  if (r < 0) return fail(fmt::format("natpmp: {}", strnatpmperr(r)));
  if (resp.type != NATPMP_RESPTYPE_UDPPORTMAPPING) {
    return fail(std::string("natpmp: wrong answer to the mapping request"));
  }
  if (lifetime == 0) return nat::Mapping{};
  external.port = resp.pnu.newportmapping.mappedpublicport;
  nat::GatewayAnswer a{MappingProtocol::kNatPmp, resp.pnu.newportmapping.privateport, std::nullopt,
                       external, resp.pnu.newportmapping.lifetime};
  return nat::check_mapping(Clock::now(), a, port, std::nullopt);
}

Expected<nat::Mapping, std::string> PortMapper::map_upnp(std::uint16_t port) {
  int error = 0;
  UPNPDev* devices = upnpDiscover(kUpnpDiscoverMs, nullptr, nullptr, 0, 0, 2, &error);
  if (!devices) return fail(std::string("upnp: no IGD answered discovery"));
  UPNPUrls urls{};
  IGDdatas data{};
  char lan[64] = {};
  int igd = UPNP_GetValidIGD(devices, &urls, &data, lan, sizeof lan);
  freeUPNPDevlist(devices);
  struct Freer {
    UPNPUrls* u;
    int igd;
    ~Freer() {
      if (igd) FreeUPNPUrls(u);
    }
  } freer{&urls, igd};
  if (igd != 1) return fail(fmt::format("upnp: no connected IGD (GetValidIGD {})", igd));
  auto lan_address = parse_ip(lan);
  char ext[40] = {};
  if (UPNP_GetExternalIPAddress(urls.controlURL, data.first.servicetype, ext) != 0) {
    return fail(std::string("upnp: GetExternalIPAddress failed"));
  }
  auto ext_address = parse_ip(ext);
  if (!ext_address) return fail(fmt::format("upnp: gateway's external address is not an address"));
  const std::string p = std::to_string(port);
  const std::string lease = std::to_string(nat::kRequestedLifetime);
  int r = UPNP_AddPortMapping(urls.controlURL, data.first.servicetype, p.c_str(), p.c_str(), lan,
                              "p2pvpn", "UDP", nullptr, lease.c_str());
  if (r != 0) return fail(fmt::format("upnp: AddPortMapping failed: {}", strupnperror(r)));
  char client[40] = {}, internal_port[6] = {}, desc[80] = {}, enabled[4] = {}, duration[16] = {};
  r = UPNP_GetSpecificPortMappingEntry(urls.controlURL, data.first.servicetype, p.c_str(), "UDP",
                                       nullptr, client, internal_port, desc, enabled, duration);
  if (r != 0) {
    return fail(fmt::format("upnp: GetSpecificPortMappingEntry failed: {}", strupnperror(r)));
  }
  upnp_control_url_ = urls.controlURL;
  upnp_service_type_ = data.first.servicetype;
  nat::GatewayAnswer a{MappingProtocol::kUpnp,
                       static_cast<std::uint16_t>(std::strtoul(internal_port, nullptr, 10)),
                       parse_ip(client), Endpoint{*ext_address, port},
                       static_cast<std::uint32_t>(std::strtoul(duration, nullptr, 10))};
  if (!a.internal_client) a.internal_client = Ipv4{};  // unreadable: refused as another host
  auto m = nat::check_mapping(Clock::now(), a, port, lan_address);
  if (!m) (void)delete_upnp(port);
  return m;
}

Expected<nat::Mapping, std::string> PortMapper::delete_upnp(std::uint16_t external_port) {
  if (upnp_control_url_.empty()) return fail(std::string("upnp: no gateway known"));
  const std::string p = std::to_string(external_port);
  int r = UPNP_DeletePortMapping(upnp_control_url_.c_str(), upnp_service_type_.c_str(), p.c_str(),
                                 "UDP", nullptr);
  if (r != 0) return fail(fmt::format("upnp: DeletePortMapping failed: {}", strupnperror(r)));
  return nat::Mapping{};
}

}  // namespace p2p::daemon
