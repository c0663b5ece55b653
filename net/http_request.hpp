// The one HTTP/1.x request the metrics endpoint answers (GET /metrics), parsed without I/O from
// what a client sent so far, and the response to each outcome. Bounded: the parser looks at no
// more than `max_size` bytes, keeps no state between calls and never allocates.
//
// Accepted: "GET /metrics HTTP/1.0|1.1" (a query string is ignored), CRLF or LF line ends,
// header lines "name: value" whose names are tokens, up to the empty line. Anything else is
// refused: a request line or header that does not parse -> 400, another method -> 405,
// another path -> 404, no end of headers within max_size -> 431. Bodies are never read; the
// server closes the connection after every response.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace p2p::http {

enum class Verdict {
  kIncomplete,        // no end of headers yet, and below max_size: read more
  kMetrics,           // GET /metrics
  kBadRequest,        // 400
  kNotFound,          // 404
  kMethodNotAllowed,  // 405
  kTooLarge,          // 431
};

Verdict parse_request(std::string_view received, std::size_t max_size);

// The full response for a final verdict (not kIncomplete), with Connection: close. `body` is
// used for kMetrics only, with `content_type`; the refusals carry a one-line text.
std::string response(Verdict verdict, std::string_view body, std::string_view content_type);

}  // namespace p2p::http
