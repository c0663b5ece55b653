// Fuzz target for the revocation list: the same bytes as a binary list and as armoured text,
// and as the chunks a coordinator pushes (split, then reassembled in a shuffled order).
//
// Invariants beyond "no crash": anything that decodes re-encodes to exactly the input (one
// encoding per list), a made-up list never verifies against a fixed CA nor is taken by
// Revocations, and reassembly gives back exactly the bytes that were split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "crypto/revocation_list.hpp"
#include "net/revocation_push.hpp"

namespace {

using namespace p2p::crypto;

const CaCertificate& fixed_ca() {
  static const CaCertificate ca = [] {
    SecureBuffer<32> seed;
    for (std::size_t i = 0; i < seed.size(); ++i) seed.data()[i] = static_cast<std::uint8_t>(i);
    return *make_ca_certificate("fuzz-ca", Ed25519KeyPair::from_seed(seed), 0, 4'000'000'000);
  }();
  return ca;
}

void check(const RevocationList& l, std::span<const std::uint8_t> original) {
  auto enc = encode(l);
  if (!original.empty() && !std::equal(enc.begin(), enc.end(), original.begin(), original.end()))
    std::abort();  // two encodings for one list
  (void)describe(l);
  (void)l.revoked_hex();
  if (verify(l, fixed_ca())) std::abort();  // forged a signature?
  Revocations r;
  if (r.update(l, fixed_ca())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  if (auto l = decode_revocation_list(bytes)) check(*l, bytes);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto l = revocation_list_from_armor(text)) check(*l, {});

  auto chunks = p2p::wire::split_revocation_list(size, bytes);
  p2p::wire::RevocationAssembly a;
  using R = p2p::wire::RevocationAssembly::Result;
  R last = R::kIncomplete;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    // Every chunk once, in an order the input picks (a rotation), some twice.
    const auto& c = chunks[(i + (size ? data[0] : 0)) % chunks.size()];
    last = a.add(c, 0);
    if (size > 1 && data[1] & 1) (void)a.add(c, 0);
    if (last == R::kInconsistent || last == R::kStale) std::abort();
  }
  if (!chunks.empty()) {
    if (last != R::kComplete) std::abort();
    auto back = a.take();
    if (!std::equal(back.begin(), back.end(), bytes.begin(), bytes.end())) std::abort();
  }
  return 0;
}
