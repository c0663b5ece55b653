// Session: a TransportSession together with the two indices that name it on the wire: ours
// (the receiver index the other side puts in what it sends us) and theirs (what we put in what
// we send). Node<->coordinator and peer<->peer sessions are both Sessions.
//
// seal() is the one way anything is encrypted for sending, in the node and the coordinator
// alike: IP packets, keepalives, control messages and the relay's wrapping. The plaintext sits
// in a PacketView with at least wire::kDataHeaderSize bytes of headroom and wire::kTagSize of
// tailroom; it leaves as a complete Data datagram (net/packet.hpp) in the same view, so nothing
// is copied. No allocation, no logging.
#pragma once

#include <cstdint>

#include "crypto/crypto_workers.hpp"
#include "crypto/transport.hpp"
#include "net/expected.hpp"
#include "net/packet_view.hpp"
#include "net/time.hpp"

namespace p2p::crypto {

struct Session {
  TransportSession transport;
  std::uint32_t local_index;
  std::uint32_t remote_index;

  // Encrypts `v` in place, appends the tag and puts the Data header in front. Errors:
  // too_short (no headroom or tailroom), expired, exhausted; `v` is unchanged on error.
  Expected<void, TransportError> seal(Time now, PacketView& v) { return seal(now, v, nullptr); }
  // The same, but when `defer` takes the packet's bytes only the counter is reserved and the
  // header written: the encryption is a job in `defer` (crypto/crypto_workers.hpp), and the
  // datagram must not leave before the job has run.
  Expected<void, TransportError> seal(Time now, PacketView& v, CryptoJobs* defer);
};

}  // namespace p2p::crypto
