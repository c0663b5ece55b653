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

}  // namespace p2p::crypto
