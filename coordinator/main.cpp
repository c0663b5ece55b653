// p2pvpn-coordinator: the coordinator daemon. Loads coordinator.yaml, checks its identity
// (key, coordinator certificate, CA), opens its UDP sockets (one, or four for RFC 5780 NAT
// discovery) and its control socket, and runs the Coordinator on one io_context until SIGINT
// or SIGTERM. It refuses to start on any error, with a message on stderr and exit status 1.
#include <signal.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>

#include "config/coordinator_config.hpp"
#include "config/daemon_options.hpp"
#include "config/startup.hpp"
#include "coordinator/shell/coordinator_shell.hpp"
#include "crypto/secure_buffer.hpp"

namespace {

int refuse(const std::string& message) {
  std::cerr << "p2pvpn-coordinator: " << message << "\n";
  return 1;
}

int run(const std::filesystem::path& config_path, p2p::config::LogFormat log_format,
        bool check_only) {
  using namespace p2p;
  config::CoordinatorConfig config;
  try {
    config = config::load_coordinator_config(config_path);
  } catch (const config::ConfigError& e) {
    return refuse(e.what());
  }
  crypto::init_sodium();
  coord::CoordinatorLoggers logs{config::make_logger("coordinator", config.log.level, log_format),
                                 config::make_logger("ctl", config.log.level, log_format)};
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto identity = config::load_identity(config.key, config.cert, config.ca,
                                        crypto::Role::coordinator, config.revoked, now);
  if (!identity) return refuse(identity.error());
  if (check_only) {
    std::cout << config_path.string() << ": OK (coordinator " << identity->identity.certificate.name
              << ", listen " << config.listen.to_string()
              << (config.alternate() ? ", alternate " + config.alternate()->to_string() : "")
              << ")\n";
    return 0;
  }
  logs.coord->info("coordinator={} certificate valid until {}", identity->identity.certificate.name,
                   crypto::format_utc(identity->identity.certificate.not_after));

  boost::asio::io_context io(1);
  auto shell = coord::CoordinatorShell::create(io, config, std::move(*identity), logs);
  if (!shell) return refuse(shell.error());
  io::run_until_signalled(io, **shell, *logs.coord);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"p2pvpn-coordinator: the p2pvpn coordinator (registry, introductions, relay, STUN)",
               "p2pvpn-coordinator"};
  p2p::config::DaemonOptions opts;
  p2p::config::add_daemon_options(app, opts, "Path of coordinator.yaml",
                                  std::string("p2pvpn-coordinator ") + P2P_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  ::signal(SIGPIPE, SIG_IGN);  // a control client that hangs up must not kill us
  try {
    return run(opts.config_path, opts.format(), opts.check_only);
  } catch (const std::exception& e) {
    return refuse(e.what());
  }
}
