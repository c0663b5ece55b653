// NodeShell, part two: the signed revocation list's file (read at start and on reload) and
// the certificate lifetime lines.
#include <utility>

#include "daemon/shell/node_shell.hpp"

namespace p2p::daemon {

Expected<bool, std::string> NodeShell::reload_revocation_list() {
  if (!revocation_file_) return false;
  auto list = revocation_file_->load();
  if (!list) {
    log_.node->error("revocation list not taken: {}", list.error());
    return fail(list.error());
  }
  if (!*list) return false;
  Time now = Clock::now();
  auto taken = node_->set_revocation_list(now, **list);
  if (started_) after_event(now);
  if (!taken) {
    log_.node->error("revocation list {} not taken: {}", revocation_file_->path().string(),
                     taken.error().message);
    return fail(taken.error().message);
  }
  return *taken;
}

void NodeShell::log_certificate_lifetimes(Time now) {
  constexpr Duration kDaily = std::chrono::hours(24);
  const auto c = node_->status(now).certificates;
  const bool expiry_news = c.expired && !expiry_logged_;
  if (!expiry_news && lifetimes_logged_ && now - *lifetimes_logged_ < kDaily) return;
  lifetimes_logged_ = now;
  expiry_logged_ = c.expired;
  for (const auto& w : c.warnings) {
    if (c.expired) {
      log_.node->error("{}", w);
    } else {
      log_.node->warn("{}", w);
    }
  }
}

}  // namespace p2p::daemon
