// Port mapping, I/O-free half (daemon/nat/port_mapping.hpp): what a hostile or broken gateway
// cannot make us believe, and when the schedule asks again.
#include "daemon/nat/port_mapping.hpp"

#include <gtest/gtest.h>

namespace p2p::nat {
namespace {

using namespace std::chrono_literals;

const Time t0 = Time{} + 1000s;
const auto kUs = *parse_ip("192.168.1.10");

GatewayAnswer good(MappingProtocol p = MappingProtocol::kPcp) {
  return GatewayAnswer{p, 7400, std::nullopt, *Endpoint::parse("11.250.42.21:7400"), 7200};
}

std::string refusal(const GatewayAnswer& a) {
  auto m = check_mapping(t0, a, 7400, kUs);
  return m ? std::string("accepted") : m.error();
}

TEST(CheckMapping, AGoodAnswerIsAMappingWithItsLease) {
  auto m = check_mapping(t0, good(), 7400, kUs);
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->external, *Endpoint::parse("11.250.42.21:7400"));
  EXPECT_EQ(m->lifetime, 7200s);
  EXPECT_EQ(m->renew_at(), t0 + 3600s);
  EXPECT_EQ(m->expires(), t0 + 7200s);
}

TEST(CheckMapping, AnotherInternalPortIsRefused) {
  auto a = good();
  a.internal_port = 7401;
  EXPECT_NE(refusal(a).find("internal port 7401"), std::string::npos);
}

TEST(CheckMapping, AMappingToAnotherHostIsRefused) {
  auto a = good(MappingProtocol::kUpnp);
  a.internal_client = *parse_ip("192.168.1.66");
  EXPECT_NE(refusal(a).find("another host 192.168.1.66"), std::string::npos);
  a.internal_client = kUs;
  EXPECT_EQ(refusal(a), "accepted");
}

TEST(CheckMapping, PrivateOrOddExternalAddressesAreRefused) {
  for (const char* bad : {"192.168.0.1:7400", "10.1.2.3:7400", "100.64.0.1:7400", "127.0.0.1:7400",
                          "169.254.1.1:7400", "0.0.0.0:7400", "203.0.113.9:7400", "224.0.0.1:7400",
                          "255.255.255.255:7400", "[fd00::1]:7400", "[::]:7400",
                          "[2001:db8::1]:7400", "[ff02::1]:7400"}) {
    auto a = good();
    a.external = *Endpoint::parse(bad);
    EXPECT_NE(refusal(a).find("not a public address"), std::string::npos) << bad;
  }
  auto a = good();
  a.external.port = 0;
  EXPECT_NE(refusal(a).find("external port 0"), std::string::npos);
  a = good();
  a.external = *Endpoint::parse("[2a00:1450::1]:7400");
  EXPECT_EQ(refusal(a), "accepted");
}

TEST(CheckMapping, HugeOrTinyLifetimesAreRefused) {
  auto a = good();
  a.lifetime = 0xffffffff;
  EXPECT_NE(refusal(a).find("lifetime of 4294967295 s"), std::string::npos);
  a.lifetime = kMaxLifetime + 1;
  EXPECT_NE(refusal(a).find("lifetime"), std::string::npos);
  a.lifetime = 0;  // PCP/NAT-PMP: a deleted mapping is no mapping
  EXPECT_NE(refusal(a).find("lifetime of 0 s"), std::string::npos);
  a.lifetime = kMinLifetime - 1;
  EXPECT_NE(refusal(a).find("lifetime"), std::string::npos);
  auto u = good(MappingProtocol::kUpnp);
  u.lifetime = 0;  // UPnP: permanent; renewed as if we had got what we asked for
  auto m = check_mapping(t0, u, 7400, kUs);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->lifetime, std::chrono::seconds(kRequestedLifetime));
}

TEST(CheckMapping, RefusalsNameTheProtocol) {
  auto a = good(MappingProtocol::kNatPmp);
  a.internal_port = 1;
  EXPECT_EQ(refusal(a).rfind("natpmp: ", 0), 0u);
}

TEST(MappingProtocol, NamesRoundTrip) {
  for (auto p : {MappingProtocol::kPcp, MappingProtocol::kNatPmp, MappingProtocol::kUpnp}) {
    EXPECT_EQ(parse_mapping_protocol(to_string(p)), p);
  }
  EXPECT_FALSE(parse_mapping_protocol("igd"));
}

TEST(MappingSchedule, DisabledNeverAsks) {
  MappingSchedule s(false);
  EXPECT_FALSE(s.due(t0));
  EXPECT_EQ(s.deadline(), Time::max());
}

TEST(MappingSchedule, AsksAtOnceThenRenewsAtHalfTheLease) {
  MappingSchedule s(true);
  ASSERT_TRUE(s.due(t0));
  s.started();
  EXPECT_FALSE(s.due(t0));  // one at a time
  EXPECT_EQ(s.deadline(), Time::max());
  EXPECT_FALSE(s.on_result(t0, check_mapping(t0, good(), 7400, kUs)));
  ASSERT_TRUE(s.mapping());
  EXPECT_EQ(s.deadline(), t0 + 3600s);
  EXPECT_FALSE(s.due(t0 + 3599s));
  EXPECT_TRUE(s.due(t0 + 3600s));
}

TEST(MappingSchedule, FailuresBackOffAndTheSameErrorIsLoggedRarely) {
  MappingSchedule s(true);
  Time now = t0;
  const Expected<Mapping, std::string> failed = fail(std::string("pcp: no answer"));
  std::vector<Duration> waits;
  int logged = 0;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(s.due(now));
    s.started();
    logged += s.on_result(now, failed) ? 1 : 0;
    waits.push_back(s.deadline() - now);
    now = s.deadline();
  }
  EXPECT_EQ(waits[0], kFirstRetry);
  EXPECT_EQ(waits[1], 2 * kFirstRetry);
  EXPECT_EQ(waits.back(), kMaxRetry);
  // 60+120+240+480+960+1800+1800 s: first, then once 10 min had passed, ...
  EXPECT_LT(logged, 8);
  EXPECT_GE(logged, 2);
  EXPECT_FALSE(s.mapping());
  EXPECT_EQ(s.last_error(), "pcp: no answer");
  // A different failure is logged at once.
  s.started();
  EXPECT_TRUE(s.on_result(now, fail(std::string("upnp: no IGD"))));
}

TEST(MappingSchedule, AFailedRenewalKeepsTheMappingUntilItExpires) {
  MappingSchedule s(true);
  s.started();
  (void)s.on_result(t0, check_mapping(t0, good(), 7400, kUs));
  Time renew = t0 + 3600s;
  s.started();
  (void)s.on_result(renew, fail(std::string("natpmp: no answer")));
  ASSERT_TRUE(s.mapping());
  EXPECT_EQ(s.deadline(), renew + kFirstRetry);
  EXPECT_FALSE(s.expire(t0 + 7199s));
  EXPECT_TRUE(s.expire(t0 + 7200s));
  EXPECT_FALSE(s.mapping());
}

TEST(MappingSchedule, ANetworkChangeAsksAtOnce) {
  MappingSchedule s(true);
  s.started();
  (void)s.on_result(t0, fail(std::string("x")));
  EXPECT_FALSE(s.due(t0 + 1s));
  s.on_network_changed(t0 + 1s);
  EXPECT_TRUE(s.due(t0 + 1s));
}

}  // namespace
}  // namespace p2p::nat
