#include "crypto/armor.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "crypto/secure_buffer.hpp"

namespace p2p::crypto {
namespace {

constexpr std::string_view kPrefix = "-----BEGIN P2PVPN ";
constexpr std::string_view kEndPrefix = "-----END P2PVPN ";
constexpr std::string_view kDashes = "-----";
constexpr std::size_t kLineChars = 64;  // base64 characters per full line
constexpr std::size_t kLineBytes = 48;  // bytes a full line decodes to

ArmorError error(std::string message) {
  return ArmorError{std::move(message)};
}

std::string_view trim_end(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.remove_suffix(1);
  return line;
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 40) return false;
  for (char c : label)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')) return false;
  return true;
}

// One armoured block located in a text: the body lines (trimmed) and their line numbers.
struct Block {
  std::vector<std::string_view> body;
  std::size_t first_body_line = 0;  // 1-based line number of body[0]
};

std::string describe_found(std::string_view line) {
  constexpr std::size_t kShown = 40;
  std::string shown(line.substr(0, kShown));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return "'" + shown + (line.size() > kShown ? "...'" : "'");
}

// Checks the block structure of `text` around the expected label. Body lines are views into
// `text` and are validated as base64 later.
Expected<Block, ArmorError> locate(std::string_view text, std::string_view label) {
  if (text.size() > kMaxArmorText)
    return fail(error("input is " + std::to_string(text.size()) + " bytes, more than the " +
                      std::to_string(kMaxArmorText) + " allowed"));
  const std::string begin = std::string(kPrefix) + std::string(label) + std::string(kDashes);
  const std::string end = std::string(kEndPrefix) + std::string(label) + std::string(kDashes);

  enum class State { before, body, after } state = State::before;
  Block block;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim_end(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    switch (state) {
      case State::before:
        if (line.empty()) continue;
        if (line == begin) {
          state = State::body;
          block.first_body_line = line_no + 1;
          continue;
        }
        if (line.starts_with("-----BEGIN "))
          return fail(error(where + "expected '" + begin + "', found " + describe_found(line)));
        return fail(error(where + "expected '" + begin + "', found " + describe_found(line) +
                          " (is this the right file?)"));
      case State::body:
        if (line == end) {
          state = State::after;
          continue;
        }
        if (line.starts_with("-----"))
          return fail(error(where + "expected '" + end + "', found " + describe_found(line)));
        if (line.empty()) return fail(error(where + "blank line inside the block"));
        block.body.push_back(line);
        continue;
      case State::after:
        if (!line.empty())
          return fail(error(where + "unexpected text after the END line: " + describe_found(line)));
        continue;
    }
  }
  if (state == State::before) return fail(error("no '" + begin + "' line found"));
  if (state == State::body) return fail(error("missing '" + end + "' line"));
  if (block.body.empty()) return fail(error("the block is empty"));
  return block;
}

// Decodes the body lines into `out`; returns the number of bytes written. Every line but the
// last must be a full 64-character line; padding may appear only at the very end.
Expected<std::size_t, ArmorError> decode_body(const Block& block, std::span<std::uint8_t> out) {
  std::size_t written = 0;
  for (std::size_t i = 0; i < block.body.size(); ++i) {
    std::string_view line = block.body[i];
    const bool last = i + 1 == block.body.size();
    const std::string where = "line " + std::to_string(block.first_body_line + i) + ": ";
    if (line.size() > kLineChars || (!last && line.size() != kLineChars))
      return fail(error(where + "base64 lines must be " + std::to_string(kLineChars) +
                        " characters (the last one may be shorter), found " +
                        std::to_string(line.size())));
    if (line.size() % 4 != 0)
      return fail(error(where + "base64 line length " + std::to_string(line.size()) +
                        " is not a multiple of 4"));
    std::size_t pad = 0;
    while (pad < 2 && line.size() > pad && line[line.size() - 1 - pad] == '=') ++pad;
    if (!last && pad != 0) return fail(error(where + "padding before the last line"));
    const std::size_t expect = line.size() / 4 * 3 - pad;
    if (expect > out.size() - written)
      return fail(error(where + "payload longer than the " + std::to_string(out.size()) +
                        " bytes expected"));
    std::size_t got = 0;
    const char* stop = nullptr;
    if (sodium_base642bin(out.data() + written, out.size() - written, line.data(), line.size(),
                          nullptr, &got, &stop, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        stop != line.data() + line.size() || got != expect) {
      std::size_t column = stop ? static_cast<std::size_t>(stop - line.data()) + 1 : 1;
      return fail(error(where + "invalid base64 near column " + std::to_string(column)));
    }
    written += got;
  }
  return written;
}

}  // namespace

std::string armor(std::string_view label, std::span<const std::uint8_t> data) {
  if (!valid_label(label)) throw std::invalid_argument("armor: bad label");
  init_sodium();
  const std::string begin = std::string(kPrefix) + std::string(label) + std::string(kDashes);
  const std::string end = std::string(kEndPrefix) + std::string(label) + std::string(kDashes);
  const std::size_t lines = (data.size() + kLineBytes - 1) / kLineBytes;
  const std::size_t b64_chars =
      sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL) - 1;
  // Exact size reserved up front: the string never reallocates, so wiping it wipes everything.
  std::string out;
  out.reserve(begin.size() + 1 + b64_chars + lines + end.size() + 1);
  out += begin;
  out += '\n';
  char chunk[kLineChars + 1];
  for (std::size_t off = 0; off < data.size(); off += kLineBytes) {
    std::size_t n = std::min(kLineBytes, data.size() - off);
    sodium_bin2base64(chunk, sizeof chunk, data.data() + off, n, sodium_base64_VARIANT_ORIGINAL);
    out += chunk;
    out += '\n';
  }
  sodium_memzero(chunk, sizeof chunk);
  out += end;
  out += '\n';
  return out;
}

Expected<std::vector<std::uint8_t>, ArmorError> dearmor(std::string_view text,
                                                        std::string_view label) {
  auto block = locate(text, label);
  if (!block) return fail(block.error());
  std::vector<std::uint8_t> out(block->body.size() * kLineBytes);
  auto n = decode_body(*block, out);
  if (!n) return fail(n.error());
  out.resize(*n);
  return out;
}

Expected<void, ArmorError> dearmor_into(std::string_view text, std::string_view label,
                                        std::span<std::uint8_t> out) {
  auto block = locate(text, label);
  if (!block) return fail(block.error());
  auto n = decode_body(*block, out);
  if (n && *n == out.size()) return {};
  sodium_memzero(out.data(), out.size());
  if (!n) return fail(n.error());
  return fail(
      error("payload is " + std::to_string(*n) + " bytes, expected " + std::to_string(out.size())));
}

WipeGuard::~WipeGuard() {
  sodium_memzero(s_.data(), s_.size());
}

std::optional<std::string> armor_label(std::string_view text) {
  auto at = text.find(kPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  auto rest = text.substr(at + kPrefix.size());
  auto close = rest.find(kDashes);
  if (close == std::string_view::npos || close > 40) return std::nullopt;
  return std::string(rest.substr(0, close));
}

Expected<std::string, ArmorError> read_armored_file(const std::filesystem::path& path,
                                                    bool private_key) {
  const std::string name = "'" + path.string() + "'";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(error("cannot open " + name + ": " + std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(error(name + " is not a regular file"));
  }
  if (private_key && (st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(error("private key file " + name + " has permissions " + mode +
                      ", so other users may read it; refusing to use it. Fix with: chmod 600 " +
                      path.string()));
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxArmorText) {
    ::close(fd);
    return fail(error(name + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                      std::to_string(kMaxArmorText) + " allowed"));
  }
  // Exact size, one allocation, so a secret read here lives in this one buffer only.
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  char extra = 0;
  ssize_t more = got == text.size() ? ::read(fd, &extra, 1) : 0;
  ::close(fd);
  if (got != text.size() || more != 0) {
    sodium_memzero(text.data(), text.size());
    return fail(error("cannot read " + name + ": file changed size while reading"));
  }
  return text;
}

Expected<void, ArmorError> write_armored_file(const std::filesystem::path& path,
                                              std::string_view text, mode_t mode, bool overwrite) {
  const std::string name = "'" + path.string() + "'";
  std::filesystem::path target = path;
  if (overwrite) {
    // Fresh temp file in the same directory, renamed over the target when complete.
    std::uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char hex[sizeof rnd * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    target += std::string(".tmp-") + hex;
  }
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
  if (fd < 0) {
    if (errno == EEXIST) return fail(error(name + " already exists"));
    return fail(error("cannot create " + name + ": " + std::strerror(errno)));
  }
  std::size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && overwrite && ::rename(target.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(target.c_str());
    return fail(error("cannot write " + name + ": " + std::strerror(err)));
  }
  return {};
}

}  // namespace p2p::crypto
