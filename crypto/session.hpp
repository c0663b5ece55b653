// Session: a TransportSession together with the two indices that name it on the wire: ours
// (the receiver index the other side puts in what it sends us) and theirs (what we put in what
// we send). Node<->coordinator and peer<->peer sessions are both Sessions.
//
// seal() is the one way anything is encrypted for sending, in the node and the coordinator
// alike: IP packets, keepalives and control messages; seal_relay() wraps a peer datagram for
// the relay, in the node and in the coordinator, authenticating the wrapping only. The plaintext
// sits in a PacketView with at least wire::kDataHeaderSize bytes of headroom and wire::kTagSize of
// tailroom; it leaves as a complete Data datagram (net/packet.hpp) in the same view, so nothing
// is copied. No allocation, no logging.
#pragma once

#include <cstdint>

#include "crypto/crypto_workers.hpp"
#include "crypto/transport.hpp"
#include "net/expected.hpp"
#include "net/packet.hpp"
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

  // Wraps the peer datagram `v` in place as a relay frame of `type` (net/packet.hpp: Relay
  // from a node, Relayed from the coordinator) naming `vip`: the kRelayHeaderSize header goes
  // in front and its tag covers the header and the size, not `v`'s bytes. Errors: too_short
  // (no headroom), expired, exhausted; `v` is unchanged on error.
  Expected<void, TransportError> seal_relay(Time now, PacketView& v, wire::PacketType type,
                                            std::uint32_t vip);
  // Checks the tag of the relay frame `frame` (all of it, as received) whose counter is
  // `counter`: expiry, the replay window, then the tag; advances the window when it verifies.
  // Nothing of the frame is changed.
  Expected<void, TransportError> open_relay(Time now, std::uint64_t counter,
                                            std::span<std::uint8_t> frame);
};

}  // namespace p2p::crypto
