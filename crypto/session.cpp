#include "crypto/session.hpp"

#include "net/packet.hpp"

namespace p2p::crypto {

Expected<void, TransportError> Session::seal(Time now, PacketView& v, CryptoJobs* defer) {
  if (v.headroom() < wire::kDataHeaderSize || v.tailroom() < wire::kTagSize)
    return fail(TransportError::too_short);
  const std::size_t len = v.size();
  auto buffer = v.span_with_tailroom();
  const auto sealed = buffer.first(len + wire::kTagSize);
  const bool deferred = defer && defer->takes(sealed);
  auto counter =
      deferred ? transport.reserve(now, buffer.size(), len) : transport.encrypt(now, buffer, len);
  if (counter && deferred)
    (void)defer->add(CryptoJob::Kind::kSeal, transport.send_key(), *counter, sealed);
  if (!counter) return fail(counter.error());
  v.resize(len + wire::kTagSize);
  v.push_front(wire::kDataHeaderSize);
  wire::write_data_header(v.data(), remote_index, *counter);
  return {};
}

Expected<void, TransportError> Session::seal_relay(Time now, PacketView& v, wire::PacketType type,
                                                   std::uint32_t vip) {
  if (v.headroom() < wire::kRelayHeaderSize) return fail(TransportError::too_short);
  const std::size_t inner = v.size();
  std::uint8_t* h = v.data() - wire::kRelayHeaderSize;
  // The counter is reserved before the header is written: the fields hold it.
  const std::span<std::uint8_t> tag(h + wire::kRelayFieldsSize, wire::kTagSize);
  auto counter = transport.reserve(now, tag.size(), 0);
  if (!counter) return fail(counter.error());
  wire::write_relay_fields(h, type, remote_index, *counter, vip);
  const auto ad = wire::relay_ad(h, inner);
  noise::seal(transport.send_key(), *counter, ad, {}, tag.first<wire::kTagSize>());
  v.push_front(wire::kRelayHeaderSize);
  return {};
}

Expected<void, TransportError> Session::open_relay(Time now, std::uint64_t counter,
                                                   std::span<std::uint8_t> frame) {
  if (frame.size() <= wire::kRelayHeaderSize) return fail(TransportError::too_short);
  const auto ad = wire::relay_ad(frame.data(), frame.size() - wire::kRelayHeaderSize);
  auto n =
      transport.decrypt(now, counter, frame.subspan(wire::kRelayFieldsSize, wire::kTagSize), ad);
  if (!n) return fail(n.error());
  return {};
}

}  // namespace p2p::crypto
