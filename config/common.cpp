#include "config/common.hpp"

#include "config/common_schema.hpp"
#include "crypto/certificate.hpp"

namespace p2p::config {

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
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

const Schema<MetricsConfig>& metrics_schema() {
  static const Schema<MetricsConfig> schema{{
      {"listen", kRequired, into(&MetricsConfig::listen, read_endpoint)},
  }};
  return schema;
}

std::vector<std::string> read_revoked(const Value& v) {
  return list_of(read_fingerprint, 0, [](const std::string& fp) { return fp; })(v);
}

std::string read_node_name(const Value& v) {
  std::string s = read_text(v);
  if (!crypto::valid_name(s)) {
    v.expected(
        "a node name (1..63 letters, digits, '.', '_' or '-', starting with a letter or digit)");
  }
  return s;
}

}  // namespace p2p::config
