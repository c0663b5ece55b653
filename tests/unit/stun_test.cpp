// STUN codec and server: RFC 5769 vectors, hostile input, RFC 5780 socket choice, and interop
// over loopback with coturn's turnutils_stunclient / turnutils_natdiscovery (against our
// server) and turnserver (against our codec and our discovery machine).
#include "net/stun.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/nat/nat_discovery.hpp"
#include "tests/support/spawn.hpp"

namespace p2p::wire::stun {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes hex(std::string_view s) {
  Bytes out;
  int hi = -1;
  for (char c : s) {
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                        : -1;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

Endpoint ep(std::string_view s) {
  return *Endpoint::parse(s);
}

const TransactionId kVectorId = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

// RFC 5769 section 2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
// MESSAGE-INTEGRITY, FINGERPRINT (USERNAME padded with 0x20 on purpose).
const Bytes kSampleRequest =
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
        "00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36"
        "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
        "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
        "80 28 00 04 e5 7a 3b cf");
// Section 2.2: IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const Bytes kSampleV4Response =
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
        "00 20 00 08 00 01 a1 47 e1 12 a6 43"
        "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
        "80 28 00 04 c0 7d 4c 96");
// Section 2.3: IPv6 response, XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const Bytes kSampleV6Response =
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
        "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
        "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
        "80 28 00 04 c8 fb 0b 4c");

// ---- Codec ---------------------------------------------------------------------------------

TEST(StunCodec, Crc32KnownAnswer) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())),
            0xCBF43926u);
}

TEST(StunCodec, Rfc5769SampleRequest) {
  auto m = parse(kSampleRequest);
  ASSERT_TRUE(m) << to_string(m.error());
  EXPECT_EQ(m->cls, MessageClass::kRequest);
  EXPECT_EQ(m->method, kMethodBinding);
  EXPECT_EQ(m->transaction_id, kVectorId);
  EXPECT_EQ(m->software, "STUN test client");
  EXPECT_TRUE(m->fingerprint);
  // PRIORITY, USERNAME, MESSAGE-INTEGRITY are comprehension-required and not ours;
  // ICE-CONTROLLED (0x8029) is optional and silently skipped.
  EXPECT_EQ(m->unknown_required, (std::vector<std::uint16_t>{0x0024, 0x0006, 0x0008}));
}

TEST(StunCodec, Rfc5769SampleResponses) {
  auto v4 = parse(kSampleV4Response);
  ASSERT_TRUE(v4) << to_string(v4.error());
  EXPECT_EQ(v4->cls, MessageClass::kSuccess);
  EXPECT_EQ(v4->xor_mapped_address, ep("192.0.2.1:32853"));
  EXPECT_EQ(v4->software, "test vector");  // 11 bytes, padded with 0x20
  EXPECT_TRUE(v4->fingerprint);

  auto v6 = parse(kSampleV6Response);
  ASSERT_TRUE(v6) << to_string(v6.error());
  EXPECT_EQ(v6->xor_mapped_address, ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  EXPECT_TRUE(v6->fingerprint);
}

TEST(StunCodec, EncodesXorMappedAddressLikeTheRfc) {
  for (const auto& [mapped, value] :
       {std::pair{ep("192.0.2.1:32853"), hex("00 20 00 08 00 01 a1 47 e1 12 a6 43")},
        std::pair{
            ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
            hex("00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9")}}) {
    Message m;
    m.cls = MessageClass::kSuccess;
    m.transaction_id = kVectorId;
    m.xor_mapped_address = mapped;
    const Bytes bytes = encode(m);
    ASSERT_EQ(bytes.size(), kHeaderSize + value.size());
    EXPECT_EQ(Bytes(bytes.begin() + kHeaderSize, bytes.end()), value);
    EXPECT_EQ(Bytes(bytes.begin(), bytes.begin() + 4),
              (Bytes{0x01, 0x01, 0x00, static_cast<std::uint8_t>(value.size())}));
  }
}

TEST(StunCodec, FingerprintMatchesTheRfcVectorWhenWeComputeIt) {
  // The FINGERPRINT of the 2.2 vector covers everything before it: check our CRC over that
  // prefix gives the printed value, and that one flipped bit anywhere is caught.
  const std::size_t at = kSampleV4Response.size() - 8;
  const std::uint32_t crc = crc32(std::span(kSampleV4Response).first(at)) ^ kFingerprintXor;
  EXPECT_EQ(crc, 0xc07d4c96u);
  for (std::size_t i = kHeaderSize; i < at; ++i) {
    Bytes bad = kSampleV4Response;
    bad[i] ^= 0x10;
    auto m = parse(bad);
    ASSERT_FALSE(m) << "byte " << i;
    // A flip in a length field may be caught before FINGERPRINT is reached.
    EXPECT_TRUE(
        m.error() == ParseError::kBadFingerprint || m.error() == ParseError::kTruncatedAttribute ||
        m.error() == ParseError::kBadAttributeLength || m.error() == ParseError::kBadAddressFamily)
        << "byte " << i << ": " << to_string(m.error());
  }
}

Message full_message(Endpoint a, Endpoint b) {
  Message m;
  m.cls = MessageClass::kSuccess;
  m.transaction_id = kVectorId;
  m.xor_mapped_address = a;
  m.mapped_address = a;
  m.change_request = ChangeRequest{true, false};
  m.response_port = 40000;
  m.response_origin = b;
  m.other_address = b;
  m.software = "p2pvpn 0.1";
  m.error_code = ErrorCode{438, "Stale Nonce"};
  m.unknown_attributes = {0x0024, 0x0006, 0x7001};
  m.fingerprint = true;
  return m;
}

TEST(StunCodec, RoundTripsEveryAttribute) {
  for (const auto& m : {full_message(ep("203.0.113.9:61000"), ep("198.51.100.2:3479")),
                        full_message(ep("[2001:db8::9]:61000"), ep("[2001:db8::2]:3479"))}) {
    const Bytes bytes = encode(m);
    EXPECT_TRUE(is_stun(bytes));
    EXPECT_EQ(bytes.size() % 4, 0u);
    auto back = parse(bytes);
    ASSERT_TRUE(back) << to_string(back.error());
    EXPECT_EQ(*back, m);
  }
}

TEST(StunCodec, MethodAndClassBitsInterleave) {
  // Type 0x0111 is a Binding error response; 0x0011 a Binding indication.
  for (auto [cls, method, type] :
       {std::tuple{MessageClass::kError, std::uint16_t{0x001}, std::uint16_t{0x0111}},
        std::tuple{MessageClass::kIndication, std::uint16_t{0x001}, std::uint16_t{0x0011}},
        std::tuple{MessageClass::kRequest, std::uint16_t{0x003}, std::uint16_t{0x0003}},
        std::tuple{MessageClass::kSuccess, std::uint16_t{0xFFF}, std::uint16_t{0x3FEF}},
        std::tuple{MessageClass::kError, std::uint16_t{0xFFF}, std::uint16_t{0x3FFF}},
        std::tuple{MessageClass::kRequest, std::uint16_t{0xFFF}, std::uint16_t{0x3EEF}}}) {
    Message m;
    m.cls = cls;
    m.method = method;
    const Bytes b = encode(m);
    EXPECT_EQ((b[0] << 8) | b[1], type);
    auto back = parse(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->cls, cls);
    EXPECT_EQ(back->method, method);
  }
}

TEST(StunCodec, FirstOfDuplicatesWinsAndUnknownsAreSortedByComprehension) {
  Bytes b =
      hex("00 01 00 2c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
          "80 22 00 01 61 00 00 00"  // SOFTWARE "a"
          "80 22 00 01 62 00 00 00"  // SOFTWARE "b" (duplicate: ignored)
          "c0 01 00 02 ff ff 00 00"  // unknown comprehension-optional: skipped
          "70 01 00 00"              // unknown comprehension-required
          "70 01 00 00"              // the same again: listed once
          "00 03 00 04 00 00 00 06"  // CHANGE-REQUEST ip+port
          "00 2a 00 00");            // another unknown comprehension-required
  auto m = parse(b);
  ASSERT_TRUE(m) << to_string(m.error());
  EXPECT_EQ(m->software, "a");
  EXPECT_EQ(m->change_request, (ChangeRequest{true, true}));
  EXPECT_EQ(m->unknown_required, (std::vector<std::uint16_t>{0x7001, 0x002a}));
}

TEST(StunCodec, UnknownRequiredListIsCapped) {
  Message m;
  Bytes b = encode(m);
  for (std::uint16_t t = 0x7000; t < 0x7000 + 100; ++t) {
    b.push_back(static_cast<std::uint8_t>(t >> 8));
    b.push_back(static_cast<std::uint8_t>(t));
    b.push_back(0);
    b.push_back(0);
  }
  b[2] = static_cast<std::uint8_t>((b.size() - kHeaderSize) >> 8);
  b[3] = static_cast<std::uint8_t>(b.size() - kHeaderSize);
  auto parsed = parse(b);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->unknown_required.size(), kMaxUnknownRequired);
}

struct Malformed {
  const char* what;
  Bytes bytes;
  ParseError error;
};

TEST(StunCodec, RejectsMalformedMessages) {
  const std::string hdr = "21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae";
  auto msg = [&](std::string_view type_len, std::string_view attrs) {
    return hex(std::string(type_len) + hdr + std::string(attrs));
  };
  Bytes too_long = msg("01 01 03 00", "80 22 02 fc");  // SOFTWARE of 764 bytes
  too_long.resize(kHeaderSize + 0x300, 'x');
  const std::vector<Malformed> cases = {
      {"empty", {}, ParseError::kTooShort},
      {"19 bytes", Bytes(kSampleV4Response.begin(), kSampleV4Response.begin() + 19),
       ParseError::kTooShort},
      {"first bits 01", msg("40 01 00 00", ""), ParseError::kNotStun},
      {"first bits 10 (p2pvpn packet)", msg("81 01 00 00", ""), ParseError::kNotStun},
      {"no cookie (RFC 3489)", hex("00 01 00 00 21 12 a4 43 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"),
       ParseError::kBadCookie},
      {"length not multiple of 4", msg("00 01 00 02", "00 00"), ParseError::kBadLength},
      {"length beyond datagram", msg("00 01 00 08", "80 22 00 00"), ParseError::kBadLength},
      {"length short of datagram", msg("00 01 00 00", "80 22 00 00"), ParseError::kBadLength},
      {"attribute past end", msg("00 01 00 08", "80 22 00 08 61 62 63 64"),
       ParseError::kTruncatedAttribute},
      {"padding past end", msg("00 01 00 08", "80 22 00 05 61 62 63 64"),
       ParseError::kTruncatedAttribute},
      {"address family 3", msg("01 01 00 0c", "00 01 00 08 00 03 00 50 0a 00 00 01"),
       ParseError::kBadAddressFamily},
      {"v4 address 20 bytes",
       msg("01 01 00 18",
           "00 20 00 14 00 01 00 50 0a 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"),
       ParseError::kBadAttributeLength},
      {"v6 address 8 bytes", msg("01 01 00 0c", "00 01 00 08 00 02 00 50 0a 00 00 01"),
       ParseError::kBadAttributeLength},
      {"address 2 bytes", msg("01 01 00 08", "80 2c 00 02 00 01 00 00"),
       ParseError::kBadAttributeLength},
      {"CHANGE-REQUEST 3 bytes", msg("00 01 00 08", "00 03 00 03 00 00 06 00"),
       ParseError::kBadAttributeLength},
      {"RESPONSE-PORT 3 bytes", msg("00 01 00 08", "00 27 00 03 00 50 00 00"),
       ParseError::kBadAttributeLength},
      {"ERROR-CODE class 7", msg("01 11 00 08", "00 09 00 04 00 00 07 00"),
       ParseError::kBadErrorCode},
      {"ERROR-CODE class 2", msg("01 11 00 08", "00 09 00 04 00 00 02 00"),
       ParseError::kBadErrorCode},
      {"ERROR-CODE number 100", msg("01 11 00 08", "00 09 00 04 00 00 04 64"),
       ParseError::kBadErrorCode},
      {"ERROR-CODE 3 bytes", msg("01 11 00 08", "00 09 00 03 00 00 04 00"),
       ParseError::kBadAttributeLength},
      {"UNKNOWN-ATTRIBUTES odd", msg("01 11 00 08", "00 0a 00 03 00 01 00 00"),
       ParseError::kBadAttributeLength},
      {"SOFTWARE 764 bytes", too_long, ParseError::kTooLong},
      {"FINGERPRINT 2 bytes", msg("00 01 00 08", "80 28 00 02 00 00 00 00"),
       ParseError::kBadAttributeLength},
      {"FINGERPRINT wrong", msg("00 01 00 08", "80 28 00 04 00 00 00 00"),
       ParseError::kBadFingerprint},
  };
  for (const auto& c : cases) {
    auto m = parse(c.bytes);
    ASSERT_FALSE(m) << c.what;
    EXPECT_EQ(m.error(), c.error) << c.what << ": " << to_string(m.error());
    EXPECT_FALSE(to_string(m.error()).empty());
  }
}

TEST(StunCodec, RejectsAttributesAfterFingerprint) {
  Message m = binding_request(kVectorId);
  m.fingerprint = true;
  Bytes b = encode(m);
  ASSERT_TRUE(parse(b));
  // Append a SOFTWARE after FINGERPRINT and fix the length: the CRC still matches its prefix.
  for (std::uint8_t x : hex("80 22 00 00")) b.push_back(x);
  b[3] = static_cast<std::uint8_t>(b.size() - kHeaderSize);
  auto bad = parse(b);
  ASSERT_FALSE(bad);
  // The length field is covered by the CRC, so the changed length already breaks it.
  EXPECT_EQ(bad.error(), ParseError::kBadFingerprint);
}

TEST(StunCodec, EveryTruncationFailsCleanly) {
  const Bytes full = encode(full_message(ep("[2001:db8::9]:61000"), ep("[2001:db8::2]:3479")));
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(parse(std::span(full).first(n))) << n;
    EXPECT_FALSE(is_stun(std::span(full).first(n))) << n;
  }
}

// The 16-bit length field bounds the whole message: a message that fills it exactly encodes and
// parses back; one more UNKNOWN-ATTRIBUTES entry cannot be encoded and must not come out
// truncated (the length field would wrap to 0).
TEST(StunCodec, EncodesUpToTheLengthFieldAndNeverPastIt) {
  Message m;
  m.cls = MessageClass::kError;
  m.transaction_id = kVectorId;
  m.unknown_attributes.assign((0xFFFC - 4) / 2, 0x7777);
  const Bytes b = encode(m);
  ASSERT_EQ(b.size(), kHeaderSize + 0xFFFC);
  EXPECT_EQ(b[2], 0xFF);
  EXPECT_EQ(b[3], 0xFC);
  auto back = parse(b);
  ASSERT_TRUE(back) << to_string(back.error());
  EXPECT_EQ(back->unknown_attributes, m.unknown_attributes);

  m.unknown_attributes.push_back(0x7777);
  EXPECT_DEATH((void)encode(m), "STUN message longer than");
}

TEST(StunCodec, IsStunTellsStunFromOurPackets) {
  EXPECT_TRUE(is_stun(kSampleRequest));
  EXPECT_TRUE(is_stun(encode(binding_request(kVectorId))));
  for (std::uint8_t first = 0x40; first != 0; ++first) {  // every p2pvpn type byte
    Bytes b = encode(binding_request(kVectorId));
    b[0] = first;
    EXPECT_FALSE(is_stun(b)) << int(first);
  }
  Bytes wrong_len = encode(binding_request(kVectorId));
  wrong_len.push_back(0);
  EXPECT_FALSE(is_stun(wrong_len));
  Bytes no_cookie = encode(binding_request(kVectorId));
  no_cookie[7] ^= 1;
  EXPECT_FALSE(is_stun(no_cookie));
}

// ---- Server --------------------------------------------------------------------------------

const Endpoint kA1P1 = ep("198.51.100.1:3478");
const IpAddress kA2 = *parse_ip("198.51.100.2");

Server make_server(bool alternate) {
  ServerConfig c;
  c.primary = kA1P1;
  if (alternate) {
    c.alternate_address = kA2;
    c.alternate_port = 3479;
  }
  auto s = Server::create(c);
  EXPECT_TRUE(s) << (s ? "" : s.error());
  return std::move(s).value();
}

Message answer_of(const ServerReply& r) {
  auto m = parse(r.bytes);
  EXPECT_TRUE(m) << to_string(m.error());
  EXPECT_TRUE(m->fingerprint);
  return m ? *m : Message{};
}

TEST(StunServer, RejectsInconsistentConfigs) {
  auto with = [](std::optional<IpAddress> alt, std::uint16_t alt_port) {
    ServerConfig c;
    c.primary = kA1P1;
    c.alternate_address = alt;
    c.alternate_port = alt_port;
    return Server::create(c).has_value();
  };
  EXPECT_TRUE(with(std::nullopt, 0));
  EXPECT_TRUE(with(kA2, 3479));
  EXPECT_FALSE(with(std::nullopt, 3479));              // port without address
  EXPECT_FALSE(with(kA2, 0));                          // address without port
  EXPECT_FALSE(with(kA2, 3478));                       // same port
  EXPECT_FALSE(with(kA1P1.address, 3479));             // same address
  EXPECT_FALSE(with(*parse_ip("2001:db8::1"), 3479));  // other family
  ServerConfig no_port;
  no_port.primary = ep("198.51.100.1:0");
  EXPECT_FALSE(Server::create(no_port));
}

TEST(StunServer, AnswersBindingWithoutAlternate) {
  const Server s = make_server(false);
  const Endpoint client = ep("203.0.113.7:40001");
  auto r = s.on_request(ServerSocket::kPrimary, client, encode(binding_request(kVectorId)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, ServerSocket::kPrimary);
  EXPECT_EQ(r->to, client);
  const Message m = answer_of(*r);
  EXPECT_EQ(m.cls, MessageClass::kSuccess);
  EXPECT_EQ(m.transaction_id, kVectorId);
  EXPECT_EQ(m.xor_mapped_address, client);
  EXPECT_EQ(m.mapped_address, client);
  EXPECT_EQ(m.response_origin, kA1P1);
  EXPECT_FALSE(m.other_address);  // RFC 5780: never without a second address
  EXPECT_EQ(m.software, "p2pvpn");
  // Sockets that do not exist without an alternate address take nothing.
  EXPECT_FALSE(s.on_request(ServerSocket::kAltBoth, client, encode(binding_request(kVectorId))));
}

TEST(StunServer, ChangeRequestWithoutAlternateIs420) {
  const Server s = make_server(false);
  const Endpoint client = ep("203.0.113.7:40001");
  for (auto change : {ChangeRequest{true, true}, ChangeRequest{false, true}, ChangeRequest{}}) {
    auto r =
        s.on_request(ServerSocket::kPrimary, client, encode(binding_request(kVectorId, change)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->from, ServerSocket::kPrimary);
    const Message m = answer_of(*r);
    EXPECT_EQ(m.cls, MessageClass::kError);
    ASSERT_TRUE(m.error_code);
    EXPECT_EQ(m.error_code->code, 420);
    EXPECT_EQ(m.unknown_attributes, std::vector<std::uint16_t>{0x0003});
    EXPECT_FALSE(m.xor_mapped_address);
    EXPECT_FALSE(m.other_address);
  }
}

TEST(StunServer, PicksTheSocketPerRfc5780Table1) {
  const Server s = make_server(true);
  const Endpoint client = ep("203.0.113.7:40001");
  const std::array<Endpoint, 4> sockets = {kA1P1, ep("198.51.100.1:3479"), ep("198.51.100.2:3478"),
                                           ep("198.51.100.2:3479")};
  for (unsigned in = 0; in < 4; ++in) {
    EXPECT_EQ(s.endpoint(static_cast<ServerSocket>(in)), sockets[in]);
    for (unsigned flags = 0; flags < 5; ++flags) {  // 4 = no CHANGE-REQUEST at all
      std::optional<ChangeRequest> change;
      if (flags < 4) change = ChangeRequest{(flags & 2) != 0, (flags & 1) != 0};
      auto r = s.on_request(static_cast<ServerSocket>(in), client,
                            encode(binding_request(kVectorId, change)));
      ASSERT_TRUE(r);
      const unsigned expected_from = in ^ (flags < 4 ? flags : 0);
      EXPECT_EQ(static_cast<unsigned>(r->from), expected_from) << in << " " << flags;
      const Message m = answer_of(*r);
      EXPECT_EQ(m.cls, MessageClass::kSuccess);
      EXPECT_EQ(m.xor_mapped_address, client);
      EXPECT_EQ(m.response_origin, sockets[expected_from]);
      EXPECT_EQ(m.other_address, sockets[in ^ 3]);  // Ca:Cp whatever the flags
    }
  }
}

TEST(StunServer, ResponsePortRedirectsOnlyThePort) {
  const Server s = make_server(true);
  const Endpoint client = ep("203.0.113.7:40001");
  Message req = binding_request(kVectorId);
  req.response_port = 40555;
  auto r = s.on_request(ServerSocket::kPrimary, client, encode(req));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to, ep("203.0.113.7:40555"));
  EXPECT_EQ(answer_of(*r).xor_mapped_address, client);
  req.response_port = 0;
  r = s.on_request(ServerSocket::kPrimary, client, encode(req));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to, client);
  ASSERT_TRUE(answer_of(*r).error_code);
  EXPECT_EQ(answer_of(*r).error_code->code, 400);
}

TEST(StunServer, UnknownRequiredAttributesGet420) {
  const Server s = make_server(true);
  auto r = s.on_request(ServerSocket::kPrimary, ep("192.0.2.50:5000"), kSampleRequest);
  ASSERT_TRUE(r);
  const Message m = answer_of(*r);
  EXPECT_EQ(m.cls, MessageClass::kError);
  EXPECT_EQ(m.transaction_id, kVectorId);
  ASSERT_TRUE(m.error_code);
  EXPECT_EQ(m.error_code->code, 420);
  EXPECT_EQ(m.unknown_attributes, (std::vector<std::uint16_t>{0x0024, 0x0006, 0x0008}));
}

TEST(StunServer, IgnoresWhatIsNotABindingRequest) {
  const Server s = make_server(true);
  const Endpoint client = ep("203.0.113.7:40001");
  Message m = binding_request(kVectorId);
  for (auto cls : {MessageClass::kIndication, MessageClass::kSuccess, MessageClass::kError}) {
    m.cls = cls;
    EXPECT_FALSE(s.on_request(ServerSocket::kPrimary, client, encode(m)));
  }
  m.cls = MessageClass::kRequest;
  m.method = 0x003;  // TURN Allocate
  EXPECT_FALSE(s.on_request(ServerSocket::kPrimary, client, encode(m)));
  EXPECT_FALSE(s.on_request(ServerSocket::kPrimary, client, Bytes{0x84, 0, 0, 0}));
  EXPECT_FALSE(s.on_request(ServerSocket::kPrimary, client, Bytes{}));
  Bytes bad_fp = encode([] {
    Message r = binding_request(kVectorId);
    r.fingerprint = true;
    return r;
  }());
  bad_fp.back() ^= 1;
  EXPECT_FALSE(s.on_request(ServerSocket::kPrimary, client, bad_fp));
}

TEST(StunServer, Ipv6) {
  ServerConfig c;
  c.primary = ep("[2001:db8::1]:3478");
  c.alternate_address = *parse_ip("2001:db8::2");
  c.alternate_port = 3479;
  auto s = Server::create(c);
  ASSERT_TRUE(s);
  const Endpoint client = ep("[2001:db8:ffff::7]:40001");
  auto r = s->on_request(ServerSocket::kPrimary, client,
                         encode(binding_request(kVectorId, ChangeRequest{true, false})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, ServerSocket::kAltAddress);
  const Message m = answer_of(*r);
  EXPECT_EQ(m.xor_mapped_address, client);
  EXPECT_EQ(m.response_origin, ep("[2001:db8::2]:3478"));
  EXPECT_EQ(m.other_address, ep("[2001:db8::2]:3479"));
}

// ---- Interop over loopback -----------------------------------------------------------------

class UdpSocket {
 public:
  static std::optional<UdpSocket> bind(const Endpoint& at, bool also_tcp = false) {
    UdpSocket s;
    s.fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = to_sockaddr(at);
    if (s.fd_ < 0 || ::bind(s.fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
    if (also_tcp) {  // turnserver also listens on TCP: the port must be free there too
      int t = ::socket(AF_INET, SOCK_STREAM, 0);
      socklen_t len = sizeof a;
      ::getsockname(s.fd_, reinterpret_cast<sockaddr*>(&a), &len);
      const bool ok = t >= 0 && ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (t >= 0) ::close(t);
      if (!ok) return {};
    }
    return s;
  }
  UdpSocket() = default;
  UdpSocket(UdpSocket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UdpSocket& operator=(UdpSocket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~UdpSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  Endpoint local() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    return from_sockaddr(a);
  }
  void send(const Endpoint& to, std::span<const std::uint8_t> b) const {
    sockaddr_in a = to_sockaddr(to);
    ::sendto(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  std::optional<std::pair<Endpoint, Bytes>> receive(int timeout_ms) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return {};
    Bytes b(2048);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    const ssize_t n = ::recvfrom(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&a), &len);
    if (n < 0) return {};
    b.resize(static_cast<std::size_t>(n));
    return std::pair{from_sockaddr(a), std::move(b)};
  }

  static sockaddr_in to_sockaddr(const Endpoint& e) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(e.port);
    a.sin_addr.s_addr = htonl(std::get<Ipv4>(e.address).value);
    return a;
  }
  static Endpoint from_sockaddr(const sockaddr_in& a) {
    return Endpoint{Ipv4{ntohl(a.sin_addr.s_addr)}, ntohs(a.sin_port)};
  }

 private:
  int fd_ = -1;
};

const Ipv4 kLo1 = *Ipv4::parse("127.0.0.1");
const Ipv4 kLo2 = *Ipv4::parse("127.0.0.2");

// Four sockets 127.0.0.1:P, 127.0.0.1:P+1, 127.0.0.2:P, 127.0.0.2:P+1 (in ServerSocket order),
// P found by binding port 0 first. With also_tcp the TCP ports are checked free as well.
std::optional<std::array<UdpSocket, 4>> bind_quad(bool also_tcp) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto first = UdpSocket::bind(Endpoint{kLo1, 0}, also_tcp);
    if (!first) continue;
    const std::uint16_t p = first->local().port;
    if (p >= 65535) continue;
    std::array<UdpSocket, 4> quad;
    quad[0] = std::move(*first);
    bool ok = true;
    for (unsigned i = 1; i < 4 && ok; ++i) {
      auto s = UdpSocket::bind(
          Endpoint{(i & 2) ? kLo2 : kLo1, static_cast<std::uint16_t>(p + (i & 1))}, also_tcp);
      ok = s.has_value();
      if (ok) quad[i] = std::move(*s);
    }
    if (ok) return quad;
  }
  return std::nullopt;
}

// Runs our Server on four loopback sockets in a background thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::array<UdpSocket, 4> sockets) : sockets_(std::move(sockets)) {
    ServerConfig c;
    c.primary = sockets_[0].local();
    c.alternate_address = kLo2;
    c.alternate_port = static_cast<std::uint16_t>(c.primary.port + 1);
    c.software = "p2pvpn-test";
    server_.emplace(Server::create(c).value());
    thread_ = std::thread([this] { run(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return server_->endpoint(ServerSocket::kPrimary).port; }
  int answered_from(ServerSocket s) const { return answered_[static_cast<unsigned>(s)]; }

 private:
  void run() {
    while (!stop_) {
      std::array<pollfd, 4> fds{};
      for (unsigned i = 0; i < 4; ++i) fds[i] = {sockets_[i].fd(), POLLIN, 0};
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      for (unsigned i = 0; i < 4; ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        auto got = sockets_[i].receive(0);
        if (!got) continue;
        auto reply = server_->on_request(static_cast<ServerSocket>(i), got->first, got->second);
        if (!reply) continue;
        ++answered_[static_cast<unsigned>(reply->from)];  // before the client can see it
        sockets_[static_cast<unsigned>(reply->from)].send(reply->to, reply->bytes);
      }
    }
  }
  std::array<UdpSocket, 4> sockets_;
  std::optional<Server> server_;
  std::array<std::atomic<int>, 4> answered_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string run_tool(const std::string& command) {
  std::string out;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (!f) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  ::pclose(f);
  return out;
}

bool have_tool(const char* name) {
  return run_tool(std::string("command -v ") + name).find(name) != std::string::npos;
}

TEST(StunInterop, TurnutilsStunclientAgainstOurServer) {
  if (!have_tool("turnutils_stunclient")) GTEST_SKIP() << "turnutils_stunclient (coturn) missing";
  auto quad = bind_quad(false);
  ASSERT_TRUE(quad) << "no free loopback port pair";
  LoopbackServer server(std::move(*quad));
  const std::string out = run_tool("timeout 20 turnutils_stunclient -p " +
                                   std::to_string(server.port()) + " 127.0.0.1");
  EXPECT_NE(out.find("UDP reflexive addr: 127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("Response origin: : 127.0.0.1:" + std::to_string(server.port())),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Other addr: : 127.0.0.2:" + std::to_string(server.port() + 1)),
            std::string::npos)
      << out;
  EXPECT_GT(server.answered_from(ServerSocket::kPrimary), 0);
}

TEST(StunInterop, TurnutilsNatdiscoveryAgainstOurServer) {
  if (!have_tool("turnutils_natdiscovery"))
    GTEST_SKIP() << "turnutils_natdiscovery (coturn) missing";
  auto quad = bind_quad(false);
  ASSERT_TRUE(quad) << "no free loopback port pair";
  LoopbackServer server(std::move(*quad));
  const std::string out = run_tool("timeout 30 turnutils_natdiscovery -m -f -p " +
                                   std::to_string(server.port()) + " 127.0.0.1");
  EXPECT_NE(out.find("NAT with Endpoint Independent Mapping!"), std::string::npos) << out;
  EXPECT_NE(out.find("NAT with Endpoint Independent Filtering!"), std::string::npos) << out;
  EXPECT_NE(out.find("No ALG: Mapped == XOR-Mapped"), std::string::npos) << out;
  EXPECT_NE(out.find("UDP reflexive addr: 127.0.0.1:"), std::string::npos) << out;
  // Mapping test II went to A2:P1; filtering test II asked for a change of both.
  EXPECT_GT(server.answered_from(ServerSocket::kAltAddress), 0);
  EXPECT_GT(server.answered_from(ServerSocket::kAltBoth), 0);
}

// A turnserver in STUN-only mode on 127.0.0.1 and 127.0.0.2, killed when this goes away.
class TurnServer {
 public:
  TurnServer() {
    auto quad = bind_quad(true);
    if (!quad) return;
    port_ = (*quad)[0].local().port;
    quad.reset();  // free the ports for turnserver
    log_ =
        std::filesystem::temp_directory_path() /
        ("p2pvpn-turnserver-" + std::to_string(::getpid()) + "-" + std::to_string(port_) + ".log");
    const std::string port = std::to_string(port_);
    const std::string pidfile = log_.string() + ".pid";
    std::vector<std::string> args = {
        "timeout", "60",         "turnserver",  "-n",           "--stun-only",
        "-L",      "127.0.0.1",  "-L",          "127.0.0.2",    "--listening-port",
        port,      "--no-cli",   "--no-tls",    "--no-dtls",    "--pidfile",
        pidfile,   "--log-file", log_.string(), "--simple-log", "--no-stdout-log"};
    pid_ = test::spawn(args, {{}, "/dev/null", "/dev/null"});
  }
  ~TurnServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove(log_, ec);
    std::filesystem::remove(log_.string() + ".pid", ec);
  }
  bool started() const { return pid_ > 0; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::filesystem::path log_;
};

TransactionId counter_id(std::uint8_t n) {
  TransactionId id{};
  id.fill(0x5a);
  id[11] = n;
  return id;
}

// Sends req from sock to `to` until an answer with its id comes (up to `tries` x 250 ms).
std::optional<std::pair<Endpoint, Message>> transact(const UdpSocket& sock, const Endpoint& to,
                                                     const Message& req, int tries = 20) {
  for (int i = 0; i < tries; ++i) {
    sock.send(to, encode(req));
    while (auto got = sock.receive(250)) {
      auto m = parse(got->second);
      if (m && m->transaction_id == req.transaction_id) return std::pair{got->first, *m};
    }
  }
  return std::nullopt;
}

TEST(StunInterop, OurCodecAgainstTurnserver) {
  if (!have_tool("turnserver")) GTEST_SKIP() << "turnserver (coturn) missing";
  TurnServer turn;
  ASSERT_TRUE(turn.started());
  auto sock = UdpSocket::bind(Endpoint{kLo1, 0});
  ASSERT_TRUE(sock);
  const Endpoint me = sock->local();
  const Endpoint a1p1{kLo1, turn.port()};
  const Endpoint a2p2{kLo2, static_cast<std::uint16_t>(turn.port() + 1)};

  // Plain Binding (retried while turnserver starts up).
  auto r = transact(*sock, a1p1, binding_request(counter_id(1)), 40);
  ASSERT_TRUE(r) << "turnserver did not answer on " << a1p1.to_string();
  EXPECT_EQ(r->first, a1p1);
  EXPECT_EQ(r->second.cls, MessageClass::kSuccess);
  EXPECT_EQ(r->second.xor_mapped_address, me);
  EXPECT_EQ(r->second.response_origin, a1p1);
  EXPECT_EQ(r->second.other_address, a2p2);
  EXPECT_TRUE(r->second.unknown_required.empty());

  // CHANGE-REQUEST ip+port: the answer comes from A2:P2 and says so.
  Message change = binding_request(counter_id(2), ChangeRequest{true, true});
  change.fingerprint = true;
  r = transact(*sock, a1p1, change);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, a2p2);
  EXPECT_EQ(r->second.response_origin, a2p2);
  EXPECT_EQ(r->second.xor_mapped_address, me);

  // Change port only: from A1:P2.
  r = transact(*sock, a1p1, binding_request(counter_id(3), ChangeRequest{false, true}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, (Endpoint{kLo1, a2p2.port}));
}

// The real thing the daemon will do: our discovery machine, a real socket, a real clock.
class SocketEffects : public nat::Effects {
 public:
  explicit SocketEffects(const UdpSocket& s) : sock_(s) {}
  void send(const Endpoint& to, std::span<const std::uint8_t> d) override { sock_.send(to, d); }

 private:
  const UdpSocket& sock_;
};

nat::Report discover_over_loopback(const Endpoint& server) {
  auto sock = UdpSocket::bind(Endpoint{kLo1, 0});
  EXPECT_TRUE(sock);
  SocketEffects effects(*sock);
  nat::DiscoveryConfig config;
  config.server = server;
  config.local_endpoints = {sock->local()};
  std::uint8_t counter = 0;
  nat::Discovery d(config, effects, [&](std::span<std::uint8_t> out) {
    for (auto& b : out) b = ++counter;
  });
  Time deadline = d.start(Clock::now());
  const Time give_up = Clock::now() + std::chrono::seconds(30);
  while (!d.done() && Clock::now() < give_up) {
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto got = sock->receive(static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 1000)));
    if (got && is_stun(got->second)) {
      deadline = d.on_response(Clock::now(), got->first, got->second);
    } else if (Clock::now() >= deadline) {
      deadline = d.on_tick(Clock::now());
    }
  }
  EXPECT_TRUE(d.done());
  return d.report();
}

TEST(StunInterop, OurDiscoveryAgainstTurnserver) {
  if (!have_tool("turnserver")) GTEST_SKIP() << "turnserver (coturn) missing";
  TurnServer turn;
  ASSERT_TRUE(turn.started());
  const Endpoint a1p1{kLo1, turn.port()};
  {  // wait until it answers
    auto sock = UdpSocket::bind(Endpoint{kLo1, 0});
    ASSERT_TRUE(transact(*sock, a1p1, binding_request(counter_id(9)), 40));
  }
  const nat::Report r = discover_over_loopback(a1p1);
  EXPECT_FALSE(r.udp_blocked);
  EXPECT_TRUE(r.server_rfc5780);
  EXPECT_EQ(r.behind_nat, false);
  EXPECT_EQ(r.mapping, nat::Behaviour::kEndpointIndependent);
  EXPECT_EQ(r.filtering, nat::Behaviour::kEndpointIndependent);
  EXPECT_EQ(r.type, nat::NatType::kOpen) << nat::describe(r);
}

TEST(StunInterop, OurDiscoveryAgainstOurServer) {
  auto quad = bind_quad(false);
  ASSERT_TRUE(quad);
  LoopbackServer server(std::move(*quad));
  const nat::Report r = discover_over_loopback(Endpoint{kLo1, server.port()});
  EXPECT_EQ(r.type, nat::NatType::kOpen) << nat::describe(r);
  EXPECT_EQ(r.filtering, nat::Behaviour::kEndpointIndependent);
  EXPECT_GT(server.answered_from(ServerSocket::kAltBoth), 0);
}

}  // namespace
}  // namespace p2p::wire::stun
