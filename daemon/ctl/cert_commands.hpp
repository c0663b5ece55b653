// p2pvpnctl's offline commands: the network CA, certificates and node keys.
//
//   ca init      DIR/ca.key (Ed25519, 0600) and DIR/ca.crt (self-signed)
//   issue        OUTDIR/NAME.crt signed by the CA in DIR, and OUTDIR/NAME.key unless --pubkey;
//                recorded in DIR/issued.txt ("NAME VIP/LEN FINGERPRINT" per line): a virtual IP
//                already issued to another name, the prefix's network or broadcast address,
//                and (without --force, which re-issues) a name already issued are refused;
//                --renew re-issues OUTDIR/NAME.crt (or --cert) for the same key, name, virtual
//                IPs, role and groups with a new validity (no key is written; the record's
//                line for NAME gets the new fingerprint)
//   cert show    print a certificate (node or CA) or a revocation list
//   cert verify  check a certificate against ca.crt; exit 1 with the reason on failure
//   key generate a node key pair without a certificate (for --pubkey on the admin's side)
//   key public   print the public key of a private key file
//
// Each run_* function is the whole command; it returns an exit code (command.hpp) and writes
// results to ctx.out, errors to ctx.err. Private key bytes are never printed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "daemon/ctl/command.hpp"
#include "net/expected.hpp"
#include "net/ip.hpp"

namespace CLI {
class App;
}

namespace p2p::ctl {

struct CaInitOptions {
  std::filesystem::path dir;
  std::string name = "p2pvpn-ca";
  std::string valid = "3650d";
  bool force = false;
};

struct IssueOptions {
  std::filesystem::path ca_dir;
  std::string name;
  std::string ip;
  std::string ip6;  // empty: none
  std::string role = "node";
  std::vector<std::string> groups;
  std::string valid = "365d";
  std::filesystem::path pubkey;  // empty: generate NAME.key
  std::filesystem::path out_dir;
  bool force = false;
  bool renew = false;
  std::filesystem::path cert;  // --renew: the certificate to renew; empty = OUTDIR/NAME.crt
};

struct VerifyOptions {
  std::filesystem::path ca;  // ca.crt, or a directory holding it
  std::filesystem::path file;
};

struct KeyGenerateOptions {
  std::filesystem::path out;
  std::filesystem::path pub;  // empty: none
  bool force = false;
};

// The issue record, CA_DIR/issued.txt: one line "NAME VIP/LEN FINGERPRINT" per certificate
// issued, so a name or a virtual IP is never handed out twice (certificates of one network
// may sit in many directories; the CA directory is the one place they all pass through).
struct IssuedEntry {
  std::string name;
  Ipv4Prefix vip;
  std::string fingerprint;
};
// The record's entries; a missing file is an empty record (a CA older than the record).
Expected<std::vector<IssuedEntry>, std::string> read_issued(const std::filesystem::path& ca_dir);

int run_ca_init(const CaInitOptions& opt, const Context& ctx);
int run_issue(const IssueOptions& opt, const Context& ctx);
int run_renew(const IssueOptions& opt, const Context& ctx);
int run_cert_show(const std::filesystem::path& file, const Context& ctx);
int run_cert_verify(const VerifyOptions& opt, const Context& ctx);
int run_key_generate(const KeyGenerateOptions& opt, const Context& ctx);
int run_key_public(const std::filesystem::path& file, const Context& ctx);

// Adds "ca", "issue", "cert" and "key" to `app`. The chosen command's exit code is stored in
// `exit_code`; `ctx` must outlive app.parse().
void add_cert_commands(CLI::App& app, const Context& ctx, int& exit_code);

}  // namespace p2p::ctl
