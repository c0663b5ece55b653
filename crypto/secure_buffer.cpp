#include "crypto/secure_buffer.hpp"

#include <cstdio>
#include <cstdlib>

namespace p2p::crypto {

void init_sodium() {
  // sodium_init() is itself thread-safe and idempotent; a static makes later calls free.
  static const bool ok = [] { return sodium_init() >= 0; }();
  if (!ok) {
    std::fputs("fatal: libsodium failed to initialise\n", stderr);
    std::abort();
  }
}

}  // namespace p2p::crypto
