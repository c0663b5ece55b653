// Fuzz target for the config loaders: arbitrary bytes as mesh.yaml and as coordinator.yaml
// must give a config or a ConfigError, never a crash or any other exception (yaml-cpp's own
// exceptions are converted at the loader's boundary).
//
// The files a config names (keys, certificates) exist in a private temporary folder, so
// inputs can get past the file checks to the later validation. Inputs over 4 KiB are skipped:
// real configs are small, and yaml-cpp's parser recurses once per nesting level (it stops
// itself at depth 2000, which fits in the stack even under ASan, see the seed deep_nesting).
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "config/coordinator_config.hpp"
#include "config/mesh_config.hpp"

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxInput = 4096;

fs::path g_workdir;

const fs::path& make_workdir() {
  std::string tmpl = (fs::temp_directory_path() / "fuzz-config-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) abort();
  g_workdir = tmpl;
  const fs::path& dir = g_workdir;
  for (auto name : {"node.key", "coord.key", "node.crt", "coord.crt", "ca.crt"}) {
    std::ofstream(dir / name) << "x";
    fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write);
  }
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_workdir, ec);
  });
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path dir = make_workdir();
  if (size > kMaxInput) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    p2p::config::parse_mesh_config(text, dir / "mesh.yaml");
  } catch (const p2p::config::ConfigError&) {
  }
  try {
    p2p::config::parse_coordinator_config(text, dir / "coordinator.yaml");
  } catch (const p2p::config::ConfigError&) {
  }
  return 0;
}
