// Value types shared by mesh.yaml and coordinator.yaml.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace p2p::config {

enum class LogLevel { trace, debug, info, warn, error, off };
std::string_view to_string(LogLevel level);

// log: { level: info }
struct LogConfig {
  LogLevel level = LogLevel::info;
};

// A certificate fingerprint as listed under `revoked:` (32 bytes, written as 64 hex digits).
using Fingerprint = std::array<std::uint8_t, 32>;

}  // namespace p2p::config
