#include "tests/support/netns.hpp"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace p2p::test {
namespace {

using Clock = std::chrono::steady_clock;

// What the child sends back: its new test part results, one per record.
struct Part {
  ::testing::TestPartResult::Type type;
  std::string file;
  int line;
  std::string message;
};

const ::testing::TestResult& current_result() {
  return *::testing::UnitTest::GetInstance()->current_test_info()->result();
}

void put(std::string& out, const std::string& field) {
  out += std::to_string(field.size()) + ":" + field;
}

std::string encode(int first_part) {
  const auto& result = current_result();
  std::string out;
  for (int i = first_part; i < result.total_part_count(); ++i) {
    const auto& p = result.GetTestPartResult(i);
    put(out, std::to_string(static_cast<int>(p.type())));
    put(out, p.file_name() ? p.file_name() : "");
    put(out, std::to_string(p.line_number()));
    put(out, p.message());
  }
  return out;
}

std::vector<Part> decode(const std::string& in) {
  std::vector<Part> parts;
  std::size_t pos = 0;
  auto field = [&](std::string& f) {
    const auto colon = in.find(':', pos);
    if (colon == std::string::npos) return false;
    const std::size_t n = std::stoul(in.substr(pos, colon - pos));
    if (colon + 1 + n > in.size()) return false;
    f = in.substr(colon + 1, n);
    pos = colon + 1 + n;
    return true;
  };
  std::string type, file, line, message;
  while (field(type) && field(file) && field(line) && field(message)) {
    parts.push_back({static_cast<::testing::TestPartResult::Type>(std::stoi(type)), file,
                     std::stoi(line), message});
  }
  return parts;
}

bool bring_loopback_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return ok;
}

void child_setup(const NetnsOptions& options) {
  if (::unshare(CLONE_NEWNET) != 0)
    GTEST_SKIP() << "cannot create a network namespace here: " << std::strerror(errno);
  if (options.loopback_up && !bring_loopback_up())
    GTEST_SKIP() << "cannot bring lo up in the new network namespace";
  if (options.setup) options.setup();
}

[[noreturn]] void run_child(int report_fd, int first_part, const std::function<void()>& body,
                            const NetnsOptions& options) {
  child_setup(options);
  const auto& result = current_result();
  auto any = [&](bool (::testing::TestPartResult::*is)() const) {
    for (int i = first_part; i < result.total_part_count(); ++i)
      if ((result.GetTestPartResult(i).*is)()) return true;
    return false;
  };
  if (!any(&::testing::TestPartResult::failed) && !any(&::testing::TestPartResult::skipped)) body();
  std::fflush(stdout);
  std::fflush(stderr);
  const std::string report = encode(first_part);
  for (std::size_t done = 0; done < report.size();) {
    const ssize_t n = ::write(report_fd, report.data() + done, report.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  _exit(any(&::testing::TestPartResult::failed) ? 1 : 0);
}

}  // namespace

void in_fresh_netns(const std::function<void()>& body, const NetnsOptions& options) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a network namespace";
  const int first_part = current_result().total_part_count();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);  // the write end stays open until the child exits
    run_child(fds[1], first_part, body, options);
  }
  ::close(fds[1]);

  // Read the report until the child closes its end (it exited) or the limit passes.
  std::string report;
  bool hung = false;
  const auto deadline = Clock::now() + options.limit;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      hung = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends the loop
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (hung) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (hung) {
    GTEST_FAIL() << "test child hung for " << options.limit.count()
                 << " ms and was killed (its messages, if any, are above)";
  }
  if (!WIFEXITED(status)) {
    GTEST_FAIL() << "test child died with signal " << WTERMSIG(status)
                 << " (its messages, if any, are above)";
  }

  std::string skipped;
  bool failed = false;
  for (const auto& part : decode(report)) {
    if (part.type == ::testing::TestPartResult::kSkip) {
      skipped += part.message;
    } else if (part.type != ::testing::TestPartResult::kSuccess) {
      failed = true;
      ADD_FAILURE_AT(part.file.empty() ? "unknown file" : part.file.c_str(), part.line)
          << "in the network-namespace test child:\n"
          << part.message;
    }
  }
  if (WEXITSTATUS(status) == 1) {
    EXPECT_TRUE(failed) << "test child failed but reported no failure";
  } else {
    EXPECT_EQ(WEXITSTATUS(status), 0) << "test child exited with an unexpected status";
  }
  if (!skipped.empty() && !failed) GTEST_SKIP() << skipped;
}

}  // namespace p2p::test
