#include "config/duration.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace p2p::config {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  std::uint64_t ms_per = 0;
  if (unit == "ms") ms_per = 1;
  else if (unit == "s") ms_per = 1000;
  else if (unit == "m") ms_per = 60'000;
  else if (unit == "h") ms_per = 3'600'000;
  else if (unit == "d") ms_per = 86'400'000;
  else if (unit == "w") ms_per = 604'800'000;
  else return std::nullopt;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (n > kMax / ms_per) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(n * ms_per));
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  struct Unit { const char* name; long long size; };
  for (Unit u : {Unit{"w", 604'800'000}, Unit{"d", 86'400'000}, Unit{"h", 3'600'000},
                 Unit{"m", 60'000}, Unit{"s", 1000}}) {
    if (ms != 0 && ms % u.size == 0) return std::to_string(ms / u.size) + u.name;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace p2p::config
