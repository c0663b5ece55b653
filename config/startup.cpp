#include "config/startup.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "config/reload.hpp"
#include "crypto/keys.hpp"
#include "crypto/noise.hpp"

namespace p2p::config {

Expected<LoadedIdentity, std::string> load_identity(const std::filesystem::path& key,
                                                    const std::filesystem::path& cert,
                                                    const std::filesystem::path& ca,
                                                    crypto::Role role,
                                                    std::span<const std::string> revoked,
                                                    UnixTime now) {
  auto ca_cert = crypto::load_ca_certificate(ca);
  if (!ca_cert) return fail(ca_cert.error().message);  // load errors name the file
  if (auto ok = crypto::verify_ca(*ca_cert, now); !ok) {
    return fail("'" + ca.string() + "': " + ok.error().message);
  }
  auto own = crypto::load_certificate(cert);
  if (!own) return fail(own.error().message);
  crypto::VerifyPolicy policy{role, revoked};
  if (auto ok = crypto::verify(*own, *ca_cert, now, policy); !ok) {
    return fail("'" + cert.string() + "': " + ok.error().message + " (checked against '" +
                ca.string() + "')");
  }
  auto pair = crypto::load_x25519_private_key(key);
  if (!pair) return fail(pair.error().message);
  if (pair->public_key() != own->public_key) {
    return fail("'" + key.string() + "': this key does not match the public key certified in '" +
                cert.string() + "'");
  }
  auto noise_key = crypto::noise::KeyPair::from_private(pair->private_key().span());
  return LoadedIdentity{crypto::Identity::make(std::move(noise_key), std::move(*own)),
                        std::move(*ca_cert)};
}

namespace {

// %* in the journal pattern: "<N>" with N the line's syslog priority.
class SyslogPrefix final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char text[] = {'<', static_cast<char>('0' + syslog_priority(msg.level)), '>'};
    dest.append(text, text + sizeof text);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPrefix>();
  }
};

}  // namespace

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;
    case spdlog::level::info: return 6;
    case spdlog::level::warn: return 4;
    case spdlog::level::err: return 3;
    case spdlog::level::critical: return 2;
    default: return 6;
  }
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "auto") return LogFormat::kAuto;
  if (name == "text") return LogFormat::kText;
  if (name == "journal") return LogFormat::kJournal;
  return std::nullopt;
}

LogFormat resolve_log_format(LogFormat requested, const char* journal_stream, int fd) {
  if (requested != LogFormat::kAuto) return requested;
  if (journal_stream == nullptr) return LogFormat::kText;
  unsigned long long dev = 0, ino = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2) return LogFormat::kText;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return LogFormat::kText;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
                 static_cast<unsigned long long>(st.st_ino) == ino
             ? LogFormat::kJournal
             : LogFormat::kText;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, LogLevel level,
                                            LogFormat format) {
  std::shared_ptr<spdlog::logger> logger;
  if (resolve_log_format(format, std::getenv("JOURNAL_STREAM"), STDERR_FILENO) ==
      LogFormat::kJournal) {
    logger =
        std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_st>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPrefix>('*').set_pattern("%*%n: %v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::stderr_color_sink_st>());
    // UTC with its zone, to the millisecond: lines from hosts in different zones line up.
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "[%Y-%m-%dT%H:%M:%S.%eZ] [%n] [%^%l%$] %v", spdlog::pattern_time_type::utc));
  }
  set_log_level(*logger, level);
  return logger;
}

}  // namespace p2p::config
