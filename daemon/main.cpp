// p2pvpnd: the node daemon. Loads mesh.yaml, checks its identity (key, certificate, CA),
// opens the TUN device, its UDP socket and its control socket, and runs the Node on one
// io_context until SIGINT or SIGTERM. It refuses to start on any error, with a message on
// stderr and exit status 1.
#include <signal.h>

#include <utility>
// Asio after <utility> (Boost 1.74).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <iostream>
#include <string>

#include "config/daemon_options.hpp"
#include "config/mesh_config.hpp"
#include "config/startup.hpp"
#include "crypto/secure_buffer.hpp"
#include "daemon/shell/node_shell.hpp"

namespace {

int refuse(const std::string& message) {
  std::cerr << "p2pvpnd: " << message << "\n";
  return 1;
}

p2p::UnixTime unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int run(const std::filesystem::path& config_path, p2p::config::LogFormat log_format,
        bool check_only) {
  using namespace p2p;
  config::MeshConfig config;
  try {
    config = config::load_mesh_config(config_path);
  } catch (const config::ConfigError& e) {
    return refuse(e.what());
  }
  crypto::init_sodium();
  const auto level = config.log.level;
  daemon::NodeLoggers logs{
      config::make_logger("node", level, log_format), config::make_logger("tun", level, log_format),
      config::make_logger("ctl", level, log_format), config::make_logger("nat", level, log_format)};

  auto identity = config::load_identity(config.node.key, config.node.cert, config.ca,
                                        crypto::Role::node, config.revoked, unix_now());
  if (!identity) return refuse(identity.error());
  if (check_only) {
    std::cout << config_path.string() << ": OK (node " << identity->identity.certificate.name
              << ", vip " << identity->identity.certificate.vip.to_string() << ")\n";
    return 0;
  }
  logs.node->info("node={} vip={} certificate valid until {}", identity->identity.certificate.name,
                  identity->identity.certificate.vip.to_string(),
                  crypto::format_utc(identity->identity.certificate.not_after));

  boost::asio::io_context io(1);
  auto shell = daemon::NodeShell::create(io, config, std::move(*identity), logs);
  if (!shell) return refuse(shell.error());
  io::run_until_signalled(io, **shell, *logs.node);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"p2pvpnd: the p2pvpn node daemon", "p2pvpnd"};
  p2p::config::DaemonOptions opts;
  p2p::config::add_daemon_options(app, opts, "Path of mesh.yaml",
                                  std::string("p2pvpnd ") + P2P_VERSION);
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
