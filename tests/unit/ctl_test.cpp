// p2pvpnctl driven as a user would: the built binary run in a fresh temp directory, checking
// exit codes, what lands on stdout/stderr, and the files and modes it leaves behind.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "crypto/certificate.hpp"
#include "crypto/keys.hpp"
#include "tests/support/spawn.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::crypto {
namespace {

namespace fs = std::filesystem;

const fs::path kCtl = fs::path(P2P_BINARY_DIR) / "daemon" / "p2pvpnctl";

using Result = test::RunResult;

using test::read_file;

class Ctl : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kCtl)) << kCtl << " is not built (ninja p2pvpnctl)";
  }

  // Runs p2pvpnctl with `args` in dir_, capturing stdout and stderr.
  Result ctl(std::vector<std::string> args) {
    args.insert(args.begin(), kCtl.string());
    return test::run(args, dir_);
  }

  Result ok(std::vector<std::string> args) {
    Result r = ctl(args);
    EXPECT_EQ(r.code, 0) << "stdout: " << r.out << "\nstderr: " << r.err;
    return r;
  }

  void make_ca(const std::string& dir = "ca", std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"ca", "init", "--dir", dir};
    args.insert(args.end(), extra.begin(), extra.end());
    ok(args);
  }

  test::TempDir tmp_{"p2p-ctl"};
  const fs::path dir_ = tmp_.path();
};

#define EXPECT_CONTAINS(haystack, needle)                                                       \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                        << (haystack)

TEST_F(Ctl, EveryCommandHasHelp) {
  const std::vector<std::vector<std::string>> commands = {{},
                                                          {"ca"},
                                                          {"ca", "init"},
                                                          {"issue"},
                                                          {"cert"},
                                                          {"cert", "show"},
                                                          {"cert", "verify"},
                                                          {"key"},
                                                          {"key", "generate"},
                                                          {"key", "public"}};
  for (auto args : commands) {
    args.push_back("--help");
    Result r = ok(args);
    EXPECT_CONTAINS(r.out, "Usage:");
  }
  EXPECT_CONTAINS(ok({"issue", "--help"}).out, "--pubkey");
  EXPECT_CONTAINS(ok({"ca", "init", "--help"}).out, "--force");
}

TEST_F(Ctl, UsageErrorsExitNonZero) {
  EXPECT_NE(ctl({}).code, 0);
  EXPECT_NE(ctl({"frobnicate"}).code, 0);
  Result r = ctl({"ca", "init"});
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err, "--dir");
  EXPECT_NE(ctl({"cert", "show"}).code, 0);
}

TEST_F(Ctl, CaInitWritesAPrivateKeyAndACertificate) {
  Result r = ok({"ca", "init", "--dir", "ca", "--name", "acme-net"});
  EXPECT_CONTAINS(r.out, "acme-net");
  EXPECT_EQ(test::file_mode(dir_ / "ca" / "ca.key"), 0600u);
  EXPECT_EQ(test::file_mode(dir_ / "ca"), 0700u) << "a new CA directory is private";
  auto ca = load_ca_certificate(dir_ / "ca" / "ca.crt");
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_EQ(ca->name, "acme-net");
  auto key = load_ed25519_private_key(dir_ / "ca" / "ca.key");
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->public_key(), ca->public_key);
  // Default lifetime 3650 days.
  EXPECT_NEAR(static_cast<double>(ca->not_after - ca->not_before), 3650.0 * 86400, 3600);

  Result show = ok({"cert", "show", "ca/ca.crt"});
  EXPECT_CONTAINS(show.out, "CA (self-signed)");
  EXPECT_CONTAINS(show.out, "key id:      " + to_hex(key_id(ca->public_key)));
}

TEST_F(Ctl, CaInitRefusesToOverwriteWithoutForce) {
  make_ca();
  const std::string before = read_file(dir_ / "ca" / "ca.crt");
  Result r = ctl({"ca", "init", "--dir", "ca"});
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err, "already exists");
  EXPECT_CONTAINS(r.err, "--force");
  EXPECT_EQ(read_file(dir_ / "ca" / "ca.crt"), before);

  // Only one of the two files present still counts as "exists".
  fs::remove(dir_ / "ca" / "ca.crt");
  EXPECT_NE(ctl({"ca", "init", "--dir", "ca"}).code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "ca" / "ca.crt")) << "a refused command writes nothing";

  ok({"ca", "init", "--dir", "ca", "--force"});
  EXPECT_NE(read_file(dir_ / "ca" / "ca.crt"), before);
  EXPECT_EQ(test::file_mode(dir_ / "ca" / "ca.key"), 0600u);
}

TEST_F(Ctl, IssueShowVerify) {
  make_ca("ca", {"--name", "acme"});
  Result issued = ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--ip6",
                      "fd00::2/64", "--groups", "ops,db", "--valid", "30d", "--out", "nodes"});
  EXPECT_CONTAINS(issued.out, "alice");
  EXPECT_EQ(test::file_mode(dir_ / "nodes" / "alice.key"), 0600u);
  ASSERT_TRUE(fs::exists(dir_ / "nodes" / "alice.crt"));

  // The certificate certifies the key written next to it.
  auto key = load_x25519_private_key(dir_ / "nodes" / "alice.key");
  auto cert = load_certificate(dir_ / "nodes" / "alice.crt");
  ASSERT_TRUE(key && cert);
  EXPECT_EQ(cert->public_key, key->public_key());
  EXPECT_EQ(cert->not_after - cert->not_before, 30 * 86400 + 300) << "30 days, backdated 5 min";

  // Private key bytes never reach the terminal.
  const std::string secret = to_base64(key->private_key().span());
  EXPECT_EQ(issued.out.find(secret), std::string::npos);
  EXPECT_EQ(issued.err.find(secret), std::string::npos);

  Result show = ok({"cert", "show", "nodes/alice.crt"});
  auto ca = load_ca_certificate(dir_ / "ca" / "ca.crt");
  for (const std::string& want :
       {std::string("name:        alice"), std::string("role:        node"),
        std::string("vip:         10.77.0.2/24"), std::string("vip6:        fd00::2/64"),
        std::string("groups:      db, ops"), format_utc(cert->not_after),
        to_base64(cert->public_key), fingerprint(*cert), to_hex(key_id(ca->public_key))})
    EXPECT_CONTAINS(show.out, want);

  Result verified = ok({"cert", "verify", "--ca", "ca/ca.crt", "nodes/alice.crt"});
  EXPECT_EQ(verified.out.rfind("OK", 0), 0u) << verified.out;
  ok({"cert", "verify", "--ca", "ca", "nodes/alice.crt"});  // the CA directory works too
  ok({"cert", "verify", "--ca", "ca/ca.crt", "ca/ca.crt"});
}

TEST_F(Ctl, CoordinatorRole) {
  make_ca();
  ok({"issue", "--ca", "ca", "--name", "coord", "--ip", "10.77.0.1/24", "--role", "coordinator",
      "--out", "."});
  EXPECT_CONTAINS(ok({"cert", "show", "coord.crt"}).out, "role:        coordinator");
  Result bad = ctl({"issue", "--ca", "ca", "--name", "x", "--ip", "10.77.0.9/24", "--role", "king",
                    "--out", "."});
  EXPECT_NE(bad.code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "x.crt"));
}

TEST_F(Ctl, VerifyAgainstAnotherCaSaysWrongCa) {
  make_ca("ca1");
  make_ca("ca2");
  ok({"issue", "--ca", "ca1", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "out"});
  Result r = ctl({"cert", "verify", "--ca", "ca2/ca.crt", "out/alice.crt"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "wrong CA");
  EXPECT_EQ(r.out, "");
  Result ca_vs_ca = ctl({"cert", "verify", "--ca", "ca2/ca.crt", "ca1/ca.crt"});
  EXPECT_EQ(ca_vs_ca.code, 1);
  EXPECT_CONTAINS(ca_vs_ca.err, "wrong CA");
}

TEST_F(Ctl, VerifyExpiredCertificate) {
  make_ca();
  ok({"issue", "--ca", "ca", "--name", "brief", "--ip", "10.77.0.3/24", "--valid", "0s", "--out",
      "out"});
  Result r = ctl({"cert", "verify", "--ca", "ca/ca.crt", "out/brief.crt"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "expired");
}

TEST_F(Ctl, VerifyTamperedCertificateSaysBadSignature) {
  make_ca();
  ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "out"});
  auto cert = load_certificate(dir_ / "out" / "alice.crt");
  ASSERT_TRUE(cert);
  cert->vip = *Ipv4Prefix::parse("10.77.0.99/24");  // claim another address
  ASSERT_TRUE(save_certificate(dir_ / "out" / "alice.crt", *cert, true));
  Result r = ctl({"cert", "verify", "--ca", "ca/ca.crt", "out/alice.crt"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "bad signature");
}

TEST_F(Ctl, IssueRefusesACaKeyOthersCanRead) {
  make_ca();
  ASSERT_EQ(::chmod((dir_ / "ca" / "ca.key").c_str(), 0644), 0);
  Result r =
      ctl({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "out"});
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err, "chmod 600");
  EXPECT_FALSE(fs::exists(dir_ / "out" / "alice.crt"));
  ASSERT_EQ(::chmod((dir_ / "ca" / "ca.key").c_str(), 0600), 0);
  ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "out"});
}

TEST_F(Ctl, IssueRefusesToOverwriteWithoutForce) {
  make_ca();
  const std::vector<std::string> args{"issue", "--ca",         "ca",    "--name", "alice",
                                      "--ip",  "10.77.0.2/24", "--out", "out"};
  ok(args);
  const std::string key = read_file(dir_ / "out" / "alice.key");
  Result r = ctl(args);
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err, "already exists");
  EXPECT_EQ(read_file(dir_ / "out" / "alice.key"), key);
  auto forced = args;
  forced.push_back("--force");
  ok(forced);
  EXPECT_NE(read_file(dir_ / "out" / "alice.key"), key);
  EXPECT_EQ(test::file_mode(dir_ / "out" / "alice.key"), 0600u);
}

TEST_F(Ctl, IssueForAKeyGeneratedOnTheNode) {
  make_ca();
  Result gen = ok({"key", "generate", "--out", "node.key", "--pub", "node.pub"});
  EXPECT_EQ(test::file_mode(dir_ / "node.key"), 0600u);
  const std::string pub = gen.out.substr(0, gen.out.find('\n'));
  EXPECT_EQ(ok({"key", "public", "node.key"}).out, pub + "\n");

  ok({"issue", "--ca", "ca", "--name", "bob", "--ip", "10.77.0.5/24", "--pubkey", "node.pub",
      "--out", "out"});
  EXPECT_FALSE(fs::exists(dir_ / "out" / "bob.key")) << "no private key when --pubkey is given";
  auto cert = load_certificate(dir_ / "out" / "bob.crt");
  ASSERT_TRUE(cert);
  EXPECT_EQ(to_base64(cert->public_key), pub);

  // A private key passed as --pubkey is refused without echoing it.
  Result wrong = ctl({"issue", "--ca", "ca", "--name", "eve", "--ip", "10.77.0.6/24", "--pubkey",
                      "node.key", "--out", "out"});
  EXPECT_NE(wrong.code, 0);
  EXPECT_CONTAINS(wrong.err, "private key");
  // `cert show` on a key file prints nothing of it.
  Result show = ctl({"cert", "show", "node.key"});
  EXPECT_NE(show.code, 0);
  EXPECT_EQ(show.out, "");
  EXPECT_CONTAINS(show.err, "private key");
}

TEST_F(Ctl, ValidityIsCappedAtTheCasExpiry) {
  make_ca("ca", {"--valid", "10d"});
  Result r = ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--valid",
                 "365d", "--out", "out"});
  EXPECT_CONTAINS(r.err, "shortened");
  auto ca = load_ca_certificate(dir_ / "ca" / "ca.crt");
  auto cert = load_certificate(dir_ / "out" / "alice.crt");
  ASSERT_TRUE(ca && cert);
  EXPECT_EQ(cert->not_after, ca->not_after);
}

TEST_F(Ctl, IssueRejectsBadInputWithAReason) {
  make_ca();
  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {{"--name", "al ice", "--ip", "10.77.0.2/24"}, "--name"},
      {{"--name", "alice", "--ip", "10.77.0.2"}, "--ip"},
      {{"--name", "alice", "--ip", "10.77.0.300/24"}, "--ip"},
      {{"--name", "alice", "--ip", "10.77.0.2/24", "--ip6", "fd00::2"}, "--ip6"},
      {{"--name", "alice", "--ip", "10.77.0.2/24", "--valid", "forever"}, "--valid"},
      {{"--name", "alice", "--ip", "10.77.0.2/24", "--groups", "a,a"}, "twice"},
      {{"--name", "alice", "--ip", "10.77.0.2/24", "--groups", "a,b c"}, "--groups"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"issue", "--ca", "ca", "--out", "out"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Result r = ctl(args);
    EXPECT_NE(r.code, 0) << c.reason;
    EXPECT_CONTAINS(r.err, c.reason);
  }
  EXPECT_FALSE(fs::exists(dir_ / "out")) << "nothing written for rejected input";
  Result no_ca =
      ctl({"issue", "--ca", "nowhere", "--name", "a", "--ip", "10.0.0.1/8", "--out", "o"});
  EXPECT_NE(no_ca.code, 0);
  EXPECT_CONTAINS(no_ca.err, "nowhere/ca.crt");
}

// CA_DIR/issued.txt keeps every name and virtual IP handed out, whatever --out was.
TEST_F(Ctl, IssueRefusesATakenAddressOrNameAndTheNetworkAddresses) {
  make_ca();
  ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "nodes"});
  Result r =
      ctl({"issue", "--ca", "ca", "--name", "bob", "--ip", "10.77.0.2/24", "--out", "others"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--ip 10.77.0.2 is already issued to 'alice'");
  EXPECT_FALSE(fs::exists(dir_ / "others" / "bob.crt"));
  r = ctl({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.9/24", "--out", "others"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--name 'alice' is already issued (10.77.0.2/24");
  EXPECT_CONTAINS(r.err, "--force");
  EXPECT_FALSE(fs::exists(dir_ / "others" / "alice.crt"));
  r = ctl({"issue", "--ca", "ca", "--name", "net", "--ip", "10.77.0.0/24", "--out", "nodes"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "network address of 10.77.0.0/24");
  r = ctl({"issue", "--ca", "ca", "--name", "bcast", "--ip", "10.77.0.255/24", "--out", "nodes"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "broadcast address of 10.77.0.0/24");
  ok({"issue", "--ca", "ca", "--name", "p2p", "--ip", "10.78.0.0/31", "--out", "nodes"});

  // --force re-issues a name, at a new address too; the record keeps one line per name.
  ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.9/24", "--out", "others",
      "--force"});
  const std::string record = read_file(dir_ / "ca" / "issued.txt");
  EXPECT_EQ(record.find("alice 10.77.0.2/24"), std::string::npos) << record;
  EXPECT_CONTAINS(record, "alice 10.77.0.9/24 ");
  EXPECT_CONTAINS(record, "p2p 10.78.0.0/31 ");
  ok({"issue", "--ca", "ca", "--name", "bob", "--ip", "10.77.0.2/24", "--out", "nodes"});  // freed
}

TEST_F(Ctl, IssueNamesTheKeyAfterTheRole) {
  make_ca();
  Result r = ok({"issue", "--ca", "ca", "--name", "coord", "--ip", "10.77.0.1/24", "--role",
                 "coordinator", "--out", "."});
  EXPECT_CONTAINS(r.out, "coordinator private key: copy it to that coordinator only");
  EXPECT_EQ(r.out.find("node private key"), std::string::npos) << r.out;
  r = ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--out", "."});
  EXPECT_CONTAINS(r.out, "node private key: copy it to that node only");
}

// issue --renew: the same key, name and address under a new validity, even once expired;
// the record keeps one line for the name, with the new fingerprint.
TEST_F(Ctl, RenewKeepsTheKeyAndNameWithANewValidity) {
  make_ca();
  ok({"issue", "--ca", "ca", "--name", "alice", "--ip", "10.77.0.2/24", "--valid", "0s", "--out",
      "out"});
  auto before = load_certificate(dir_ / "out" / "alice.crt");
  ASSERT_TRUE(before);
  Result r =
      ok({"issue", "--ca", "ca", "--name", "alice", "--renew", "--valid", "20d", "--out", "out"});
  EXPECT_CONTAINS(r.out, "renewed 'alice' (node, 10.77.0.2/24)");
  auto after = load_certificate(dir_ / "out" / "alice.crt");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->public_key, before->public_key);
  EXPECT_EQ(after->vip, before->vip);
  EXPECT_GT(after->not_after, before->not_after + 19 * 86400);
  ok({"cert", "verify", "--ca", "ca/ca.crt", "out/alice.crt"});
  std::ifstream record(dir_ / "ca" / "issued.txt");
  std::string text((std::istreambuf_iterator<char>(record)), std::istreambuf_iterator<char>());
  EXPECT_CONTAINS(text, "alice 10.77.0.2/24 " + fingerprint(*after));
  EXPECT_EQ(text.find(fingerprint(*before)), std::string::npos);

  // Another name's certificate, and issue without --ip, are refused.
  Result bad = ctl({"issue", "--ca", "ca", "--name", "bob", "--renew", "--cert", "out/alice.crt",
                    "--out", "out"});
  EXPECT_NE(bad.code, 0);
  EXPECT_CONTAINS(bad.err, "is issued to 'alice', not 'bob'");
  bad = ctl({"issue", "--ca", "ca", "--name", "carol", "--out", "out"});
  EXPECT_NE(bad.code, 0);
  EXPECT_CONTAINS(bad.err, "--ip is required");
}

}  // namespace
}  // namespace p2p::crypto
