// Running a test body in a fresh network namespace, so that interfaces, addresses and routes it
// creates vanish with it, even when it fails or crashes.
//
// in_fresh_netns() forks; the child enters a new network namespace (unshare(CLONE_NEWNET)),
// runs options.setup and then `body` with the normal GoogleTest assertions, and exits. The
// parent reports each failure the child recorded (at the child's file and line, with its
// message), skips the test if the child skipped (e.g. no namespace support; setup may call
// GTEST_SKIP()), and fails it if the child crashed or outlived options.limit (then it is
// SIGKILLed). Without root the test is skipped before forking. Call it as the last statement
// of a test: a skip or failure returns from in_fresh_netns, not from the caller.
#pragma once

#include <chrono>
#include <functional>

namespace p2p::test {

struct NetnsOptions {
  bool loopback_up = false;     // bring "lo" up in the new namespace (skip if that fails)
  std::function<void()> setup;  // in the child, before body; may GTEST_SKIP() or fail
  std::chrono::milliseconds limit = std::chrono::seconds(60);  // for the whole child
};

void in_fresh_netns(const std::function<void()>& body, const NetnsOptions& options = {});

}  // namespace p2p::test
