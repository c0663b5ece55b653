// Fuzz target for the /metrics request parser (net/http_request.hpp) and the exposition
// writer's escaping (net/metrics.hpp).
// - parse_request() never crashes, and its verdict for a prefix of at most max_size bytes
//   does not depend on anything after max_size (it never reads past its cap);
// - a final verdict stays final when more bytes arrive (a server may answer at once);
// - the response is well-formed and never echoes the request;
// - an escaped label value has no raw newline and no unescaped quote.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/http_request.hpp"
#include "net/metrics.hpp"

using namespace p2p;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t kMax = 512;
  auto verdict = http::parse_request(in, kMax);
  if (size > kMax) check(verdict == http::parse_request(in.substr(0, kMax), kMax));
  for (std::size_t cut = 0; cut < size && cut < kMax; cut += 1 + cut / 4) {
    auto early = http::parse_request(in.substr(0, cut), kMax);
    if (early != http::Verdict::kIncomplete && early != http::Verdict::kTooLarge) {
      check(early == verdict);
    }
  }
  if (verdict != http::Verdict::kIncomplete) {
    auto r = http::response(verdict, "m 1\n", metrics::kContentType);
    check(r.starts_with("HTTP/1.1 "));
    check(r.find("\r\n\r\n") != std::string::npos);
    check(verdict == http::Verdict::kMetrics || r.find("m 1\n") == std::string::npos);
  }
  auto escaped = metrics::escape_label_value(in);
  check(escaped.find('\n') == std::string::npos);
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\') {
      check(i + 1 < escaped.size());
      ++i;
    } else {
      check(escaped[i] != '"');
    }
  }
  return 0;
}
