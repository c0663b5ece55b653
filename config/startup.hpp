// What both daemons do before they open a socket: load and check their identity, and make
// their named loggers. Boundary code: failures come back as operator-facing messages.
#pragma once

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/common.hpp"
#include "crypto/auth_handshake.hpp"
#include "crypto/certificate.hpp"
#include "net/expected.hpp"

namespace p2p::config {

struct LoadedIdentity {
  crypto::Identity identity;
  crypto::CaCertificate ca;
};

// Loads the CA certificate, our certificate and our private key (mode 0600 or stricter), and
// checks, at wall-clock time `now`: the CA's self-signature and validity; that our
// certificate is signed by that CA, valid now, of `role` and not in `revoked`; and that the key
// is the one the certificate certifies. The message names the file and what is wrong, never
// key material.
Expected<LoadedIdentity, std::string> load_identity(const std::filesystem::path& key,
                                                    const std::filesystem::path& cert,
                                                    const std::filesystem::path& ca,
                                                    crypto::Role role,
                                                    std::span<const std::string> revoked,
                                                    UnixTime now);

// How log lines look on stderr. kText: "[date time] [name] [level] message", coloured on a
// terminal. kJournal, for systemd's journal (which adds its own timestamps): "<N>name: message"
// with N the syslog priority (sd-daemon(3)'s prefix; 3 error, 4 warning, 6 info, 7 debug).
// kAuto: kJournal when stderr is the stream systemd named in JOURNAL_STREAM, else kText.
enum class LogFormat { kAuto, kText, kJournal };

// "auto", "text", "journal" (the --log-format option of both daemons); nullopt otherwise.
std::optional<LogFormat> parse_log_format(std::string_view name);
inline constexpr const char* kLogFormatHelp =
    "How to write log lines: text (timestamps, for a terminal or file), journal (no timestamps, "
    "syslog priority prefix, for systemd's journal), or auto (journal when stderr is "
    "systemd's journal stream)";

// kAuto resolved against `journal_stream` (the JOURNAL_STREAM variable, "DEV:INODE", or null)
// and the device and inode of file descriptor `fd`.
LogFormat resolve_log_format(LogFormat requested, const char* journal_stream, int fd);

// The syslog priority (0..7) of an spdlog level.
int syslog_priority(spdlog::level::level_enum level);

// A logger `name` writing to stderr at `level`, in `format` (kAuto resolved for stderr). Not
// registered globally: every part of a shell gets its logger handed in.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, config::LogLevel level,
                                            LogFormat format = LogFormat::kAuto);

}  // namespace p2p::config
