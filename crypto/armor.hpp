// Text armour for keys and certificates, PEM-like so files paste well:
//
//   -----BEGIN P2PVPN <LABEL>-----
//   <standard base64 with padding, 64 characters a line, the last line 4..64>
//   -----END P2PVPN <LABEL>-----
//
// Decoding is strict and bounded: one block, nothing but blank lines around it, the expected
// label, full 64-character lines, canonical base64 (padding only at the end, zero pad bits).
// It tolerates CRLF line ends and trailing spaces or tabs. Errors say what is wrong and where.
//
// Secrets: dearmor_into() decodes line by line straight into caller memory (a SecureBuffer),
// so decoded key bytes never sit in an ordinary heap buffer. armor() reserves its exact size
// up front, so a caller that armours a secret can wipe the one string it gets back.
//
// Also here: the file helpers every armoured file goes through (bounded reads, the private-key
// permission check, writes that never expose a key file with loose permissions).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/expected.hpp"

namespace p2p::crypto {

// Largest armoured text (and armoured file) accepted, in bytes.
inline constexpr std::size_t kMaxArmorText = 64 * 1024;

struct ArmorError {
  std::string message;
};

// `label` is the part after "P2PVPN ", e.g. "CERTIFICATE" (upper case, letters/digits/spaces).
// `data` must not be empty (an empty block does not decode).
std::string armor(std::string_view label, std::span<const std::uint8_t> data);

// The decoded payload of `text`, which must carry exactly `label`.
Expected<std::vector<std::uint8_t>, ArmorError> dearmor(std::string_view text,
                                                        std::string_view label);

// Decodes into `out`, which the payload must fill exactly (for fixed-size secrets). On error
// `out` is wiped.
Expected<void, ArmorError> dearmor_into(std::string_view text, std::string_view label,
                                        std::span<std::uint8_t> out);

// The label of the first BEGIN line ("CERTIFICATE"), or nullopt if there is none.
std::optional<std::string> armor_label(std::string_view text);

// Wipes a string that held secret-derived text (sodium_memzero) when it goes out of scope.
class WipeGuard {
 public:
  explicit WipeGuard(std::string& s) : s_(s) {}
  ~WipeGuard();
  WipeGuard(const WipeGuard&) = delete;
  WipeGuard& operator=(const WipeGuard&) = delete;

 private:
  std::string& s_;
};

// --- Files -------------------------------------------------------------------------------------

// Reads a whole file of at most kMaxArmorText bytes. With `private_key`, a file whose mode
// grants any access to group or others is refused with the chmod fix in the message.
// The caller wipes the returned string if it holds a secret.
Expected<std::string, ArmorError> read_armored_file(const std::filesystem::path& path,
                                                    bool private_key);

// Writes `text` to `path` with permissions `mode` (less the umask). Without `overwrite` an
// existing file is an error; with it the file is replaced atomically (temp file + rename), so
// a replaced key is never readable with the old file's permissions.
Expected<void, ArmorError> write_armored_file(const std::filesystem::path& path,
                                              std::string_view text, mode_t mode, bool overwrite);

}  // namespace p2p::crypto
