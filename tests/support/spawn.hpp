// Running a program from a test, as a user would: posix_spawn with the test's environment.
//
// spawn(): starts it and returns its pid (-1 if it could not be started); the caller waits for
// or kills it. run(): spawns, waits at most `limit` (then SIGKILLs it and fails the test) and
// returns its exit code with everything it wrote to stdout and stderr.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace p2p::test {

struct SpawnOptions {
  std::filesystem::path cwd;        // empty: the test's own working directory
  std::filesystem::path stdout_to;  // empty: inherited; else created/truncated (0600), e.g.
  std::filesystem::path stderr_to;  //   "/dev/null" to discard
};

// Starts argv[0] (looked up in PATH unless it contains a '/') with argv and the test's
// environment. Returns the child's pid, or -1 if it could not be started.
pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

struct RunResult {
  int code = -1;  // exit status, 128 + signal if killed by one, -1 if it never started
  std::string out, err;
  std::chrono::steady_clock::duration took{};  // from spawn to exit
};

// Runs argv to completion in `cwd` (empty: the test's) and captures stdout and stderr. A child
// still running after `limit` is SIGKILLed and the test fails ("... hung; killed").
RunResult run(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {},
              std::chrono::milliseconds limit = std::chrono::seconds(20));

}  // namespace p2p::test
