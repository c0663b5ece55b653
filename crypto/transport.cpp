#include "crypto/transport.hpp"

#include <algorithm>

namespace p2p::crypto {

std::string_view to_string(TransportError e) {
  switch (e) {
    case TransportError::replayed: return "replayed";
    case TransportError::too_old: return "too_old";
    case TransportError::auth_failed: return "auth_failed";
    case TransportError::expired: return "expired";
    case TransportError::too_short: return "too_short";
    case TransportError::exhausted: return "exhausted";
  }
  return "unknown";
}

// --- ReplayWindow ----------------------------------------------------------------------------

Expected<void, TransportError> ReplayWindow::check(std::uint64_t counter) const {
  if (counter >= kRejectAfterMessages) return fail(TransportError::exhausted);
  if (counter > highest_) return {};
  if (highest_ - counter > kWindowSize) return fail(TransportError::too_old);
  const std::uint64_t block = (counter / kBlockBits) % kBlocks;
  const std::uint64_t bit = std::uint64_t{1} << (counter % kBlockBits);
  if (bitmap_[block] & bit) return fail(TransportError::replayed);
  return {};
}

void ReplayWindow::update(std::uint64_t counter) {
  const std::uint64_t index = counter / kBlockBits;
  if (counter > highest_) {
    // Clear the blocks the window slides over (at most all of them).
    const std::uint64_t current = highest_ / kBlockBits;
    const std::uint64_t steps = std::min<std::uint64_t>(index - current, kBlocks);
    for (std::uint64_t i = 1; i <= steps; ++i) bitmap_[(current + i) % kBlocks] = 0;
    highest_ = counter;
  }
  bitmap_[index % kBlocks] |= std::uint64_t{1} << (counter % kBlockBits);
}

// --- TransportSession ------------------------------------------------------------------------

TransportSession::TransportSession(noise::TransportKeys keys, Time created, bool initiator)
    : send_key_(std::move(keys.send)),
      recv_key_(std::move(keys.recv)),
      created_(created),
      initiator_(initiator) {}

Expected<std::uint64_t, TransportError> TransportSession::reserve(Time now, std::size_t buffer_size,
                                                                  std::size_t plaintext_len) {
  if (buffer_size < kTransportTagLen || plaintext_len > buffer_size - kTransportTagLen) {
    return fail(TransportError::too_short);
  }
  if (is_expired(now)) return fail(TransportError::expired);
  if (send_counter_ >= kRejectAfterMessages) return fail(TransportError::exhausted);
  return send_counter_++;
}

Expected<std::uint64_t, TransportError> TransportSession::encrypt(
    Time now, std::span<std::uint8_t> buffer, std::size_t plaintext_len,
    std::span<const std::uint8_t> ad) {
  auto counter = reserve(now, buffer.size(), plaintext_len);
  if (!counter) return counter;
  noise::seal(send_key_.span(), *counter, ad, buffer.first(plaintext_len),
              buffer.subspan(plaintext_len).first<kTransportTagLen>());
  return counter;
}

Expected<void, TransportError> TransportSession::check_open(Time now, std::uint64_t counter,
                                                            std::size_t packet_size) const {
  if (packet_size < kTransportTagLen) return fail(TransportError::too_short);
  if (is_expired(now)) return fail(TransportError::expired);
  return window_.check(counter);
}

Expected<void, TransportError> TransportSession::accept_opened(Time now, std::uint64_t counter,
                                                               bool authentic) {
  if (is_expired(now)) return fail(TransportError::expired);
  if (auto r = window_.check(counter); !r) return r;
  if (!authentic) return fail(TransportError::auth_failed);
  window_.update(counter);
  return {};
}

Expected<std::size_t, TransportError> TransportSession::decrypt(Time now, std::uint64_t counter,
                                                                std::span<std::uint8_t> packet,
                                                                std::span<const std::uint8_t> ad) {
  if (auto r = check_open(now, counter, packet.size()); !r) return fail(r.error());
  const std::size_t len = packet.size() - kTransportTagLen;
  if (!noise::open(recv_key_.span(), counter, ad, packet.first(len),
                   packet.subspan(len).first<kTransportTagLen>())) {
    return fail(TransportError::auth_failed);
  }
  window_.update(counter);
  return len;
}

bool TransportSession::should_rekey(Time now) const {
  if (send_counter_ >= kRekeyAfterMessages) return true;
  const Duration limit =
      initiator_ ? kRekeyAfterTime : kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout;
  return now - created_ >= limit;
}

}  // namespace p2p::crypto
