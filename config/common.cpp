#include "config/common.hpp"

#include <algorithm>
#include <cctype>

#include "config/common_schema.hpp"

namespace p2p::config {
namespace {

std::string hex(const Fingerprint& f) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto b : f) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

}  // namespace

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      return "off";
  }
  return "?";
}

const Schema<LogConfig>& log_schema() {
  static const Schema<LogConfig> schema{{
      {"level", kOptional,
       into(&LogConfig::level, one_of<LogLevel>({{"trace", LogLevel::trace},
                                                 {"debug", LogLevel::debug},
                                                 {"info", LogLevel::info},
                                                 {"warn", LogLevel::warn},
                                                 {"error", LogLevel::error},
                                                 {"off", LogLevel::off}}))},
  }};
  return schema;
}

std::vector<Fingerprint> read_revoked(const Value& v) {
  return list_of(read_fingerprint, 0, hex)(v);
}

std::string read_node_name(const Value& v) {
  std::string s = read_text(v);
  auto ok_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  };
  if (s.size() > 63 || !std::isalnum(static_cast<unsigned char>(s.front())) ||
      !std::all_of(s.begin(), s.end(), ok_char)) {
    v.expected(
        "a node name (1..63 letters, digits, '.', '_' or '-', starting with a letter or digit)");
  }
  return s;
}

}  // namespace p2p::config
