// p2pvpnctl's commands that talk to a running p2pvpnd over its control socket.
//
//   status    this node and its peers: a table, or the status JSON with --json
//   ping      probe a peer (by name or virtual IP) like ping(8): one line per probe, a summary
//   netcheck  run NAT discovery now and print the report (or its JSON with --json)
//   reload    re-read the daemon's (or, with --socket, the coordinator's) configuration file
//             and print what was applied, what needs a restart, or why it was refused
//
// Protocol (contrib/doc/status-json.md): a unix stream socket; the client writes one JSON
// request per line ({"cmd":"status"}, {"cmd":"ping","target":"laptop"}, {"cmd":"netcheck"})
// and reads one JSON answer per line; an answer {"ok":false,"error":"..."} is a refusal.
// p2pvpnctl opens one connection per request. Every wait (connect, write, read) is bounded by
// the command's --timeout: a daemon that does not answer in time is an error, never a hang.
//
// Exit codes (command.hpp): 0 success; 1 the daemon refused (or every ping probe failed, or
// netcheck's server did not answer);
// 2 no daemon, no answer in time, a malformed answer, or bad options.
#pragma once

#include <filesystem>
#include <string>

#include "daemon/ctl/command.hpp"

namespace CLI {
class App;
}

namespace p2p::ctl {

inline constexpr const char* kDefaultControlSocket = "/run/p2pvpnd.sock";

// Where the daemon listens: --socket, else control_socket from the -c mesh.yaml, else
// kDefaultControlSocket.
struct DaemonOptions {
  std::filesystem::path socket;
  std::filesystem::path config;
  double timeout_seconds = 5;
};

struct StatusOptions {
  DaemonOptions daemon;
  bool json = false;
};

struct PingOptions {
  DaemonOptions daemon;
  std::string target;  // peer name or virtual IP, passed to the daemon as given
  int count = 3;
  double interval_seconds = 1;  // from one probe's start to the next one's
};

struct NetcheckOptions {
  // Discovery takes up to ~7 s behind a strict NAT, and may wait for a run under way.
  DaemonOptions daemon{.socket = {}, .config = {}, .timeout_seconds = 30};
  std::string server;  // "IP:PORT": another RFC 5780 STUN server; empty = the daemon's own
  bool json = false;
};

struct ReloadOptions {
  DaemonOptions daemon;
};

int run_status(const StatusOptions& opt, const Context& ctx);
int run_reload(const ReloadOptions& opt, const Context& ctx);
int run_ping(const PingOptions& opt, const Context& ctx);
int run_netcheck(const NetcheckOptions& opt, const Context& ctx);

// Adds "status", "ping", "netcheck" and "reload" to `app`, as add_cert_commands() does, and their
// --socket, -c and --timeout to `app` itself too, so they may come before the command
// (`p2pvpnctl -c mesh.yaml ping laptop`); the command's own win.
void add_daemon_commands(CLI::App& app, const Context& ctx, int& exit_code);

}  // namespace p2p::ctl
