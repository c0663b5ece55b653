// MetricsServer: the Prometheus scrape endpoint of a daemon, a deliberately small HTTP/1.1
// responder on a TCP socket (off unless `metrics: { listen: IP:PORT }` is configured).
//
// Per connection: read at most max_request bytes until the end of the request headers
// (http::parse_request), answer once (GET /metrics -> 200 with render()'s text; anything else
// 400/404/405/431), then close. A connection that has not been answered and closed within
// `timeout` is dropped. At most max_clients at once: one more is closed at once, unanswered.
// Nothing a client sends is ever echoed, and no request costs more than its own connection.
//
// `render` runs on the io_context's thread, once per GET /metrics. Threading: one thread runs
// the io_context. Closing (or destroying) the server drops every client.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "net/asio/io_error.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"

namespace p2p::io {

struct MetricsLimits {
  std::size_t max_request = 4096;  // bytes of request line and headers
  std::size_t max_clients = 4;
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Listens on `listen` (port 0: any free port, see endpoint()). The message names the
  // address and the failed operation.
  static Expected<MetricsServer, IoError> open(boost::asio::io_context& io, const Endpoint& listen,
                                               Render render, MetricsLimits limits = {});
  MetricsServer(MetricsServer&&) noexcept;
  MetricsServer& operator=(MetricsServer&&) noexcept;
  ~MetricsServer();

  const Endpoint& endpoint() const;
  std::size_t clients() const;
  // Stops listening and drops every client. Idempotent.
  void close();

  struct State;

 private:
  explicit MetricsServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace p2p::io
