// What every p2pvpnctl command shares: its output streams, the wall clock reading it was
// started with, and the exit-code convention. Commands are plain functions taking their
// options and a Context; the CLI layer (main.cpp, add_*_commands) only wires flags to them.
#pragma once

#include <ostream>
#include <string_view>

#include "net/time.hpp"

namespace p2p::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (e.g. verification)
inline constexpr int kExitError = 2;    // bad input, unreadable file, refused overwrite

struct Context {
  std::ostream& out;  // results (stdout)
  std::ostream& err;  // errors and notes (stderr)
  UnixTime now;       // wall clock at start, in Unix seconds
};

// Prints "error: <message>" to ctx.err and returns kExitError.
int report_error(const Context& ctx, std::string_view message);

// Reads the wall clock (the only place p2pvpnctl does).
UnixTime unix_now();

}  // namespace p2p::ctl
