#include "tests/support/spawn.hpp"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "tests/support/temp_dir.hpp"

extern char** environ;

namespace p2p::test {
namespace {

namespace fs = std::filesystem;

// A fresh empty file under the temp folder, removed when this goes away.
class CaptureFile {
 public:
  explicit CaptureFile(const char* what) {
    std::string tmpl =
        (fs::temp_directory_path() / ("p2p-" + std::string(what) + "-XXXXXX")).string();
    const int fd = ::mkstemp(tmpl.data());
    if (fd >= 0) ::close(fd);
    path_ = tmpl;
  }
  ~CaptureFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  CaptureFile(const CaptureFile&) = delete;
  CaptureFile& operator=(const CaptureFile&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return -1;
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC;
  if (!options.stdout_to.empty())
    posix_spawn_file_actions_addopen(&fa, 1, options.stdout_to.c_str(), kFlags, 0600);
  if (!options.stderr_to.empty())
    posix_spawn_file_actions_addopen(&fa, 2, options.stderr_to.c_str(), kFlags, 0600);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, options.cwd.c_str());
  pid_t pid = -1;
  // posix_spawnp runs a name containing '/' as a path, like posix_spawn.
  if (posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

RunResult run(const std::vector<std::string>& argv, const fs::path& cwd,
              std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  CaptureFile out("stdout"), err("stderr");
  RunResult r;
  const auto start = Clock::now();
  const pid_t pid = spawn(argv, {cwd, out.path(), err.path()});
  if (pid > 0) {
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid || (done < 0 && errno != EINTR)) break;
      if (Clock::now() - start > limit) {
        ADD_FAILURE() << argv[0] << " still running after " << limit.count() << " ms: hung; killed";
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  r.took = Clock::now() - start;
  r.out = read_file(out.path());
  r.err = read_file(err.path());
  return r;
}

}  // namespace p2p::test
