#include "daemon/ctl/revocation_commands.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <system_error>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "crypto/revocation_list.hpp"
#include "daemon/ctl/cert_commands.hpp"

namespace p2p::ctl {
namespace {

using namespace p2p::crypto;
namespace fs = std::filesystem;

// The fingerprints the options name, or what is wrong with one of them.
Expected<std::vector<Fingerprint>, std::string> targets(const RevokeOptions& opt) {
  std::vector<Fingerprint> out;
  for (const auto& hex : opt.fingerprints) {
    auto fp = parse_fingerprint(hex);
    if (!fp) return fail("--fingerprint " + hex + ": expected 64 hex digits");
    out.push_back(*fp);
  }
  for (const auto& file : opt.certs) {
    auto cert = load_certificate(file);
    if (!cert) return fail(cert.error().message);
    out.push_back(fingerprint_bytes(*cert));
  }
  if (!opt.names.empty()) {
    auto issued = read_issued(opt.ca_dir);
    if (!issued) return fail(issued.error());
    for (const auto& name : opt.names) {
      bool found = false;
      for (const auto& e : *issued) {
        if (e.name != name) continue;
        auto fp = parse_fingerprint(e.fingerprint);
        if (!fp) return fail("issued.txt: the fingerprint of '" + name + "' is not 64 hex digits");
        out.push_back(*fp);
        found = true;
      }
      if (!found)
        return fail("--name " + name + ": no certificate of that name in " +
                    (opt.ca_dir / "issued.txt").string());
    }
  }
  if (out.empty()) return fail("name what to revoke: --fingerprint, --cert or --name");
  return out;
}

}  // namespace

int run_revoke(const RevokeOptions& opt, const Context& ctx) {
  const fs::path out = opt.out.empty() ? opt.ca_dir / "revoked.list" : opt.out;
  auto ca = load_ca_certificate(opt.ca_dir / "ca.crt");
  if (!ca) return report_error(ctx, ca.error().message);
  auto ca_key = load_ed25519_private_key(opt.ca_dir / "ca.key");
  if (!ca_key) return report_error(ctx, ca_key.error().message);
  auto add = targets(opt);
  if (!add) return report_error(ctx, add.error());

  // The list so far: it must be ours, and the new one follows it.
  RevocationList list;
  std::error_code ec;
  if (fs::exists(out, ec)) {
    auto old = load_revocation_list(out);
    if (!old) return report_error(ctx, old.error().message);
    if (auto ok = verify(*old, *ca); !ok)
      return report_error(ctx, "'" + out.string() + "': " + ok.error().message);
    list = std::move(*old);
  }
  std::size_t added = 0;
  for (const auto& fp : *add) {
    if (std::find(list.revoked.begin(), list.revoked.end(), fp) != list.revoked.end()) {
      ctx.err << "note: " << to_hex(fp) << " is revoked already\n";
      continue;
    }
    list.revoked.push_back(fp);
    ++added;
  }
  if (added == 0) {
    ctx.out << "nothing new: '" << out.string() << "' stays at sequence " << list.sequence << "\n";
    return kExitOk;
  }
  list.sequence += 1;
  list.issued_at = ctx.now;
  auto signed_list = sign(std::move(list), *ca, *ca_key);
  if (!signed_list) return report_error(ctx, signed_list.error().message);
  if (auto ok = save_revocation_list(out, *signed_list); !ok)
    return report_error(ctx, ok.error().message);
  ctx.out << "revocation list " << signed_list->sequence << ": " << signed_list->revoked.size()
          << " certificates revoked (" << added << " new), written to '" << out.string() << "'\n";
  return kExitOk;
}

void add_revocation_commands(CLI::App& app, const Context& ctx, int& exit_code) {
  auto opt = std::make_shared<RevokeOptions>();
  auto* cmd = app.add_subcommand(
      "revoke", "Revoke certificates: the CA-signed revocation list, with the next sequence");
  cmd->add_option("--ca", opt->ca_dir, "CA directory (ca.key, ca.crt, issued.txt)")->required();
  cmd->add_option("--fingerprint", opt->fingerprints, "Certificate fingerprint (64 hex digits)");
  cmd->add_option("--cert", opt->certs, "Certificate file");
  cmd->add_option("--name", opt->names, "Every certificate issued under this name (issued.txt)");
  cmd->add_option("--out", opt->out, "Revocation list file (default CA_DIR/revoked.list)");
  cmd->callback([&ctx, &exit_code, opt] { exit_code = run_revoke(*opt, ctx); });
}

}  // namespace p2p::ctl
