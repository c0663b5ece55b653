#include "daemon/ctl/cert_commands.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <system_error>

#include "config/duration.hpp"
#include "crypto/armor.hpp"
#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "crypto/revocation_list.hpp"
#include "net/expected.hpp"

namespace p2p::ctl {
namespace {

using namespace p2p::crypto;
namespace fs = std::filesystem;

// New certificates start this far in the past, so a peer whose clock is a little behind the
// issuer's does not see a fresh certificate as "not yet valid".
constexpr UnixTime kBackdate = 5 * 60;

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

// Parses a --valid duration into whole seconds.
std::optional<UnixTime> validity_seconds(const std::string& text) {
  auto d = config::parse_duration(text);
  if (!d) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(*d).count();
}

// Refuses to clobber existing outputs unless --force. Checks every path before any is written,
// so a refused command leaves nothing half-done.
std::optional<std::string> check_overwrite(const std::vector<fs::path>& paths, bool force) {
  if (force) return std::nullopt;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(p, ec)))
      return quoted(p) + " already exists; refusing to overwrite it (use --force to replace it)";
  }
  return std::nullopt;
}

// Creates `dir` (and parents) if missing; a directory created here is private to the owner
// when `owner_only`.
std::optional<std::string> ensure_dir(const fs::path& dir, bool owner_only) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return std::nullopt;
  if (!fs::create_directories(dir, ec) && ec)
    return "cannot create directory " + quoted(dir) + ": " + ec.message();
  if (owner_only) fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return std::nullopt;
}

fs::path issued_path(const fs::path& ca_dir) {
  return ca_dir / "issued.txt";
}

}  // namespace

Expected<std::vector<IssuedEntry>, std::string> read_issued(const fs::path& ca_dir) {
  std::vector<IssuedEntry> out;
  std::error_code ec;
  if (!fs::exists(issued_path(ca_dir), ec)) return out;
  std::ifstream in(issued_path(ca_dir));
  if (!in) return fail("cannot read " + quoted(issued_path(ca_dir)));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    IssuedEntry e;
    std::string vip;
    fields >> e.name >> vip >> e.fingerprint;
    auto prefix = Ipv4Prefix::parse(vip);
    if (!prefix || e.fingerprint.empty())
      return fail(quoted(issued_path(ca_dir)) + " line " + std::to_string(n) +
                  ": expected NAME VIP/LEN FINGERPRINT");
    e.vip = *prefix;
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

// Why `name` at `vip` cannot be issued, if it cannot: the prefix's network or broadcast
// address, or a name or address the record already holds (a name only without --force, which
// re-issues it).
std::optional<std::string> check_unique(const std::vector<IssuedEntry>& issued,
                                        const std::string& name, const Ipv4Prefix& vip, bool force,
                                        const fs::path& record) {
  if (vip.length <= 30) {
    const std::uint32_t host = ~0u >> vip.length;
    if ((vip.address.value & host) == 0)
      return "--ip " + vip.to_string() + " is the network address of " +
             Ipv4Prefix{vip.network(), vip.length}.to_string() + "; choose a host address";
    if ((vip.address.value & host) == host)
      return "--ip " + vip.to_string() + " is the broadcast address of " +
             Ipv4Prefix{vip.network(), vip.length}.to_string() + "; choose a host address";
  }
  for (const auto& e : issued) {
    if (e.vip.address == vip.address && e.name != name)
      return "--ip " + vip.address.to_string() + " is already issued to '" + e.name +
             "' (fingerprint " + e.fingerprint + ", " + quoted(record) +
             "); choose another address, or revoke that certificate and delete its line";
    if (e.name == name && !force)
      return "--name '" + name + "' is already issued (" + e.vip.to_string() + ", fingerprint " +
             e.fingerprint + ", " + quoted(record) +
             "); choose another name, or add --force to re-issue it (then revoke the old "
             "fingerprint)";
  }
  return std::nullopt;
}

// Rewrites the record with `added` in place of any entry of the same name.
std::optional<std::string> record_issued(const fs::path& ca_dir, std::vector<IssuedEntry> issued,
                                         IssuedEntry added) {
  std::erase_if(issued, [&](const IssuedEntry& e) { return e.name == added.name; });
  issued.push_back(std::move(added));
  const fs::path path = issued_path(ca_dir);
  const fs::path temp = ca_dir / "issued.txt.new";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "# certificates issued by this CA: NAME VIP/LEN FINGERPRINT (p2pvpnctl issue)\n";
    for (const auto& e : issued)
      out << e.name << ' ' << e.vip.to_string() << ' ' << e.fingerprint << '\n';
    if (!out.flush()) return "cannot write " + quoted(temp);
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) return "cannot replace " + quoted(path) + ": " + ec.message();
  return std::nullopt;
}

// Signs `cert` valid from now (backdated a little) for `secs`, capped at the CA's own expiry
// (with a note on ctx.err).
Expected<Certificate, std::string> sign_from_now(Certificate cert, const CaCertificate& ca,
                                                 const Ed25519KeyPair& ca_key, UnixTime secs,
                                                 const fs::path& ca_dir, const Context& ctx) {
  cert.not_before = std::max(ctx.now - kBackdate, ca.not_before);
  cert.not_after = ctx.now + secs;
  if (cert.not_after > ca.not_after) {
    cert.not_after = ca.not_after;
    ctx.err << "note: validity shortened to the CA's own expiry, " << format_utc(ca.not_after)
            << "\n";
  }
  auto signed_cert = sign(std::move(cert), ca, ca_key);
  if (!signed_cert)
    return fail(signed_cert.error().message + " (" + quoted(ca_dir / "ca.key") + " vs " +
                quoted(ca_dir / "ca.crt") + ")");
  return std::move(*signed_cert);
}

std::string summary(const Certificate& c) {
  return "'" + c.name + "' (" + std::string(to_string(c.role)) + ", " + c.vip.to_string() + ")";
}

}  // namespace

int run_ca_init(const CaInitOptions& opt, const Context& ctx) {
  if (!valid_name(opt.name))
    return report_error(ctx, "--name '" + opt.name +
                                 "': use 1..63 characters of A-Z a-z 0-9 . _ -, starting with a "
                                 "letter or digit");
  auto secs = validity_seconds(opt.valid);
  if (!secs) return report_error(ctx, "--valid '" + opt.valid + "': expected e.g. 3650d or 52w");
  const fs::path key_path = opt.dir / "ca.key";
  const fs::path crt_path = opt.dir / "ca.crt";
  if (auto refused = check_overwrite({key_path, crt_path}, opt.force))
    return report_error(ctx, *refused +
                                 "; replacing the CA invalidates every certificate it "
                                 "issued");
  if (auto failed = ensure_dir(opt.dir, true)) return report_error(ctx, *failed);

  auto key = Ed25519KeyPair::generate();
  auto ca = make_ca_certificate(opt.name, key, ctx.now - kBackdate, ctx.now + *secs);
  if (!ca) return report_error(ctx, ca.error().message);
  if (auto ok = save_private_key(key_path, key, opt.force); !ok)
    return report_error(ctx, ok.error().message);
  if (auto ok = save_ca_certificate(crt_path, *ca, opt.force); !ok)
    return report_error(ctx, ok.error().message);

  ctx.out << "created CA '" << ca->name << "' (key id " << to_hex(key_id(ca->public_key))
          << "), valid until " << format_utc(ca->not_after) << "\n"
          << "  " << key_path.string()
          << "  private CA key: keep it offline, never copy it to nodes\n"
          << "  " << crt_path.string() << "  CA certificate: give it to every node\n";
  return kExitOk;
}

int run_issue(const IssueOptions& opt, const Context& ctx) {
  if (opt.renew) return run_renew(opt, ctx);
  if (opt.ip.empty()) return report_error(ctx, "--ip is required (unless --renew)");
  // Validate every input before touching the CA key or the output directory.
  if (!valid_name(opt.name))
    return report_error(ctx, "--name '" + opt.name +
                                 "': use 1..63 characters of A-Z a-z 0-9 . _ -, starting with a "
                                 "letter or digit");
  auto vip = Ipv4Prefix::parse(opt.ip);
  if (!vip)
    return report_error(
        ctx, "--ip '" + opt.ip + "': expected an address with prefix, e.g. 10.77.0.2/24");
  std::optional<Ipv6Prefix> vip6;
  if (!opt.ip6.empty()) {
    vip6 = Ipv6Prefix::parse(opt.ip6);
    if (!vip6) return report_error(ctx, "--ip6 '" + opt.ip6 + "': expected e.g. fd00::2/64");
  }
  auto role = parse_role(opt.role);
  if (!role) return report_error(ctx, "--role '" + opt.role + "': expected node or coordinator");
  std::set<std::string> groups;
  for (const auto& g : opt.groups) {
    if (!valid_name(g))
      return report_error(ctx, "--groups: '" + g +
                                   "' is not a valid group name (1..63 "
                                   "characters of A-Z a-z 0-9 . _ -)");
    if (!groups.insert(g).second) return report_error(ctx, "--groups: '" + g + "' is listed twice");
  }
  if (groups.size() > kMaxGroups)
    return report_error(ctx, "--groups: at most " + std::to_string(kMaxGroups) + " groups");
  auto secs = validity_seconds(opt.valid);
  if (!secs) return report_error(ctx, "--valid '" + opt.valid + "': expected e.g. 365d or 12h");

  auto ca = load_ca_certificate(opt.ca_dir / "ca.crt");
  if (!ca) return report_error(ctx, ca.error().message);
  if (auto ok = verify_ca(*ca, ctx.now); !ok)
    return report_error(
        ctx, "CA certificate " + quoted(opt.ca_dir / "ca.crt") + ": " + ok.error().message);
  auto ca_key = load_ed25519_private_key(opt.ca_dir / "ca.key");
  if (!ca_key) return report_error(ctx, ca_key.error().message);

  const fs::path key_path = opt.out_dir / (opt.name + ".key");
  const fs::path crt_path = opt.out_dir / (opt.name + ".crt");
  std::vector<fs::path> outputs{crt_path};
  if (opt.pubkey.empty()) outputs.push_back(key_path);
  if (auto refused = check_overwrite(outputs, opt.force)) return report_error(ctx, *refused);
  auto issued = read_issued(opt.ca_dir);
  if (!issued) return report_error(ctx, issued.error());
  if (auto refused = check_unique(*issued, opt.name, *vip, opt.force, issued_path(opt.ca_dir)))
    return report_error(ctx, *refused);

  std::optional<X25519KeyPair> node_key;
  Certificate cert;
  if (opt.pubkey.empty()) {
    node_key = X25519KeyPair::generate();
    cert.public_key = node_key->public_key();
  } else {
    auto pk = load_public_key(opt.pubkey);
    if (!pk) return report_error(ctx, pk.error().message);
    cert.public_key = *pk;
  }
  cert.name = opt.name;
  cert.vip = *vip;
  cert.vip6 = vip6;
  cert.role = *role;
  cert.groups.assign(groups.begin(), groups.end());
  auto signed_cert = sign_from_now(std::move(cert), *ca, *ca_key, *secs, opt.ca_dir, ctx);
  if (!signed_cert) return report_error(ctx, signed_cert.error());

  if (auto failed = ensure_dir(opt.out_dir, false)) return report_error(ctx, *failed);
  if (node_key) {
    if (auto ok = save_private_key(key_path, *node_key, opt.force); !ok)
      return report_error(ctx, ok.error().message);
  }
  if (auto ok = save_certificate(crt_path, *signed_cert, opt.force); !ok)
    return report_error(ctx, ok.error().message);
  if (auto failed = record_issued(opt.ca_dir, std::move(*issued),
                                  {signed_cert->name, signed_cert->vip, fingerprint(*signed_cert)}))
    return report_error(ctx, *failed);

  ctx.out << "issued " << summary(*signed_cert) << ", valid until "
          << format_utc(signed_cert->not_after) << "\n";
  if (node_key)
    ctx.out << "  " << key_path.string() << "  " << to_string(signed_cert->role)
            << " private key: copy it to that " << to_string(signed_cert->role) << " only\n";
  ctx.out << "  " << crt_path.string() << "  certificate\n"
          << "  fingerprint " << fingerprint(*signed_cert) << "\n";
  return kExitOk;
}

int run_renew(const IssueOptions& opt, const Context& ctx) {
  auto secs = validity_seconds(opt.valid);
  if (!secs) return report_error(ctx, "--valid '" + opt.valid + "': expected e.g. 365d or 12h");
  const fs::path crt_path = opt.cert.empty() ? opt.out_dir / (opt.name + ".crt") : opt.cert;
  auto old = load_certificate(crt_path);
  if (!old) return report_error(ctx, quoted(crt_path) + ": " + old.error().message);
  if (old->name != opt.name)
    return report_error(
        ctx, quoted(crt_path) + " is issued to '" + old->name + "', not '" + opt.name + "'");
  auto ca = load_ca_certificate(opt.ca_dir / "ca.crt");
  if (!ca) return report_error(ctx, ca.error().message);
  if (auto ok = verify_ca(*ca, ctx.now); !ok)
    return report_error(
        ctx, "CA certificate " + quoted(opt.ca_dir / "ca.crt") + ": " + ok.error().message);
  // Signed by this CA (checked as of its own start: an expired certificate may be renewed).
  if (auto ok = verify(*old, *ca, std::max(old->not_before, ca->not_before), VerifyPolicy{}); !ok)
    return report_error(ctx, quoted(crt_path) + ": " + ok.error().message);
  auto ca_key = load_ed25519_private_key(opt.ca_dir / "ca.key");
  if (!ca_key) return report_error(ctx, ca_key.error().message);
  auto issued = read_issued(opt.ca_dir);
  if (!issued) return report_error(ctx, issued.error());
  // Its name is its own to renew; its address must still be nobody else's.
  if (auto refused = check_unique(*issued, old->name, old->vip, true, issued_path(opt.ca_dir)))
    return report_error(ctx, *refused);

  Certificate cert = *old;
  auto signed_cert = sign_from_now(std::move(cert), *ca, *ca_key, *secs, opt.ca_dir, ctx);
  if (!signed_cert) return report_error(ctx, signed_cert.error());
  if (auto ok = save_certificate(crt_path, *signed_cert, true); !ok)
    return report_error(ctx, ok.error().message);
  if (auto failed = record_issued(opt.ca_dir, std::move(*issued),
                                  {signed_cert->name, signed_cert->vip, fingerprint(*signed_cert)}))
    return report_error(ctx, *failed);
  ctx.out << "renewed " << summary(*signed_cert) << ", valid until "
          << format_utc(signed_cert->not_after) << " (was " << format_utc(old->not_after) << ")\n"
          << "  " << crt_path.string() << "  certificate (same key; restart p2pvpnd to use it)\n"
          << "  fingerprint " << fingerprint(*signed_cert) << "\n";
  return kExitOk;
}

int run_cert_show(const fs::path& file, const Context& ctx) {
  auto text = read_armored_file(file, false);
  if (!text) return report_error(ctx, text.error().message);
  WipeGuard wipe(*text);  // in case the user pointed us at a private key
  auto label = armor_label(*text).value_or("");
  if (label == kCertificateLabel) {
    auto cert = certificate_from_armor(*text);
    if (!cert) return report_error(ctx, quoted(file) + ": " + cert.error().message);
    ctx.out << describe(*cert);
    return kExitOk;
  }
  if (label == kRevocationListLabel) {
    auto list = revocation_list_from_armor(*text);
    if (!list) return report_error(ctx, quoted(file) + ": " + list.error().message);
    ctx.out << describe(*list);
    return kExitOk;
  }
  if (label == kCaCertificateLabel) {
    auto ca = ca_certificate_from_armor(*text);
    if (!ca) return report_error(ctx, quoted(file) + ": " + ca.error().message);
    ctx.out << describe(*ca);
    return kExitOk;
  }
  if (label.find("PRIVATE") != std::string::npos)
    return report_error(ctx, quoted(file) + " holds a private key, not a certificate (not shown)");
  return report_error(ctx, quoted(file) + " is not a p2pvpn certificate" +
                               (label.empty() ? std::string() : " (it holds a " + label + ")"));
}

int run_cert_verify(const VerifyOptions& opt, const Context& ctx) {
  std::error_code ec;
  const fs::path ca_path = fs::is_directory(opt.ca, ec) ? opt.ca / "ca.crt" : opt.ca;
  auto ca = load_ca_certificate(ca_path);
  if (!ca) return report_error(ctx, ca.error().message);
  if (auto ok = verify_ca(*ca, ctx.now); !ok) {
    ctx.err << "FAILED: " << quoted(ca_path) << ": " << ok.error().message << "\n";
    return kExitFailure;
  }
  auto text = read_armored_file(opt.file, false);
  if (!text) return report_error(ctx, text.error().message);
  WipeGuard wipe(*text);

  if (armor_label(*text) == std::optional<std::string>(kCaCertificateLabel)) {
    auto other = ca_certificate_from_armor(*text);
    if (!other) return report_error(ctx, quoted(opt.file) + ": " + other.error().message);
    if (other->public_key != ca->public_key) {
      ctx.err << "FAILED: wrong CA: " << quoted(opt.file) << " is the CA certificate of '"
              << other->name << "' (key id " << to_hex(key_id(other->public_key)) << "), not of '"
              << ca->name << "'\n";
      return kExitFailure;
    }
    ctx.out << "OK: " << quoted(opt.file) << " is the CA certificate '" << ca->name
            << "', valid until " << format_utc(ca->not_after) << "\n";
    return kExitOk;
  }
  auto cert = certificate_from_armor(*text);
  if (!cert) return report_error(ctx, quoted(opt.file) + ": " + cert.error().message);
  if (auto ok = verify(*cert, *ca, ctx.now); !ok) {
    ctx.err << "FAILED: " << ok.error().message << "\n";
    return kExitFailure;
  }
  ctx.out << "OK: " << summary(*cert) << " is signed by CA '" << ca->name << "' and valid until "
          << format_utc(cert->not_after) << "\n";
  return kExitOk;
}

int run_key_generate(const KeyGenerateOptions& opt, const Context& ctx) {
  std::vector<fs::path> outputs{opt.out};
  if (!opt.pub.empty()) outputs.push_back(opt.pub);
  if (auto refused = check_overwrite(outputs, opt.force)) return report_error(ctx, *refused);
  auto key = X25519KeyPair::generate();
  if (auto ok = save_private_key(opt.out, key, opt.force); !ok)
    return report_error(ctx, ok.error().message);
  if (!opt.pub.empty()) {
    if (auto ok = save_public_key(opt.pub, key.public_key(), opt.force); !ok)
      return report_error(ctx, ok.error().message);
  }
  ctx.out << to_base64(key.public_key()) << "\n";
  return kExitOk;
}

int run_key_public(const fs::path& file, const Context& ctx) {
  auto key = load_x25519_private_key(file);
  if (!key) return report_error(ctx, key.error().message);
  ctx.out << to_base64(key->public_key()) << "\n";
  return kExitOk;
}

void add_cert_commands(CLI::App& app, const Context& ctx, int& exit_code) {
  // Option storage lives in shared_ptrs owned by the callbacks, hence by `app`.
  auto* ca = app.add_subcommand("ca", "Manage the network's certificate authority");
  ca->require_subcommand(1);
  auto init = std::make_shared<CaInitOptions>();
  auto* init_cmd =
      ca->add_subcommand("init", "Create the CA: DIR/ca.key (private, 0600) and DIR/ca.crt");
  init_cmd->add_option("--dir", init->dir, "Directory for ca.key and ca.crt")->required();
  init_cmd->add_option("--name", init->name, "CA name")->capture_default_str();
  init_cmd->add_option("--valid", init->valid, "Lifetime, e.g. 3650d")->capture_default_str();
  init_cmd->add_flag("--force", init->force, "Overwrite an existing CA (invalidates its certs)");
  init_cmd->callback([&ctx, &exit_code, init] { exit_code = run_ca_init(*init, ctx); });

  auto issue = std::make_shared<IssueOptions>();
  auto* issue_cmd = app.add_subcommand(
      "issue", "Issue a node certificate: OUTDIR/NAME.crt and, unless --pubkey, OUTDIR/NAME.key");
  issue_cmd->add_option("--ca", issue->ca_dir, "CA directory (ca.key, ca.crt)")->required();
  issue_cmd->add_option("--name", issue->name, "Node name")->required();
  issue_cmd->add_option("--ip", issue->ip,
                        "Virtual IPv4 with prefix, e.g. 10.77.0.2/24 (required unless --renew)");
  issue_cmd->add_option("--ip6", issue->ip6, "Virtual IPv6 with prefix, e.g. fd00::2/64");
  issue_cmd->add_option("--role", issue->role, "node or coordinator")->capture_default_str();
  issue_cmd->add_option("--groups", issue->groups, "Comma-separated groups, e.g. a,b")
      ->delimiter(',');
  issue_cmd->add_option("--valid", issue->valid, "Lifetime, e.g. 365d (capped at the CA's)")
      ->capture_default_str();
  issue_cmd->add_option("--pubkey", issue->pubkey,
                        "Certify this X25519 public key instead of generating a key");
  issue_cmd->add_option("--out", issue->out_dir, "Output directory")->required();
  issue_cmd->add_flag("--force", issue->force, "Overwrite existing output files");
  auto* renew_flag = issue_cmd->add_flag(
      "--renew", issue->renew,
      "Re-issue OUTDIR/NAME.crt (or --cert) for the same key, name and addresses with a new "
      "--valid; no key is written");
  issue_cmd->add_option("--cert", issue->cert, "With --renew: the certificate to renew")
      ->needs(renew_flag);
  issue_cmd->callback([&ctx, &exit_code, issue] { exit_code = run_issue(*issue, ctx); });

  auto* cert = app.add_subcommand("cert", "Inspect and check certificates (and revocation lists)");
  cert->require_subcommand(1);
  auto show_file = std::make_shared<fs::path>();
  auto* show_cmd =
      cert->add_subcommand("show", "Print a certificate (node or CA) or a revocation list");
  show_cmd->add_option("FILE", *show_file, "Certificate file")->required();
  show_cmd->callback([&ctx, &exit_code, show_file] { exit_code = run_cert_show(*show_file, ctx); });
  auto verify_opt = std::make_shared<VerifyOptions>();
  auto* verify_cmd = cert->add_subcommand(
      "verify", "Check a certificate against the CA; exit 1 with the reason if it fails");
  verify_cmd->add_option("--ca", verify_opt->ca, "CA certificate (ca.crt) or its directory")
      ->required();
  verify_cmd->add_option("FILE", verify_opt->file, "Certificate file")->required();
  verify_cmd->callback(
      [&ctx, &exit_code, verify_opt] { exit_code = run_cert_verify(*verify_opt, ctx); });

  auto* key = app.add_subcommand("key", "Manage node keys");
  key->require_subcommand(1);
  auto gen = std::make_shared<KeyGenerateOptions>();
  auto* gen_cmd = key->add_subcommand(
      "generate", "Create an X25519 key pair; prints the public key (for issue --pubkey)");
  gen_cmd->add_option("--out", gen->out, "Private key file (written with mode 0600)")->required();
  gen_cmd->add_option("--pub", gen->pub, "Also write the public key to this file");
  gen_cmd->add_flag("--force", gen->force, "Overwrite existing files");
  gen_cmd->callback([&ctx, &exit_code, gen] { exit_code = run_key_generate(*gen, ctx); });
  auto pub_file = std::make_shared<fs::path>();
  auto* pub_cmd = key->add_subcommand("public", "Print the public key of a private key file");
  pub_cmd->add_option("FILE", *pub_file, "Private key file")->required();
  pub_cmd->callback([&ctx, &exit_code, pub_file] { exit_code = run_key_public(*pub_file, ctx); });
}

}  // namespace p2p::ctl
