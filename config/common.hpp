// Value types shared by mesh.yaml and coordinator.yaml.
#pragma once

#include <optional>
#include <string_view>

#include "net/ip.hpp"

namespace p2p::config {

enum class LogLevel { trace, debug, info, warn, error, off };
std::string_view to_string(LogLevel level);

// log: { level: info }
struct LogConfig {
  LogLevel level = LogLevel::info;
};

// metrics: { listen: 127.0.0.1:9101 }: the Prometheus endpoint (GET /metrics over HTTP);
// no `metrics` section, no endpoint. Anyone who can connect can read it (peer names, virtual
// IPs, traffic): keep it on loopback or a management network.
struct MetricsConfig {
  std::optional<Endpoint> listen;
};

}  // namespace p2p::config
