// The CA-signed revocation list a config names (`revocation_list:` in mesh.yaml and
// coordinator.yaml): loading it, and noticing cheaply (one stat) when the file was replaced
// or rewritten, so a shell can watch it on a timer and a reload can read it again.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>

#include "crypto/revocation_list.hpp"
#include "net/expected.hpp"

namespace p2p::config {

class RevocationFile {
 public:
  explicit RevocationFile(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const { return path_; }
  // True when the file's inode, size or modification time differ from the last call's (the
  // first call: when the file exists). Never throws.
  bool changed();
  // The list in the file; nullopt when there is no file; the error names the file and what is
  // wrong with it.
  Expected<std::optional<crypto::RevocationList>, std::string> load() const;

 private:
  struct Stamp {
    ino_t inode = 0;
    off_t size = -1;
    timespec mtime{};
  };
  std::filesystem::path path_;
  std::optional<Stamp> last_;
};

}  // namespace p2p::config
