// Time as the protocol cores see it: a monotonic instant handed in by the caller.
// The cores never read a clock; the shells pass steady_clock::now(), the simulated network
// passes its virtual time (any time_point it likes, starting from the epoch).
#pragma once

#include <chrono>

namespace p2p {

using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using Duration = Clock::duration;

// Wall-clock seconds since the Unix epoch, for certificate validity (also handed in).
using UnixTime = std::int64_t;

}  // namespace p2p
