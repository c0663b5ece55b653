// Human durations as written in configs and on command lines: an integer followed by one
// unit, ms, s, m, h, d or w ("250ms", "25s", "365d"). No unit, a fraction, a sign, or a value
// that overflows is rejected (std::nullopt).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace p2p::config {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);

}  // namespace p2p::config
