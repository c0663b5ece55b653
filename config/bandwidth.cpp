#include "config/bandwidth.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <string>

namespace p2p::config {

std::optional<std::uint64_t> parse_bits(std::string_view text) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::uint64_t scale = 0;
  if (unit == "bit")
    scale = 1;
  else if (unit == "kbit")
    scale = 1'000;
  else if (unit == "mbit")
    scale = 1'000'000;
  else if (unit == "gbit")
    scale = 1'000'000'000;
  else
    return std::nullopt;
  if (n > std::numeric_limits<std::uint64_t>::max() / scale) return std::nullopt;
  return n * scale;
}

}  // namespace p2p::config
