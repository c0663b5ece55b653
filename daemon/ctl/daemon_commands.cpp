#include "daemon/ctl/daemon_commands.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "config/mesh_config.hpp"
#include "daemon/ctl/coordinator_view.hpp"
#include "daemon/status/status_json.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"

namespace p2p::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Deadline = std::chrono::steady_clock::time_point;

// An answer line longer than this is not from p2pvpnd (a status with a thousand peers is
// well under 1 MiB).
constexpr std::size_t kMaxAnswer = 16 << 20;

// Why a request got no usable answer. Ping goes on after kTimeout and kRefused (a lost
// probe); everything else ends the command.
struct DaemonError {
  enum class Kind { kUnreachable, kTimeout, kBadAnswer, kRefused };
  Kind kind;
  std::string message;
  bool final = false;  // a refusal marked "final": asking again will not change it
};

// Closes the socket on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string seconds_text(double s) {
  return fmt::format("{:g} s", s);
}

DaemonError unreachable(const fs::path& socket, int err) {
  const char* hint =
      (err == EACCES || err == EPERM) ? "not allowed to use it, try sudo" : "is p2pvpnd running?";
  return {DaemonError::Kind::kUnreachable,
          fmt::format("cannot connect to {}: {} ({})", socket.string(), hint, std::strerror(err))};
}

// Waits until `fd` is ready for `events` or the deadline passes; false on timeout.
bool wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let the following call report the error
  }
}

Expected<void, DaemonError> connect_to(int fd, const fs::path& socket, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket.string();
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return fail(DaemonError{DaemonError::Kind::kUnreachable,
                            fmt::format("cannot connect to {}: the socket path is empty or "
                                        "longer than {} bytes",
                                        path, sizeof(addr.sun_path) - 1)});
  std::memcpy(addr.sun_path, path.data(), path.size());
  // A unix socket connects at once or fails, except with a full backlog (EAGAIN): a busy
  // daemon, so try again until the deadline.
  while (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN) return fail(unreachable(socket, err));
    if (std::chrono::steady_clock::now() >= deadline)
      return fail(DaemonError{
          DaemonError::Kind::kTimeout,
          fmt::format("p2pvpnd at {} is not accepting connections (busy)", socket.string())});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

// Sends `request` as one line on a new connection and reads the one-line answer.
Expected<json, DaemonError> ask_daemon(const fs::path& socket, const json& request,
                                       double timeout_seconds) {
  const Deadline deadline = std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(timeout_seconds));
  const auto timed_out = [&] {
    return fail(DaemonError{DaemonError::Kind::kTimeout,
                            fmt::format("p2pvpnd did not answer within {} (socket {})",
                                        seconds_text(timeout_seconds), socket.string())});
  };
  const auto lost = [&](const std::string& what) {
    return fail(
        DaemonError{DaemonError::Kind::kBadAnswer, fmt::format("{} {}", what, socket.string())});
  };
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return fail(unreachable(socket, errno));
  if (auto c = connect_to(fd.get(), socket, deadline); !c) return fail(c.error());

  const std::string line = request.dump() + "\n";
  for (std::size_t sent = 0; sent < line.size();) {
    if (!wait_for(fd.get(), POLLOUT, deadline)) return timed_out();
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return lost(fmt::format("cannot send to p2pvpnd ({}):", std::strerror(errno)));
    sent += static_cast<std::size_t>(n);
  }

  std::string answer;
  std::vector<char> chunk(64 * 1024);
  for (;;) {
    if (!wait_for(fd.get(), POLLIN, deadline)) return timed_out();
    const ssize_t n = ::recv(fd.get(), chunk.data(), chunk.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return lost(fmt::format("cannot read from p2pvpnd ({}):", std::strerror(errno)));
    if (n == 0) return lost("p2pvpnd closed the connection without answering:");
    answer.append(chunk.data(), static_cast<std::size_t>(n));
    if (const auto end = answer.find('\n'); end != std::string::npos) {
      answer.resize(end);
      break;
    }
    if (answer.size() > kMaxAnswer) return lost("p2pvpnd's answer is too long:");
  }
  json parsed = json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object())
    return lost("p2pvpnd's answer is not a JSON object:");
  // A refusal: {"ok": false, "error": "..."}.
  if (const auto ok = parsed.find("ok"); ok != parsed.end() && *ok == false) {
    const auto error = parsed.find("error");
    const auto final = parsed.find("final");
    return fail(DaemonError{DaemonError::Kind::kRefused,
                            error != parsed.end() && error->is_string()
                                ? error->get<std::string>()
                                : std::string("p2pvpnd refused without a reason"),
                            final != parsed.end() && *final == true});
  }
  return parsed;
}

Expected<fs::path, std::string> socket_path(const DaemonOptions& opt) {
  if (!opt.socket.empty()) return opt.socket;
  if (opt.config.empty()) return fs::path(kDefaultControlSocket);
  try {
    return config::load_mesh_config(opt.config).control_socket;
  } catch (const config::ConfigError& e) {
    return fail(std::string(e.what()));
  }
}

// One request for the single-shot commands: the answer, or the exit code after reporting.
Expected<json, int> ask(const DaemonOptions& opt, const json& request, const Context& ctx) {
  auto socket = socket_path(opt);
  if (!socket) return fail(report_error(ctx, socket.error()));
  auto answer = ask_daemon(*socket, request, opt.timeout_seconds);
  if (answer) return std::move(answer).value();
  const int code = report_error(ctx, answer.error().message);
  return fail(answer.error().kind == DaemonError::Kind::kRefused ? kExitFailure : code);
}

// The daemon options as given to one command, and to the program before the command
// (`p2pvpnctl -c mesh.yaml ping laptop`): the command's own win.
struct GivenDaemonOptions {
  DaemonOptions options;
  CLI::Option* socket = nullptr;
  CLI::Option* config = nullptr;
  CLI::Option* timeout = nullptr;
};

DaemonOptions merged(const GivenDaemonOptions& global, const GivenDaemonOptions& own) {
  DaemonOptions out = own.options;
  if (own.socket->count() == 0 && own.config->count() == 0) {
    out.socket = global.options.socket;
    out.config = global.options.config;
  }
  if (own.timeout->count() == 0 && global.timeout->count() > 0)
    out.timeout_seconds = global.options.timeout_seconds;
  return out;
}

// Every command's daemon options, and the program's.
struct AllDaemonOptions {
  GivenDaemonOptions global, status, ping, netcheck, reload;
};

void add_daemon_options(CLI::App& cmd, GivenDaemonOptions& given) {
  DaemonOptions& opt = given.options;
  auto* socket = cmd.add_option(
      "--socket", opt.socket,
      std::string("p2pvpnd's control socket (default ") + kDefaultControlSocket + ")");
  given.socket = socket;
  given.config =
      cmd.add_option("-c,--config", opt.config, "Use the control_socket of this mesh.yaml")
          ->excludes(socket);
  given.timeout =
      cmd.add_option("--timeout", opt.timeout_seconds, "Seconds to wait for p2pvpnd's answer")
          ->check(CLI::Range(0.01, 3600.0))
          ->capture_default_str();
}

struct PingTally {
  int sent = 0;
  std::vector<double> rtts;  // milliseconds, one per reply
};

void print_ping_summary(const PingOptions& opt, const PingTally& t, const Context& ctx) {
  const int lost = t.sent - static_cast<int>(t.rtts.size());
  ctx.out << fmt::format("\n--- {} ping statistics ---\n", opt.target)
          << fmt::format("{} probes sent, {} replies, {}% loss\n", t.sent, t.rtts.size(),
                         t.sent == 0 ? 0 : lost * 100 / t.sent);
  if (t.rtts.empty()) return;
  double sum = 0;
  for (double r : t.rtts) sum += r;
  ctx.out << fmt::format("rtt min/avg/max = {:.3f}/{:.3f}/{:.3f} ms\n",
                         *std::min_element(t.rtts.begin(), t.rtts.end()),
                         sum / static_cast<double>(t.rtts.size()),
                         *std::max_element(t.rtts.begin(), t.rtts.end()));
}

}  // namespace

int run_status(const StatusOptions& opt, const Context& ctx) {
  auto status = ask(opt.daemon, {{"cmd", "status"}}, ctx);
  if (!status) return status.error();
  if (opt.json) {
    ctx.out << status->dump(2) << '\n';
    return kExitOk;
  }
  if (is_coordinator_status(*status)) {
    auto text = render_coordinator_status(*status);
    if (!text) return report_error(ctx, "the coordinator's status: " + text.error());
    ctx.out << *text;
    return kExitOk;
  }
  auto text = daemon::render_status(*status);
  if (!text) return report_error(ctx, "p2pvpnd's status: " + text.error());
  ctx.out << *text;
  return kExitOk;
}

int run_ping(const PingOptions& opt, const Context& ctx) {
  auto socket = socket_path(opt.daemon);
  if (!socket) return report_error(ctx, socket.error());
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(opt.interval_seconds));
  ctx.out << "PING " << opt.target << '\n';
  PingTally tally;
  auto next = std::chrono::steady_clock::now();
  for (int seq = 1; seq <= opt.count; ++seq) {
    std::this_thread::sleep_until(next);
    next = std::chrono::steady_clock::now() + interval;
    ++tally.sent;
    auto answer =
        ask_daemon(*socket, {{"cmd", "ping"}, {"target", opt.target}}, opt.daemon.timeout_seconds);
    if (!answer) {
      const auto kind = answer.error().kind;
      if (kind != DaemonError::Kind::kTimeout && kind != DaemonError::Kind::kRefused)
        return report_error(ctx, answer.error().message);
      // No such peer, this node, the coordinator: no probe will ever be answered.
      if (answer.error().final) {
        report_error(ctx, answer.error().message);
        return kExitFailure;
      }
      ctx.out << fmt::format("no reply from {}: seq={} {}\n", opt.target, seq,
                             answer.error().message);
      ctx.out.flush();
      continue;
    }
    const auto rtt = answer->find("rtt_ms");
    const auto path = answer->find("path");
    if (rtt == answer->end() || !rtt->is_number() || path == answer->end() || !path->is_string())
      return report_error(ctx, "p2pvpnd's ping answer lacks rtt_ms or path: " + answer->dump());
    const double ms = rtt->get<double>();
    tally.rtts.push_back(ms);
    ctx.out << fmt::format("reply from {}: seq={} time={} path={}\n", opt.target, seq,
                           daemon::format_rtt(ms), path->get<std::string>());
    ctx.out.flush();
  }
  print_ping_summary(opt, tally, ctx);
  return tally.rtts.empty() ? kExitFailure : kExitOk;
}

int run_reload(const ReloadOptions& opt, const Context& ctx) {
  auto answer = ask(opt.daemon, {{"cmd", "reload"}}, ctx);
  if (!answer) return answer.error();  // "error: FILE:LINE: key: ..." and exit 1
  const auto summary = answer->find("summary");
  if (summary == answer->end() || !summary->is_string())
    return report_error(ctx, "the reload answer has no summary: " + answer->dump());
  ctx.out << "reloaded: " << summary->get<std::string>() << '\n';
  return kExitOk;
}

int run_netcheck(const NetcheckOptions& opt, const Context& ctx) {
  json request{{"cmd", "netcheck"}};
  if (!opt.server.empty()) request["server"] = opt.server;
  // Discovery takes seconds (up to ~7 behind a strict NAT, 3.5 when nobody answers).
  ctx.err << "running NAT discovery against "
          << (opt.server.empty() ? std::string("the node's STUN server") : opt.server)
          << " (a few seconds)...\n";
  ctx.err.flush();
  auto answer = ask(opt.daemon, request, ctx);
  if (!answer) return answer.error();
  const auto report = answer->find("report");
  if (report == answer->end() || !report->is_object())
    return report_error(ctx, "p2pvpnd's netcheck answer has no report: " + answer->dump());
  // No answer at all: nothing was discovered, and the command failed.
  const auto blocked = report->find("udp_blocked");
  const int code = blocked != report->end() && *blocked == true ? kExitFailure : kExitOk;
  if (opt.json) {
    ctx.out << report->dump(2) << '\n';
    return code;
  }
  const auto description = report->find("description");
  if (description == report->end() || !description->is_string())
    return report_error(ctx, "p2pvpnd's NAT report has no description: " + report->dump());
  ctx.out << description->get<std::string>();
  if (code != kExitOk) {
    const auto server = report->find("server");
    ctx.err << "error: no answer from "
            << (server != report->end() && server->is_string() ? server->get<std::string>()
                                                               : std::string("the server"))
            << "\n";
  }
  return code;
}

void add_daemon_commands(CLI::App& app, const Context& ctx, int& exit_code) {
  auto given = std::make_shared<AllDaemonOptions>();
  add_daemon_options(app, given->global);
  given->netcheck.options = NetcheckOptions{}.daemon;

  auto status = std::make_shared<StatusOptions>();
  auto* status_cmd =
      app.add_subcommand("status", "Show this node and its peers (asks the running p2pvpnd)");
  add_daemon_options(*status_cmd, given->status);
  status_cmd->add_flag("--json", status->json,
                       "Print the status as JSON (schema: contrib/doc/status-json.md)");
  status_cmd->callback([&ctx, &exit_code, status, given] {
    status->daemon = merged(given->global, given->status);
    exit_code = run_status(*status, ctx);
  });

  auto ping = std::make_shared<PingOptions>();
  auto* ping_cmd = app.add_subcommand(
      "ping", "Probe a peer over its current path; exit 1 if no probe is answered");
  ping_cmd->add_option("TARGET", ping->target, "Peer name or virtual IP")->required();
  ping_cmd->add_option("-n,--count", ping->count, "Number of probes")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  ping_cmd->add_option("-i,--interval", ping->interval_seconds, "Seconds between probes")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  add_daemon_options(*ping_cmd, given->ping);
  ping_cmd->callback([&ctx, &exit_code, ping, given] {
    ping->daemon = merged(given->global, given->ping);
    exit_code = run_ping(*ping, ctx);
  });

  auto netcheck = std::make_shared<NetcheckOptions>();
  auto* netcheck_cmd = app.add_subcommand(
      "netcheck", "Run NAT discovery now and print the report (asks the running p2pvpnd)");
  add_daemon_options(*netcheck_cmd, given->netcheck);
  netcheck_cmd->add_flag("--json", netcheck->json, "Print the report as JSON");
  netcheck_cmd
      ->add_option("--server", netcheck->server,
                   "Ask this STUN server (IP:PORT, [IPv6]:PORT) instead of the daemon's own "
                   "(mesh.yaml discovery.server, or the coordinator); the node's NAT state is "
                   "not changed")
      ->check([](const std::string& text) -> std::string {
        auto e = Endpoint::parse(text);
        if (!e || e->port == 0) return "expected IP:PORT or [IPv6]:PORT, got \"" + text + "\"";
        return {};
      });
  netcheck_cmd->callback([&ctx, &exit_code, netcheck, given] {
    netcheck->daemon = merged(given->global, given->netcheck);
    exit_code = run_netcheck(*netcheck, ctx);
  });

  auto reload = std::make_shared<ReloadOptions>();
  auto* reload_cmd = app.add_subcommand(
      "reload",
      "Make the running p2pvpnd (or coordinator, --socket) re-read its configuration, as "
      "SIGHUP does; exit 1 if the file is invalid (the running configuration stays)");
  add_daemon_options(*reload_cmd, given->reload);
  reload_cmd->callback([&ctx, &exit_code, reload, given] {
    reload->daemon = merged(given->global, given->reload);
    exit_code = run_reload(*reload, ctx);
  });
}

}  // namespace p2p::ctl
