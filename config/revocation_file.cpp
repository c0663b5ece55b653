#include "config/revocation_file.hpp"

#include <sys/stat.h>

#include <cerrno>

namespace p2p::config {

bool RevocationFile::changed() {
  struct stat st {};
  std::optional<Stamp> now;
  if (::stat(path_.c_str(), &st) == 0) now = Stamp{st.st_ino, st.st_size, st.st_mtim};
  const bool same = now.has_value() == last_.has_value() &&
                    (!now || (now->inode == last_->inode && now->size == last_->size &&
                              now->mtime.tv_sec == last_->mtime.tv_sec &&
                              now->mtime.tv_nsec == last_->mtime.tv_nsec));
  last_ = now;
  return !same && now.has_value();
}

Expected<std::optional<crypto::RevocationList>, std::string> RevocationFile::load() const {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec) && !ec) return std::optional<crypto::RevocationList>{};
  auto list = crypto::load_revocation_list(path_);
  if (!list) return fail(list.error().message);
  return std::optional<crypto::RevocationList>(std::move(*list));
}

}  // namespace p2p::config
