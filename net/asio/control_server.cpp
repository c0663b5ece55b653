#include "net/asio/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <istream>
#include <set>
#include <string>

#include "net/asio/accept_loop.hpp"

namespace p2p::io {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using nlohmann::json;
namespace fs = std::filesystem;

std::string to_line(const json& answer) {
  return answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

namespace {

json error_answer(const std::string& message) {
  return json{{"ok", false}, {"error", message}};
}

// True when something accepts connections on the socket file at `path`.
bool socket_is_live(const fs::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return live;
}

}  // namespace

class Connection;

struct ControlServer::State {
  State(asio::io_context& io, fs::path p, Handler h, ControlLimits l)
      : path(std::move(p)), handler(std::move(h)), limits(l), acceptor(io) {}

  void on_accepted(stream_protocol::socket socket);
  void close();

  std::weak_ptr<State> weak_self;
  fs::path path;
  Handler handler;
  ControlLimits limits;
  stream_protocol::acceptor acceptor;
  std::set<std::shared_ptr<Connection>> connections;
  dev_t dev = 0;  // identity of the socket file we created, so close() removes only ours
  ino_t ino = 0;
  bool closed = false;
};

// One client. Keeps itself alive through the handlers of its pending operations; the server
// holds it too while it counts towards max_clients.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream_protocol::socket socket, std::weak_ptr<ControlServer::State> server,
             std::size_t max_line)
      : socket_(std::move(socket)), server_(std::move(server)), in_(max_line) {}

  void read() {
    asio::async_read_until(socket_, in_, '\n',
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t) { self->on_read(ec); });
  }

  // Writes one answer line; then reads the next request, or closes.
  void write(std::string line, bool close_after) {
    out_ = std::move(line);
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this(), close_after](const boost::system::error_code& ec, std::size_t) {
          if (ec || close_after) {
            self->close();
          } else {
            self->read();
          }
        });
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (auto s = server_.lock()) s->connections.erase(shared_from_this());
  }

 private:
  void on_read(const boost::system::error_code& ec) {
    if (ec == asio::error::not_found) {  // no newline within max_line bytes
      write(to_line(error_answer("request line too long")), true);
      return;
    }
    if (ec) {  // end of file, reset, or the server closed us
      close();
      return;
    }
    std::string line;
    std::istream is(&in_);
    std::getline(is, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      read();
      return;
    }
    json request = json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      write(to_line(error_answer("request must be one JSON object per line")), false);
      return;
    }
    auto server = server_.lock();
    if (!server) return;
    // One answer per request, written by whichever comes first: the handler or an exception.
    auto answered = std::make_shared<bool>(false);
    std::weak_ptr<Connection> weak = weak_from_this();
    ControlServer::Respond respond = [weak, answered](const json& answer) {
      if (*answered) return;
      *answered = true;
      if (auto self = weak.lock()) self->write(to_line(answer), false);
    };
    try {
      server->handler(request, respond);
    } catch (const std::exception& e) {
      respond(error_answer(std::string("internal error: ") + e.what()));
    }
  }

  stream_protocol::socket socket_;
  std::weak_ptr<ControlServer::State> server_;
  asio::streambuf in_;
  std::string out_;
};

void ControlServer::State::on_accepted(stream_protocol::socket socket) {
  auto c = std::make_shared<Connection>(std::move(socket), weak_self, limits.max_line);
  if (connections.size() >= limits.max_clients) {
    c->write(to_line(error_answer("too many clients")), true);
  } else {
    connections.insert(c);
    c->read();
  }
}

void ControlServer::State::close() {
  if (!close_server(*this)) return;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
    ::unlink(path.c_str());
  }
}

Expected<ControlServer, IoError> ControlServer::open(asio::io_context& io, const fs::path& path,
                                                     Handler handler, ControlLimits limits) {
  const std::string where = "control socket " + path.string();
  if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return fail(IoError{ENAMETOOLONG, where + ": path too long for a unix socket"});
  }
  std::error_code fec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), fec);
    if (fec) return fail(IoError{fec.value(), where + ": create directory: " + fec.message()});
  }
  auto st = fs::symlink_status(path, fec);
  if (fs::exists(st)) {
    if (!fs::is_socket(st)) return fail(IoError{EEXIST, where + ": exists and is not a socket"});
    if (socket_is_live(path)) {
      return fail(IoError{EADDRINUSE, where + ": in use by another running process"});
    }
    fs::remove(path, fec);  // stale: left behind by a process that died
  }

  auto state = std::make_shared<State>(io, path, std::move(handler), limits);
  state->weak_self = state;
  boost::system::error_code ec;
  state->acceptor.open(stream_protocol(), ec);
  if (!ec) {
    mode_t old = ::umask(0177);  // the file is created 0600, with no window of wider access
    state->acceptor.bind(stream_protocol::endpoint(path.string()), ec);
    ::umask(old);
  }
  if (!ec) state->acceptor.listen(static_cast<int>(limits.max_clients), ec);
  if (ec) return fail(IoError{ec.value(), where + ": " + ec.message()});
  struct stat created {};
  if (::lstat(path.c_str(), &created) == 0) {
    state->dev = created.st_dev;
    state->ino = created.st_ino;
  }
  accept_loop(state->weak_self);
  return ControlServer(std::move(state));
}

ControlServer::ControlServer(ControlServer&&) noexcept = default;
ControlServer& ControlServer::operator=(ControlServer&& o) noexcept {
  if (this != &o) {
    close();
    state_ = std::move(o.state_);
  }
  return *this;
}
ControlServer::~ControlServer() {
  close();
}

void ControlServer::close() {
  if (state_) state_->close();
}

std::size_t ControlServer::clients() const {
  return state_ ? state_->connections.size() : 0;
}

const fs::path& ControlServer::path() const {
  return state_->path;
}

}  // namespace p2p::io
