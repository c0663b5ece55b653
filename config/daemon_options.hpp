// The command-line options p2pvpnd and p2pvpn-coordinator share (one definition, so their
// --help and man pages agree): -c/--config, --log-format, --check, --version.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

#include "config/startup.hpp"

namespace p2p::config {

struct DaemonOptions {
  std::filesystem::path config_path;
  std::string log_format = "auto";
  bool check_only = false;

  LogFormat format() const { return *parse_log_format(log_format); }  // checked by CLI11
};

inline void add_daemon_options(CLI::App& app, DaemonOptions& o, const std::string& config_help,
                               const std::string& version) {
  app.add_option("-c,--config", o.config_path, config_help)->required();
  app.add_option("--log-format", o.log_format, kLogFormatHelp)
      ->check(CLI::IsMember({"auto", "text", "journal"}))
      ->capture_default_str();
  app.add_flag("--check", o.check_only,
               "Load the config and the key, certificate and CA it names, say what is wrong or "
               "OK, and exit (nothing is opened)");
  app.set_version_flag("--version", version);
}

}  // namespace p2p::config
