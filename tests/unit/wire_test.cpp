// Wire formats shared by daemon and coordinator: outer packets and control messages.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "net/byte_io.hpp"
#include "net/control.hpp"
#include "net/packet.hpp"
#include "net/tcp_assist.hpp"

namespace p2p::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

Endpoint ep(const char* s) {
  return *Endpoint::parse(s);
}

// `tail`: the size of an optional trailing field (see `mapped`); the prefix without it is the
// same message without that field, so it decodes too.
template <class M>
void expect_round_trip(const M& m, std::size_t tail = 0) {
  Bytes out;
  encode_control(out, m);
  auto back = decode_control(out);
  ASSERT_TRUE(back.has_value()) << control_name(ControlMessage{m});
  ASSERT_TRUE(std::holds_alternative<M>(*back));
  EXPECT_EQ(std::get<M>(*back), m);
  // Every strict prefix must be rejected, and so must a trailing byte.
  for (std::size_t n = 0; n < out.size(); ++n) {
    if (tail != 0 && n == out.size() - tail) {
      EXPECT_TRUE(decode_control(std::span(out).first(n)).has_value()) << "without the tail";
      continue;
    }
    EXPECT_FALSE(decode_control(std::span(out).first(n)).has_value()) << "prefix " << n;
  }
  out.push_back(0);
  EXPECT_FALSE(decode_control(out).has_value());
}

TEST(Control, RoundTripsEveryFixedMessage) {
  expect_round_trip(Register{{ep("192.168.1.5:4000"), ep("[fd00::5]:4000")},
                             {NatType::kSymmetric, PortAllocation::kSequential, 2},
                             ep("198.51.100.9:4000")},
                    1 + 7);
  expect_round_trip(RegisterOk{ep("203.0.113.7:61000"), 30});
  expect_round_trip(Refused{RefuseCode::kRevoked, "certificate revoked"});
  expect_round_trip(PeerRequest{7, Ipv4{0x0a4d0002}});
  expect_round_trip(PeerRequest{8, std::string("home-pc")});
  expect_round_trip(Introduce{9,
                              Bytes(300, 0xab),
                              ep("198.51.100.1:5000"),
                              {ep("10.0.0.2:5000")},
                              {NatType::kFullCone, {}, 0},
                              true,
                              std::nullopt});
  expect_round_trip(
      Register{{}, {NatType::kFirewalled, PortAllocation::kPreserving, 0}, std::nullopt});
  expect_round_trip(Introduce{11,
                              Bytes(10, 0xcd),
                              ep("198.51.100.2:5000"),
                              {},
                              {NatType::kFirewalled, {}, 0},
                              false,
                              std::nullopt});
  expect_round_trip(PeerUnknown{10, "no such peer"});
  expect_round_trip(Goodbye{});
  expect_round_trip(PathProbe{0x0102030405060708, ep("1.2.3.4:5")});
  expect_round_trip(PathProbeAck{42, ep("[2001:db8::1]:443")});
  PunchToken token{};
  for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<std::uint8_t>(i * 7 + 1);
  expect_round_trip(TcpPunchRequest{12, Ipv4{0x0a4d0003}, token});
  expect_round_trip(TcpPunchOffer{13, Ipv4{0x0a4d0002}, token});
  expect_round_trip(TcpPunchGo{14, Ipv4{0x0a4d0003}, ep("198.51.100.9:40001")});
  expect_round_trip(TcpPunchGo{15, Ipv4{0x0a4d0002}, ep("[2001:db8::9]:443")});
  expect_round_trip(TcpPunchFailed{16, "no such node is registered"});
}

TEST(AssistHello, RoundTripsAndRejectsAnythingElse) {
  PunchToken token{};
  token.fill(0x5a);
  AssistHello h = encode_assist_hello(token);
  EXPECT_EQ(parse_assist_hello(h), token);
  // One byte short, one byte more, a wrong magic or version: never a token.
  EXPECT_FALSE(parse_assist_hello(std::span(h).first(h.size() - 1)).has_value());
  Bytes longer(h.begin(), h.end());
  longer.push_back(0);
  EXPECT_FALSE(parse_assist_hello(longer).has_value());
  for (std::size_t i : {0u, 3u, 4u}) {
    AssistHello bad = h;
    bad[i] ^= 0x01;
    EXPECT_FALSE(parse_assist_hello(bad).has_value()) << "byte " << i;
  }
  EXPECT_FALSE(parse_assist_hello(Bytes{}).has_value());
  expect_round_trip(Ping{0xdeadbeef});
  expect_round_trip(Pong{7});
}

TEST(Control, PongIsNoLargerThanPing) {
  Bytes ping, pong;
  encode_control(ping, Ping{1});
  encode_control(pong, Pong{1});
  EXPECT_EQ(ping.size(), 5u);
  EXPECT_LE(pong.size(), ping.size());
}

TEST(Control, MappedEndpointIsAnOptionalTail) {
  Register r{{ep("192.168.1.5:4000")},
             {NatType::kSymmetric, PortAllocation::kRandom, 0},
             ep("11.250.42.21:4000")};
  expect_round_trip(r, 1 + 7);
  Introduce i{9, Bytes(30, 0xab), ep("198.51.100.1:5000"), {}, {}, true, ep("[2a00::1]:5000")};
  expect_round_trip(i, 1 + 19);
  // Without a mapping, the encoding is what it was before the field existed.
  Bytes with, without;
  encode_control(with, r);
  r.mapped.reset();
  encode_control(without, r);
  EXPECT_EQ(with.size(), without.size() + 1 + 7);
  EXPECT_TRUE(std::equal(without.begin(), without.end(), with.begin()));
  // A tail that is not [1][endpoint] is malformed.
  Bytes bad = without;
  bad.push_back(2);
  EXPECT_FALSE(decode_control(bad));
  bad = with;
  bad.pop_back();
  EXPECT_FALSE(decode_control(bad));
  bad = with;
  bad.push_back(0);
  EXPECT_FALSE(decode_control(bad));
}

TEST(Control, TheOldRelayTypesAreRefused) {
  // 0x08/0x09 wrapped relayed datagrams before the relay frames (net/packet.hpp) replaced them.
  EXPECT_FALSE(decode_control(Bytes{0x08, 10, 0, 0, 2, 0x84}).has_value());
  EXPECT_FALSE(decode_control(Bytes{0x09, 10, 0, 0, 2, 0x84}).has_value());
}

TEST(Control, RejectsHostileFields) {
  EXPECT_FALSE(decode_control(Bytes{}).has_value());
  EXPECT_FALSE(decode_control(Bytes{0x3f}).has_value());     // unknown type
  EXPECT_FALSE(decode_control(Bytes{0x45, 0}).has_value());  // an IP packet is not control
  // Register with more endpoints than allowed.
  Bytes many = {0x01, static_cast<std::uint8_t>(kMaxLocalEndpoints + 1)};
  for (std::size_t i = 0; i <= kMaxLocalEndpoints; ++i) {
    ByteWriter(many).endpoint(ep("1.1.1.1:1"));
  }
  many.insert(many.end(), {0, 0, 0, 0});
  EXPECT_FALSE(decode_control(many).has_value());
  // An endpoint with an unknown address family.
  EXPECT_FALSE(decode_control(Bytes{0x02, 5, 1, 2, 3, 4, 0, 1, 0, 30}).has_value());
  // An Introduce whose certificate length claims more than the limit.
  Bytes intro = {0x05, 0, 0, 0, 1, 0xff, 0xff};
  intro.resize(70000, 0);
  EXPECT_FALSE(decode_control(intro).has_value());
  // NAT type out of range: the one after the last known (kFirewalled = 7) and beyond.
  EXPECT_TRUE(decode_control(Bytes{0x01, 0, 7, 0, 0, 0}).has_value());
  EXPECT_FALSE(decode_control(Bytes{0x01, 0, 8, 0, 0, 0}).has_value());
  EXPECT_FALSE(decode_control(Bytes{0x01, 0, 9, 0, 0, 0}).has_value());
  // An empty name.
  EXPECT_FALSE(decode_control(Bytes{0x04, 0, 0, 0, 1, 1, 0}).has_value());
}

// A certificate blob longer than its u16 length prefix can state is a programming error: the
// encoder aborts rather than append a message with a wrapped length.
TEST(Control, NeverEncodesATruncatedCertificate) {
  Introduce m{1, Bytes(0xffff, 0xab), ep("198.51.100.1:5000"), {}, {}, false, std::nullopt};
  Bytes out = {0x99};
  encode_control(out, m);
  EXPECT_EQ(out.size(), 1 + 1 + 4 + 2 + 0xffff + 7 + 1 + 4 + 1u);
  m.certificate.push_back(0xab);
  EXPECT_DEATH(encode_control(out, m), "cannot encode control message Introduce");
}

TEST(Control, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    Bytes b(rng() % 64);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    if (!b.empty()) b[0] = static_cast<std::uint8_t>(rng() % 0x12);
    auto m = decode_control(b);
    if (m) {
      Bytes again;
      encode_control(again, *m);
      EXPECT_EQ(again, b);  // the encoding is canonical
    }
  }
}

TEST(Packet, HeadersRoundTrip) {
  Bytes noise(48, 0x11), out;
  build_handshake_init(out, Pattern::kIK, 0xdeadbeef, noise);
  EXPECT_EQ(classify(out), DatagramKind::kHandshakeInit);
  auto init = parse_handshake_init(out);
  ASSERT_TRUE(init);
  EXPECT_EQ(init->pattern, Pattern::kIK);
  EXPECT_EQ(init->sender_index, 0xdeadbeefu);
  EXPECT_EQ(init->noise.size(), 48u);
  EXPECT_EQ(out.size(), kMinInitSize);  // padded
  EXPECT_EQ(init->mac1.data(), out.data() + out.size() - 32);
  EXPECT_EQ(init->mac2.data(), out.data() + out.size() - 16);
  build_handshake_init(out, Pattern::kXX, 7, noise, 700);  // padded to the answer expected
  EXPECT_EQ(out.size(), 700u);
  EXPECT_EQ(parse_handshake_init(out)->noise.size(), 48u);
  Bytes big(kMinInitSize, 0x22);
  build_handshake_init(out, Pattern::kXX, 7, big);  // never cut short
  EXPECT_EQ(out.size(), kInitHeaderSize + kMinInitSize + kInitTrailerSize);

  std::array<std::uint8_t, kCookieNonceSize> nonce{};
  nonce[0] = 9;
  std::array<std::uint8_t, kCookieSize + kTagSize> sealed{};
  sealed[31] = 5;
  build_cookie_reply(out, 0x0a0b0c0d, nonce, sealed);
  EXPECT_EQ(out.size(), kCookieReplySize);
  EXPECT_EQ(classify(out), DatagramKind::kCookieReply);
  auto cookie = parse_cookie_reply(out);
  ASSERT_TRUE(cookie);
  EXPECT_EQ(cookie->receiver_index, 0x0a0b0c0du);
  EXPECT_EQ(cookie->nonce[0], 9);
  EXPECT_EQ(cookie->sealed[31], 5);
  out.push_back(0);
  EXPECT_FALSE(parse_cookie_reply(out));

  build_handshake_resp(out, 1, 2, noise);
  auto resp = parse_handshake_resp(out);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->sender_index, 1u);
  EXPECT_EQ(resp->receiver_index, 2u);
  EXPECT_EQ(resp->noise.size(), 48u);

  build_handshake_final(out, 3, noise);
  auto fin = parse_handshake_final(out);
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->receiver_index, 3u);

  Bytes data(kDataOverhead + 10);
  write_data_header(data.data(), 0x01020304, 0x1122334455667788);
  auto d = parse_data(data);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->receiver_index, 0x01020304u);
  EXPECT_EQ(d->counter, 0x1122334455667788u);
  EXPECT_EQ(d->ciphertext.size(), kTagSize + 10);
  EXPECT_EQ(data[8], 0x88);  // counter is little-endian on the wire

  // A relay frame: the data header's fields, the vip, the tag, the inner datagram.
  Bytes relay(kRelayHeaderSize + 3, 0xee);
  write_relay_fields(relay.data(), PacketType::kRelayed, 0x01020304, 0x1122334455667788,
                     0x0a4d0002);
  EXPECT_EQ(classify(relay), DatagramKind::kRelayed);
  auto f = parse_relay(relay);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, PacketType::kRelayed);
  EXPECT_EQ(f->receiver_index, 0x01020304u);
  EXPECT_EQ(f->counter, 0x1122334455667788u);
  EXPECT_EQ(f->vip, 0x0a4d0002u);
  EXPECT_EQ(f->inner.data(), relay.data() + kRelayHeaderSize);
  EXPECT_EQ(f->inner.size(), 3u);
  EXPECT_EQ(relay[1] | relay[2] | relay[3], 0);  // pad
  // The associated data: the 20 header bytes, then the inner size big-endian.
  auto ad = relay_ad(relay.data(), 0x01020304);
  EXPECT_TRUE(std::equal(ad.begin(), ad.begin() + kRelayFieldsSize, relay.begin()));
  EXPECT_EQ(ad[20], 1);
  EXPECT_EQ(ad[23], 4);
}

TEST(Packet, ClassifiesEveryKindByItsFirstBytes) {
  // A STUN Binding request header: type 0x0001, length 0, the magic cookie, a transaction id.
  Bytes stun{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(classify(stun), DatagramKind::kStun);
  stun[4] = 0x22;  // no magic cookie: not STUN, and 0x00 is no p2pvpn type either
  EXPECT_EQ(classify(stun), DatagramKind::kUnknown);
  EXPECT_EQ(classify(Bytes{0x81, 1}), DatagramKind::kHandshakeInit);
  EXPECT_EQ(classify(Bytes{0x82}), DatagramKind::kHandshakeResp);
  EXPECT_EQ(classify(Bytes{0x83}), DatagramKind::kHandshakeFinal);
  EXPECT_EQ(classify(Bytes{0x84}), DatagramKind::kData);
  EXPECT_EQ(classify(Bytes{0x85}), DatagramKind::kCookieReply);
  EXPECT_EQ(classify(Bytes{0x86}), DatagramKind::kRelay);
  EXPECT_EQ(classify(Bytes{0x87}), DatagramKind::kRelayed);
  EXPECT_EQ(classify(Bytes{0x88}), DatagramKind::kUnknown);
  EXPECT_EQ(classify(Bytes{0x45, 0, 0, 20}), DatagramKind::kUnknown);  // a bare IPv4 packet
}

TEST(Packet, RejectsShortAndForeignDatagrams) {
  EXPECT_EQ(classify(Bytes{}), DatagramKind::kUnknown);
  EXPECT_EQ(classify(Bytes{0x00, 0x01}), DatagramKind::kUnknown);  // STUN's first byte, no header
  Bytes init(kInitHeaderSize + 1 + kInitTrailerSize, 0);
  init[0] = 0x81;
  init[1] = 1;
  init[3] = 1;  // noise_len 1
  EXPECT_TRUE(parse_handshake_init(init));
  init[3] = 0;  // no noise bytes
  EXPECT_FALSE(parse_handshake_init(init));
  init[3] = 2;  // noise runs into the MACs
  EXPECT_FALSE(parse_handshake_init(init));
  init[3] = 1;
  init[1] = 9;  // unknown pattern
  EXPECT_FALSE(parse_handshake_init(init));
  init[1] = 1;
  init.pop_back();  // no room for mac2
  EXPECT_FALSE(parse_handshake_init(init));
  EXPECT_FALSE(parse_cookie_reply(Bytes(kCookieReplySize - 1, 0x85)));
  EXPECT_FALSE(parse_handshake_resp(Bytes(12, 0x82)));
  EXPECT_FALSE(parse_data(Bytes(kDataOverhead - 1, 0x84)));
  Bytes wrong(kDataOverhead, 0x83);
  EXPECT_FALSE(parse_data(wrong));
  // A relay frame carries something: the header alone is refused, as are other types.
  EXPECT_FALSE(parse_relay(Bytes(kRelayHeaderSize, 0x86)));
  EXPECT_TRUE(parse_relay(Bytes(kRelayHeaderSize + 1, 0x86)));
  EXPECT_FALSE(parse_relay(Bytes(kRelayHeaderSize + 1, 0x84)));
}

}  // namespace
}  // namespace p2p::wire
