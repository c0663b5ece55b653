// p2pvpnctl: the admin and node command line. Commands live in *_commands.cpp files, each
// adding its subcommands to the app; this file only parses and returns the exit code.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "daemon/ctl/cert_commands.hpp"
#include "daemon/ctl/command.hpp"
#include "daemon/ctl/daemon_commands.hpp"
#include "daemon/ctl/revocation_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"p2pvpnctl: manage a p2pvpn network (CA, certificates, keys) and query p2pvpnd",
               "p2pvpnctl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("p2pvpnctl ") + P2P_VERSION);
  const p2p::ctl::Context ctx{std::cout, std::cerr, p2p::ctl::unix_now()};
  int exit_code = p2p::ctl::kExitOk;
  p2p::ctl::add_cert_commands(app, ctx, exit_code);
  p2p::ctl::add_daemon_commands(app, ctx, exit_code);
  p2p::ctl::add_revocation_commands(app, ctx, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    return p2p::ctl::report_error(ctx, e.what());
  }
  return exit_code;
}
