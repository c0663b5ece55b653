// PCP MAP codec (net/pcp.hpp) and the PCP answer's checks (nat::pcp_answer).
#include "net/pcp.hpp"

#include <gtest/gtest.h>

#include "daemon/nat/port_mapping.hpp"

namespace p2p {
namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace wire;

const PcpNonce kNonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

// A MAP response as RFC 6887 lays it out.
Bytes response(std::uint8_t result = 0, std::uint32_t lifetime = 7200,
               std::uint8_t protocol = kPcpProtocolUdp, PcpNonce nonce = kNonce,
               std::uint16_t internal = 7400, std::uint16_t external = 40000,
               std::array<std::uint8_t, 4> ext = {11, 250, 42, 21}) {
  Bytes b = {kPcpVersion, 0x81, 0, result};
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(lifetime >> s));
  b.insert(b.end(), {0, 0, 0, 9});  // epoch
  b.insert(b.end(), 12, 0);         // reserved
  b.insert(b.end(), nonce.begin(), nonce.end());
  b.insert(b.end(), {protocol, 0, 0, 0});
  b.insert(b.end(),
           {static_cast<std::uint8_t>(internal >> 8), static_cast<std::uint8_t>(internal)});
  b.insert(b.end(),
           {static_cast<std::uint8_t>(external >> 8), static_cast<std::uint8_t>(external)});
  b.insert(b.end(), 10, 0);
  b.insert(b.end(), {0xff, 0xff});
  b.insert(b.end(), ext.begin(), ext.end());
  return b;
}

TEST(Pcp, RequestHasTheRfcLayout) {
  PcpMapRequest r{*parse_ip("192.168.1.10"), kNonce, 7400, 7400, 7200};
  Bytes b = encode_pcp_map_request(r);
  ASSERT_EQ(b.size(), kPcpMapMessageSize);
  EXPECT_EQ(b[0], 2);
  EXPECT_EQ(b[1], 1);                                                           // R=0, MAP
  EXPECT_EQ((Bytes{b.begin() + 4, b.begin() + 8}), (Bytes{0, 0, 0x1c, 0x20}));  // 7200
  // Client address, IPv4-mapped.
  EXPECT_EQ((Bytes{b.begin() + 18, b.begin() + 24}), (Bytes{0xff, 0xff, 192, 168, 1, 10}));
  EXPECT_EQ((Bytes{b.begin() + 24, b.begin() + 36}), Bytes(kNonce.begin(), kNonce.end()));
  EXPECT_EQ(b[36], 17);
  EXPECT_EQ((Bytes{b.begin() + 40, b.begin() + 44}), (Bytes{0x1c, 0xe8, 0x1c, 0xe8}));
  // No external address suggested: ::ffff:0.0.0.0.
  EXPECT_EQ((Bytes{b.begin() + 54, b.begin() + 60}), (Bytes{0xff, 0xff, 0, 0, 0, 0}));
}

TEST(Pcp, ResponseDecodes) {
  auto m = decode_pcp_map_response(response());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->result, 0);
  EXPECT_EQ(m->lifetime, 7200u);
  EXPECT_EQ(m->epoch, 9u);
  EXPECT_EQ(m->nonce, kNonce);
  EXPECT_EQ(m->protocol, 17);
  EXPECT_EQ(m->internal_port, 7400);
  EXPECT_EQ(m->external, *Endpoint::parse("11.250.42.21:40000"));
}

TEST(Pcp, ResponseWithOptionsDecodesAndIgnoresThem) {
  Bytes b = response();
  b.insert(b.end(), {0x80, 0, 0, 4, 1, 2, 3, 4});
  EXPECT_TRUE(decode_pcp_map_response(b));
}

TEST(Pcp, MalformedResponsesAreRejected) {
  Bytes good = response();
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_pcp_map_response(std::span(good).first(n))) << "prefix " << n;
  }
  Bytes b = good;
  b.push_back(0);  // not a multiple of 4
  EXPECT_FALSE(decode_pcp_map_response(b));
  b = good;
  b[0] = 0;  // NAT-PMP's version
  EXPECT_FALSE(decode_pcp_map_response(b));
  b = good;
  b[1] = 0x01;  // a request, not a response
  EXPECT_FALSE(decode_pcp_map_response(b));
  b = good;
  b[1] = 0x82;  // PEER, not MAP
  EXPECT_FALSE(decode_pcp_map_response(b));
  b = good;
  b.resize(kPcpMaxMessage + 4, 0);
  EXPECT_FALSE(decode_pcp_map_response(b));
}

TEST(Pcp, AnswerChecksNonceResultAndProtocol) {
  auto a = nat::pcp_answer(response(), kNonce);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->protocol, nat::MappingProtocol::kPcp);
  EXPECT_EQ(a->internal_port, 7400);
  EXPECT_EQ(a->lifetime, 7200u);
  PcpNonce other = kNonce;
  other[0] ^= 1;
  auto n = nat::pcp_answer(response(0, 7200, 17, other), kNonce);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().find("nonce"), std::string::npos);
  auto r = nat::pcp_answer(response(2), kNonce);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("NOT_AUTHORIZED"), std::string::npos);
  auto p = nat::pcp_answer(response(0, 7200, 6), kNonce);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("protocol 6"), std::string::npos);
  Bytes garbage(60, 0xee);
  auto g = nat::pcp_answer(garbage, kNonce);
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().find("malformed"), std::string::npos);
}

}  // namespace
}  // namespace p2p
