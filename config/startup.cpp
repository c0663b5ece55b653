#include "config/startup.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

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

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, LogLevel level) {
  auto logger = std::make_shared<spdlog::logger>(
      name, std::make_shared<spdlog::sinks::stderr_color_sink_st>());
  switch (level) {
    case LogLevel::trace:
      logger->set_level(spdlog::level::trace);
      break;
    case LogLevel::debug:
      logger->set_level(spdlog::level::debug);
      break;
    case LogLevel::info:
      logger->set_level(spdlog::level::info);
      break;
    case LogLevel::warn:
      logger->set_level(spdlog::level::warn);
      break;
    case LogLevel::error:
      logger->set_level(spdlog::level::err);
      break;
    case LogLevel::off:
      logger->set_level(spdlog::level::off);
      break;
  }
  return logger;
}

}  // namespace p2p::config
