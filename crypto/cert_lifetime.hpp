// Certificate lifetimes: what a node says about its own certificate and its CA's before they
// run out (kExpiryWarning ahead) and once its own has. I/O-free: the caller passes the time.
#pragma once

#include <string>
#include <vector>

#include "crypto/certificate.hpp"

namespace p2p::crypto {

inline constexpr UnixTime kExpiryWarning = 30 * 24 * 3600;  // 30 days

struct LifetimeNotice {
  bool expired = false;  // the node's own certificate (or the CA's) is no longer valid
  std::string text;      // "certificate 'laptop' expires in 12 days (2026-12-12T00:00:00Z): ..."
};

// Nothing when both are valid for more than kExpiryWarning; else one notice per certificate,
// saying when and what to do.
std::vector<LifetimeNotice> lifetime_notices(const Certificate& own, const CaCertificate& ca,
                                             UnixTime now);

}  // namespace p2p::crypto
