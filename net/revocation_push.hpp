// The revocation list on the wire: split into RevocationChunks (net/control.hpp) by the
// coordinator, put back together by the node. The bytes are opaque here; the node decodes
// and verifies the whole list (crypto/revocation_list.hpp) once it is complete.
//
// RevocationAssembly keeps at most one list in progress, the newest sequence seen that is
// higher than the one the node holds: a chunk of a newer list starts over, a chunk of an older
// one or of a different shape (count, a short chunk that is not the last) is a counted drop.
// Memory is bounded by kMaxRevocationChunks * kRevocationChunkSize.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "net/control.hpp"

namespace p2p::wire {

// The chunks of `encoded` (1..kMaxRevocationChunks * kRevocationChunkSize bytes) for list
// `sequence`.
std::vector<RevocationChunk> split_revocation_list(std::uint64_t sequence,
                                                   std::span<const std::uint8_t> encoded);

class RevocationAssembly {
 public:
  enum class Result { kIncomplete, kComplete, kStale, kInconsistent };

  // Adds a chunk; `held` is the sequence the node holds. kComplete: take() has the list.
  Result add(const RevocationChunk& chunk, std::uint64_t held);
  // The complete list's bytes (after kComplete; taken, the assembly starts empty).
  std::vector<std::uint8_t> take();

 private:
  std::uint64_t sequence_ = 0;
  std::uint8_t count_ = 0;
  std::size_t received_ = 0;
  std::vector<std::vector<std::uint8_t>> parts_;
};

}  // namespace p2p::wire
