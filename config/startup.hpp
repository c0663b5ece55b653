// What both daemons do before they open a socket: load and check their identity, and make
// their named loggers. Boundary code: failures come back as operator-facing messages.
#pragma once

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <span>
#include <string>

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

// A logger `name` writing to stderr at `level`. Not registered globally: every part of a
// shell gets its logger handed in.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, config::LogLevel level);

}  // namespace p2p::config
