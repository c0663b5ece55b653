// Value types shared by mesh.yaml and coordinator.yaml.
#pragma once

#include <string_view>

namespace p2p::config {

enum class LogLevel { trace, debug, info, warn, error, off };
std::string_view to_string(LogLevel level);

// log: { level: info }
struct LogConfig {
  LogLevel level = LogLevel::info;
};

}  // namespace p2p::config
