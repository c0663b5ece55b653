// ControlServer: the local control socket of a daemon (AF_UNIX stream, mode 0600).
//
// Protocol: each request is one line of JSON (an object), each answer one line of JSON, in
// order; a client may send several requests on one connection. The handler gets the parsed
// object and a Respond callback, which it calls exactly once, now or later (ping and netcheck
// answer when the core is done); the next line of that client is read only after the answer
// was written. The server itself answers {"ok":false,"error":...} to a line that is not a
// JSON object, and to a line longer than max_line (then drops the client). At most
// max_clients at once: one more is told "too many clients" and closed.
//
// A misbehaving client (garbage, endless line, disconnect while its answer is pending) only
// ever costs its own connection. Respond callbacks stay safe to call after the client went
// away or the server was destroyed: they do nothing then.
//
// The socket file: its parent directory is created (0755) if missing; a stale socket file
// (nobody accepts on it) is replaced; a live one, or a path that is not a socket, is an error.
// The file is removed when the server is closed or destroyed.
#pragma once

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "net/asio/io_error.hpp"
#include "net/expected.hpp"

namespace p2p::io {

struct ControlLimits {
  std::size_t max_line = 4096;  // bytes of one request, newline included
  std::size_t max_clients = 16;
};

class ControlServer {
 public:
  using Respond = std::function<void(const nlohmann::json& answer)>;
  using Handler = std::function<void(const nlohmann::json& request, Respond respond)>;

  static Expected<ControlServer, IoError> open(boost::asio::io_context& io,
                                               const std::filesystem::path& path, Handler handler,
                                               ControlLimits limits = {});
  // open() with `target->on_control(request, respond)` as the handler, as both shells do.
  // `target` must outlive the server.
  template <class Target>
  static Expected<ControlServer, IoError> open_for(boost::asio::io_context& io,
                                                   const std::filesystem::path& path,
                                                   Target* target) {
    return open(io, path, [target](const nlohmann::json& request, Respond respond) {
      target->on_control(request, std::move(respond));
    });
  }
  ControlServer(ControlServer&&) noexcept;
  ControlServer& operator=(ControlServer&&) noexcept;
  ~ControlServer();

  // Stops accepting, drops every client and removes the socket file. Idempotent.
  void close();
  std::size_t clients() const;
  const std::filesystem::path& path() const;

  struct State;  // shared with the connections (public for them, opaque to users)

 private:
  explicit ControlServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// An answer line as written: compact, invalid UTF-8 replaced, newline-terminated.
std::string to_line(const nlohmann::json& answer);

}  // namespace p2p::io
