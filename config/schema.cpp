#include "config/schema.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "config/bandwidth.hpp"
#include "config/duration.hpp"

namespace p2p::config {
namespace {

constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr std::size_t kMaxQuoted = 48;

// A scalar as it appears in messages: quoted, escaped, cut if long.
std::string quote_text(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == kMaxQuoted) return out + "...\"";
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string describe(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return quote_text(n.Scalar());
}

std::string join_key(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// Optimal string alignment distance: insertions, deletions, substitutions, transpositions.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string word_list(const std::vector<std::string_view>& words) {
  std::string out;
  for (auto w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

// Opens `p` for reading to prove it is readable; returns its stat, or fails `v`.
struct stat stat_readable_file(const Value& v, const std::filesystem::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    v.fail("cannot read file " + quote_text(p.string()) + ": " + std::strerror(errno));
  }
  struct stat st {};
  int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0 || !S_ISREG(st.st_mode)) v.fail(quote_text(p.string()) + " is not a regular file");
  return st;
}

// Notes where each document starts and ignores the rest.
class DocumentStarts final : public YAML::EventHandler {
 public:
  YAML::Mark last = YAML::Mark::null_mark();

  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// An amount in bits ("20mbit"), as whole bytes (at least one).
std::uint64_t read_bytes(const Value& v, std::string_view what) {
  auto bits = parse_bits(v.scalar(what));
  if (!bits || *bits < 8) v.expected(what);
  return *bits / 8;
}

}  // namespace

// --- Source, Value ---------------------------------------------------------------------------

Source Source::for_file(const std::filesystem::path& file_name) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(file_name, ec);
  if (ec) abs = file_name;
  return Source{file_name.string(), abs.lexically_normal().parent_path()};
}

std::filesystem::path Source::absolute_file() const {
  return (base_dir / std::filesystem::path(file).filename()).lexically_normal();
}

Value::Value(YAML::Node node, const Source& source, std::string path, YAML::Mark mark)
    : node_(std::move(node)), source_(&source), path_(std::move(path)), mark_(mark) {}

void Value::fail(const std::string& message) const {
  int line = mark_.is_null() ? 1 : mark_.line + 1;
  int column = mark_.is_null() ? 1 : mark_.column + 1;
  throw ConfigError(source_->file, line, column, path_, message);
}

void Value::expected(std::string_view what) const {
  fail("expected " + std::string(what) + ", got " + describe(node_));
}

void Value::fail_missing(std::string_view key) const {
  Value(YAML::Node(), *source_, join_key(path_, key), mark_).fail("missing required key");
}

std::string Value::scalar(std::string_view what) const {
  if (!node_.IsScalar()) expected(what);
  return node_.Scalar();
}

std::string Value::plain_scalar(std::string_view what) const {
  if (!node_.IsScalar() || node_.Tag() != "?") expected(what);
  return node_.Scalar();
}

std::vector<Value> Value::elements() const {
  std::vector<Value> out;
  if (is_null()) return out;
  if (!node_.IsSequence()) expected("a list");
  std::size_t i = 0;
  for (const auto& item : node_) {
    out.emplace_back(item, *source_, path_ + "[" + std::to_string(i++) + "]", item.Mark());
  }
  return out;
}

std::vector<Value::Entry> Value::entries() const {
  std::vector<Entry> out;
  if (is_null()) return out;
  if (!node_.IsMap()) expected("a mapping");
  for (const auto& kv : node_) {
    const YAML::Node& k = kv.first;
    Value key_node(k, *source_, path_, k.Mark());
    if (!k.IsScalar()) key_node.fail("a key must be a plain word, got " + describe(k));
    std::string key = k.Scalar();
    std::string path = join_key(path_, key);
    // An empty value has no position of its own worth showing; point at its key.
    YAML::Mark mark = kv.second.IsNull() ? k.Mark() : kv.second.Mark();
    out.push_back(
        Entry{key, Value(k, *source_, path, k.Mark()), Value(kv.second, *source_, path, mark)});
  }
  return out;
}

std::optional<Value> Value::child(std::string_view key) const {
  for (auto& e : entries()) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

// --- Mappings --------------------------------------------------------------------------------

std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 0;
  for (auto c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  // A typo changes a few characters, not most of the word.
  std::size_t allowed = std::min<std::size_t>(3, std::max<std::size_t>(1, word.size() / 2));
  if (!best || best_distance > allowed) return std::nullopt;
  return best;
}

std::vector<Value::Entry> checked_entries(const Value& map,
                                          const std::vector<std::string_view>& known) {
  auto entries = map.entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    for (std::size_t j = 0; j < i; ++j) {
      if (entries[j].key == e.key) {
        e.key_node.fail("duplicate key (first given on line " +
                        std::to_string(entries[j].key_node.node().Mark().line + 1) + ")");
      }
    }
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    std::string message = "unknown key " + quote_text(e.key);
    if (auto guess = closest_match(e.key, known)) {
      message += "; did you mean '" + std::string(*guess) + "'?";
    } else {
      message += "; known keys here: " + word_list(known);
    }
    e.key_node.fail(message);
  }
  return entries;
}

// --- Readers ---------------------------------------------------------------------------------

std::string read_text(const Value& v) {
  std::string s = v.scalar("a text value");
  if (s.empty()) v.fail("expected a text value, got an empty string");
  if (has_control_chars(s)) v.fail("control characters are not allowed, got " + quote_text(s));
  return s;
}

bool read_bool(const Value& v) {
  std::string s = v.plain_scalar("true or false");
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  v.expected("true or false");
}

std::int64_t read_integer(const Value& v, std::int64_t lo, std::int64_t hi) {
  std::string what = "an integer " + std::to_string(lo) + ".." + std::to_string(hi);
  std::string s = v.plain_scalar(what);
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  bool leading_zero = digits.size() > 1 && digits.front() == '0';
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || leading_zero || ec != std::errc() || end != s.data() + s.size() || n < lo ||
      n > hi) {
    v.expected(what);
  }
  return n;
}

std::chrono::milliseconds read_duration(const Value& v, std::chrono::milliseconds lo,
                                        std::chrono::milliseconds hi) {
  std::string what = "a duration " + format_duration(lo) + ".." + format_duration(hi) +
                     " (units ms, s, m, h, d, w, e.g. \"25s\")";
  auto d = parse_duration(v.scalar(what));
  if (!d || *d < lo || *d > hi) v.expected(what);
  return *d;
}

IpAddress read_ip(const Value& v) {
  auto ip = parse_ip(v.scalar("an IPv4 or IPv6 address"));
  if (!ip) v.expected("an IPv4 or IPv6 address");
  return *ip;
}

Ipv4 read_ipv4(const Value& v) {
  auto ip = Ipv4::parse(v.scalar("an IPv4 address"));
  if (!ip) v.expected("an IPv4 address");
  return *ip;
}

Ipv4Prefix read_ipv4_prefix(const Value& v) {
  constexpr std::string_view kWhat = "an IPv4 address with prefix length, e.g. 10.77.0.2/24";
  auto p = Ipv4Prefix::parse(v.scalar(kWhat));
  if (!p) v.expected(kWhat);
  return *p;
}

Endpoint read_endpoint(const Value& v) {
  constexpr std::string_view kWhat = "IP:PORT (IPv6 as [addr]:port), port 1..65535";
  auto e = Endpoint::parse(v.scalar(kWhat));
  if (!e || e->port == 0) v.expected(kWhat);
  return *e;
}

Endpoint read_remote_endpoint(const Value& v) {
  Endpoint e = read_endpoint(v);
  if (e.address == IpAddress{Ipv4{}} || e.address == IpAddress{Ipv6{}}) {
    v.fail("expected a specific address to reach, got the unspecified address " +
           quote_text(e.to_string()));
  }
  return e;
}

std::filesystem::path read_path(const Value& v) {
  std::string text = read_text(v);
  if (text.front() == '~') v.fail("'~' is not expanded here; write the full path");
  std::filesystem::path p = text;
  if (p.is_relative()) p = v.source().base_dir / p;
  return p.lexically_normal();
}

std::filesystem::path read_readable_file(const Value& v) {
  auto p = read_path(v);
  stat_readable_file(v, p);
  return p;
}

std::filesystem::path read_private_key_file(const Value& v) {
  auto p = read_path(v);
  auto mode = stat_readable_file(v, p).st_mode & 0777;
  if ((mode & 077) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    v.fail("key file " + quote_text(p.string()) + " (mode " + octal + ") is " +
           ((mode & 044) != 0 ? "readable" : "accessible") + " by group/others; run chmod 600 " +
           p.string());
  }
  return p;
}

std::string read_fingerprint(const Value& v) {
  constexpr std::string_view kWhat = "a certificate fingerprint (64 hex digits)";
  std::string s = v.scalar(kWhat);
  if (s.size() != 64 || !std::all_of(s.begin(), s.end(), [](char c) { return hex_digit(c) >= 0; }))
    v.expected(kWhat);
  std::transform(s.begin(), s.end(), s.begin(), [](char c) {
    return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return s;
}

std::uint64_t read_rate(const Value& v) {
  return read_bytes(
      v, "a rate such as \"20mbit\" (bit, kbit, mbit or gbit per second, at least 8bit)");
}

std::uint64_t read_data_size(const Value& v) {
  return read_bytes(v, "an amount such as \"4mbit\" (bit, kbit, mbit or gbit, at least 8bit)");
}

std::size_t read_choice(const Value& v, const std::vector<std::string_view>& names) {
  std::string what = "one of " + word_list(names);
  std::string s = v.scalar(what);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == s) return i;
  }
  std::string message = "expected " + what + ", got " + quote_text(s);
  if (auto guess = closest_match(s, names))
    message += "; did you mean '" + std::string(*guess) + "'?";
  v.fail(message);
}

// --- Documents -------------------------------------------------------------------------------

YAML::Node parse_document(std::string_view text, const Source& source) {
  // Count documents with a bare parser first: YAML::LoadAll never returns on some inputs
  // (a stray top-level ',' reads as endless empty documents), and one document is the rule.
  std::string copy(text);
  std::istringstream in(copy);
  YAML::Parser parser(in);
  DocumentStarts docs;
  if (!parser.HandleNextDocument(docs)) return YAML::Node();
  if (parser.HandleNextDocument(docs)) {
    Value(YAML::Node(), source, "", docs.last)
        .fail("a config file holds one YAML document, found another one (or stray text) here");
  }
  return YAML::Load(copy);
}

void throw_yaml_error(const YAML::Exception& e, const Source& source) {
  bool known = !e.mark.is_null();
  throw ConfigError(source.file, known ? e.mark.line + 1 : 1, known ? e.mark.column + 1 : 1, "",
                    "invalid YAML: " + e.msg);
}

std::string read_config_file(const std::filesystem::path& file) {
  auto fail = [&](const std::string& why) { throw ConfigError(file.string(), 0, 0, "", why); };
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail(std::string("cannot read: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot read: not a regular file");
  }
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxConfigBytes) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  int read_errno = errno;
  ::close(fd);
  if (n < 0) fail(std::string("cannot read: ") + std::strerror(read_errno));
  if (text.size() > kMaxConfigBytes) fail("larger than 1 MiB, which no config file is");
  return text;
}

}  // namespace p2p::config
