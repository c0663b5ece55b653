// p2pvpnctl revoke: the network's CA-signed revocation list (crypto/revocation_list.hpp).
//
//   revoke --ca DIR [--fingerprint HEX]... [--cert FILE]... [--name NAME]... [--out FILE]
//     adds the certificates named (by fingerprint, by certificate file, or every certificate
//     DIR/issued.txt records under a name) to the list in FILE (default DIR/revoked.list),
//     and writes it signed by DIR/ca.key with the next sequence number. The coordinators'
//     `revocation_list:` points at that file (or a copy of it); `cert show FILE` prints it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/ctl/command.hpp"

namespace CLI {
class App;
}

namespace p2p::ctl {

struct RevokeOptions {
  std::filesystem::path ca_dir;
  std::vector<std::string> fingerprints;
  std::vector<std::filesystem::path> certs;
  std::vector<std::string> names;
  std::filesystem::path out;  // empty: CA_DIR/revoked.list
};

int run_revoke(const RevokeOptions& opt, const Context& ctx);

// Adds "revoke" to `app` (exit code into `exit_code`; `ctx` must outlive app.parse()).
void add_revocation_commands(CLI::App& app, const Context& ctx, int& exit_code);

}  // namespace p2p::ctl
