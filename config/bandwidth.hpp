// Amounts of data as written in configs: an integer followed by one unit, bit, kbit, mbit or
// gbit (decimal: 1 kbit = 1000 bit; the unit's case does not matter), e.g. "20mbit".
// A rate ("rate_limit: 20mbit") is such an amount per second. No unit, a fraction, a sign or
// an overflow is rejected (std::nullopt).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace p2p::config {

std::optional<std::uint64_t> parse_bits(std::string_view text);

}  // namespace p2p::config
