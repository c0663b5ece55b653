#include "daemon/ctl/command.hpp"

#include <chrono>

namespace p2p::ctl {

int report_error(const Context& ctx, std::string_view message) {
  ctx.err << "error: " << message << '\n';
  return kExitError;
}

UnixTime unix_now() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace p2p::ctl
