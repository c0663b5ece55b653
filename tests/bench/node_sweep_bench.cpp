// node_sweep_bench: the "exhaustion from inside" figures of issue 9, printed, not asserted.
// One node in the simulated network (virtual clock, one process) sends one packet to each of
// 10,000 mesh addresses nobody has, 1,000 a second, as a `ping` sweep of its own host would;
// then the network runs 10 s more. Printed: the node's peers, the heap it grew by (mallinfo2),
// its status --json size, the CPU the sweep took. Only API older than the peer-table work is
// used, so the same file measures the code before it (see contrib/doc or the commit message).
//   usage: node_sweep_bench [addresses=10000] [per_second=1000]
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/status/status_json.hpp"
#include "tests/support/sim_net.hpp"

namespace {

using namespace std::chrono_literals;
using namespace p2p;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  const int addresses = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const int per_second = argc > 2 ? std::atoi(argv[2]) : 1'000;
  spdlog::set_level(spdlog::level::off);

  sim::SimNet net{11};
  sim::TestCa ca{net.unix_now()};
  net.add_coordinator(*Endpoint::parse("203.0.113.10:7400"), Ipv4::parse("203.0.113.11"),
                      ca.issue("coord", "10.77.0.1/16", crypto::Role::coordinator), ca.cert);
  core::NodeSettings settings;
  settings.coordinators = {*Endpoint::parse("203.0.113.10:7400")};
  auto& a = net.add_node("a", -1, *Endpoint::parse("198.51.100.2:5000"),
                         ca.issue("a", "10.77.0.2/16"), ca.cert, settings);
  if (!net.run_until([&] { return a.node().registered(); }, 10s)) {
    std::fprintf(stderr, "node did not register\n");
    return 1;
  }

  const std::size_t heap_before = mallinfo2().uordblks;
  const double cpu_before = cpu_seconds();
  const auto gap = std::chrono::nanoseconds(1'000'000'000 / per_second);
  for (int i = 0; i < addresses; ++i) {
    // 10.77.1.0 upwards: inside the mesh prefix, registered by nobody.
    a.send_udp_to(Ipv4{0x0a4d0100u + static_cast<std::uint32_t>(i)}, "sweep");
    net.run_for(gap);
  }
  net.run_for(10s);
  const double cpu = cpu_seconds() - cpu_before;
  const std::size_t heap = mallinfo2().uordblks - heap_before;
  const auto status = a.node().status(net.now());
  const std::string json = daemon::status_to_json(status).dump();

  std::printf("sweep of %d addresses at %d/s (virtual), then 10 s\n", addresses, per_second);
  std::printf("  peers in the table:    %zu\n", status.peers.size());
  std::printf("  heap growth:           %.1f MB (mallinfo2 uordblks delta)\n", heap / 1e6);
  std::printf("  max RSS of the process: %.1f MB\n", rss_kib() / 1e3);
  std::printf("  status --json:         %zu bytes\n", json.size());
  std::printf("  CPU for the sweep:     %.2f s\n", cpu);
  std::printf("  drops:                 %s\n",
              daemon::status_to_json(status)["drops"].dump().c_str());
  return 0;
}
