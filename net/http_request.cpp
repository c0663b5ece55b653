#include "net/http_request.hpp"

#include <algorithm>

namespace p2p::http {

namespace {

// RFC 9110 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Visible ASCII, space and tab: what a header value or a request target may hold here.
bool is_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

// Splits off the next line (without its CR LF or LF); false when no line end is left.
bool next_line(std::string_view& rest, std::string_view& line) {
  auto nl = rest.find('\n');
  if (nl == std::string_view::npos) return false;
  line = rest.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  rest.remove_prefix(nl + 1);
  return true;
}

Verdict parse_request_line(std::string_view line) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Verdict::kBadRequest;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Verdict::kBadRequest;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target[0] != '/' || !is_text(target) ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return Verdict::kBadRequest;
  }
  if (method != "GET") return Verdict::kMethodNotAllowed;
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/metrics" ? Verdict::kMetrics : Verdict::kNotFound;
}

}  // namespace

Verdict parse_request(std::string_view received, std::size_t max_size) {
  std::string_view rest = received.substr(0, max_size);
  std::string_view line;
  if (!next_line(rest, line)) {
    return received.size() >= max_size ? Verdict::kTooLarge : Verdict::kIncomplete;
  }
  Verdict verdict = parse_request_line(line);
  if (verdict == Verdict::kBadRequest) return verdict;  // at once: no need to wait for more
  while (true) {
    if (!next_line(rest, line)) {
      return received.size() >= max_size ? Verdict::kTooLarge : Verdict::kIncomplete;
    }
    if (line.empty()) return verdict;
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)) ||
        !is_text(line.substr(colon + 1))) {
      return Verdict::kBadRequest;
    }
  }
}

std::string response(Verdict verdict, std::string_view body, std::string_view content_type) {
  std::string_view status = "200 OK";
  std::string_view text_type = "text/plain; charset=utf-8";
  switch (verdict) {
    case Verdict::kMetrics: break;
    case Verdict::kIncomplete:
    case Verdict::kBadRequest: status = "400 Bad Request"; break;
    case Verdict::kNotFound: status = "404 Not Found"; break;
    case Verdict::kMethodNotAllowed: status = "405 Method Not Allowed"; break;
    case Verdict::kTooLarge: status = "431 Request Header Fields Too Large"; break;
  }
  std::string refusal;
  if (verdict != Verdict::kMetrics) {
    refusal = std::string(status) + "\n";
    body = refusal;
    content_type = text_type;
  }
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  if (verdict == Verdict::kMethodNotAllowed) out += "\r\nAllow: GET";
  out += "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace p2p::http
