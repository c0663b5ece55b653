#include "crypto/cert_lifetime.hpp"

namespace p2p::crypto {
namespace {

std::string days(UnixTime seconds) {
  const auto d = seconds / (24 * 3600);
  if (d >= 1) return std::to_string(d) + (d == 1 ? " day" : " days");
  return std::to_string(seconds / 3600) + " hours";
}

void check(std::vector<LifetimeNotice>& out, const std::string& what, UnixTime not_after,
           UnixTime now, const char* remedy) {
  if (now >= not_after) {
    out.push_back({true, what + " expired " + format_utc(not_after) + ": " + remedy});
  } else if (not_after - now <= kExpiryWarning) {
    out.push_back({false, what + " expires in " + days(not_after - now) + " (" +
                              format_utc(not_after) + "): " + remedy});
  }
}

}  // namespace

std::vector<LifetimeNotice> lifetime_notices(const Certificate& own, const CaCertificate& ca,
                                             UnixTime now) {
  std::vector<LifetimeNotice> out;
  check(out, "certificate '" + own.name + "'", own.not_after, now,
        "renew it (p2pvpnctl issue --renew) and restart p2pvpnd");
  check(out, "CA certificate '" + ca.name + "'", ca.not_after, now,
        "every certificate it signed stops with it; plan a new CA");
  return out;
}

}  // namespace p2p::crypto
