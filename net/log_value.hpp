// log_value: a value as it goes after `key=` in a log line. Plain words stay as they are; a
// value with a space, a quote, a '=' or nothing at all is double-quoted with '"' and '\'
// escaped, so `nat type="open internet" server=...` splits into keys unambiguously.
#pragma once

#include <string>
#include <string_view>

namespace p2p {

inline std::string log_value(std::string_view v) {
  const bool plain = !v.empty() && v.find_first_of(" \t\"=\\") == std::string_view::npos;
  if (plain) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace p2p
