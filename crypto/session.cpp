#include "crypto/session.hpp"

#include "net/packet.hpp"

namespace p2p::crypto {

Expected<void, TransportError> Session::seal(Time now, PacketView& v) {
  if (v.headroom() < wire::kDataHeaderSize || v.tailroom() < wire::kTagSize)
    return fail(TransportError::too_short);
  const std::size_t len = v.size();
  auto counter = transport.encrypt(now, v.span_with_tailroom(), len);
  if (!counter) return fail(counter.error());
  v.resize(len + wire::kTagSize);
  v.push_front(wire::kDataHeaderSize);
  wire::write_data_header(v.data(), remote_index, *counter);
  return {};
}

}  // namespace p2p::crypto
