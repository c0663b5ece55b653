// PortMapper: asks the gateway for a UDP mapping of the node's port, off the packet loop.
//
// The three protocols are blocking conversations (miniupnpc's SSDP discovery and SOAP calls
// block for seconds), so they run on one worker thread; each request's outcome is posted back
// to the io_context, where the shell hands it to nat::MappingSchedule (daemon/nat/
// port_mapping.hpp), which checks and times everything. Per request, in the configured order:
//   pcp     RFC 6887 MAP over a UDP socket to the default gateway's port 5351 (net/pcp.hpp),
//           retransmitted at 250, 500, 1000 ms, then given up
//   natpmp  RFC 6886 through libnatpmp (public address, then the mapping), at most 2 s
//   upnp    IGD through libminiupnpc: SSDP discovery (1.5 s), AddPortMapping for the same
//           external port, then GetSpecificPortMappingEntry to see whom the gateway mapped it to
// The first protocol whose answer passes nat::check_mapping wins; a renewal asks the protocol
// that granted the mapping first (PCP with the same nonce). All failures are joined into the
// one error. Every wait is bounded, so a request ends within about 10 s.
//
// Threading: request() and remove() are called on the io_context's thread; the worker touches
// only what a request hands it and its own gateway state (the PCP nonce, the UPnP control URL),
// which remove() reads only after the worker has stopped.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/nat/port_mapping.hpp"

namespace p2p::daemon {

class PortMapper {
 public:
  using Done = std::function<void(Expected<nat::Mapping, std::string>)>;

  PortMapper(boost::asio::io_context& io, spdlog::logger& log);
  ~PortMapper();  // stop()
  PortMapper(const PortMapper&) = delete;
  PortMapper& operator=(const PortMapper&) = delete;

  // Starts a request for `port` (one at a time: the caller waits for `done`, which runs on the
  // io_context). `renewing`: the mapping held now, asked first of its own protocol.
  void request(std::uint16_t port, std::vector<nat::MappingProtocol> protocols,
               std::optional<nat::Mapping> renewing, Done done);
  // Stops the worker (a request under way finishes first, bounded) and then, on this thread,
  // deletes `mapping` at the gateway (bounded by the same timeouts). For a clean shutdown.
  void stop(const std::optional<nat::Mapping>& mapping);

 private:
  struct Job {
    std::uint16_t port;
    std::vector<nat::MappingProtocol> protocols;
    std::optional<nat::Mapping> renewing;
    Done done;
  };
  void run();
  Expected<nat::Mapping, std::string> attempt(const Job& job);
  Expected<nat::Mapping, std::string> map_pcp(std::uint16_t port, std::uint32_t lifetime);
  Expected<nat::Mapping, std::string> map_natpmp(std::uint16_t port, std::uint32_t lifetime);
  Expected<nat::Mapping, std::string> map_upnp(std::uint16_t port);
  // Deletes a mapping; an empty Mapping on success.
  Expected<nat::Mapping, std::string> delete_upnp(std::uint16_t external_port);

  boost::asio::io_context& io_;
  spdlog::logger& log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<Job> job_;  // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::thread worker_;
  // The worker's own gateway state.
  std::optional<wire::PcpNonce> pcp_nonce_;           // of the PCP mapping held, reused to renew it
  std::string upnp_control_url_, upnp_service_type_;  // of the UPnP mapping held
  std::optional<nat::Mapping> undelivered_;           // granted while stopping; guarded by mutex_
};

}  // namespace p2p::daemon
