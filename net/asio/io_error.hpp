// IoError: why a socket or file operation of the shells failed. `message` is a complete text
// for the operator (names the address or path and the operation); `sys_errno` is the errno,
// 0 when the failure was found before any system call.
#pragma once

#include <string>

namespace p2p::io {

struct IoError {
  int sys_errno = 0;
  std::string message;
};

// "<what>: <strerror(err)>" with the errno kept.
IoError system_error(const std::string& what, int err);

}  // namespace p2p::io
