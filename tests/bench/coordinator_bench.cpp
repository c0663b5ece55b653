// coordinator_bench: one Coordinator core in this process registers N simulated nodes (real
// Noise XX handshakes, real certificates from a CA made here), then relays and answers
// lookups, and prints what a registered node costs. Run by contrib/bench-coordinator.sh.
//
//   coordinator_bench [N=100000] [RELAYED=100000] [LOOKUPS=100000]
//
// CPU figures are the thread CPU time (CLOCK_THREAD_CPUTIME_ID) spent inside the
// coordinator's on_udp() only: not the nodes' side, not certificate issuing. Memory: the
// growth of the resident set and of malloc's live bytes (mallinfo2) from before the first
// registration to after the last, divided by N; each node's client side is discarded as soon
// as it has registered, so what grows is the coordinator's. Memory the coordinator takes
// outside malloc (sodium_malloc'd keys are mmap()ed pages) shows in the RSS figure and in the
// count of memory mappings, not in mallinfo2.
//
// It also times, in the same process, the public-key operations a Noise XX responder with a
// certificate cannot do without (one X25519 key generation, three X25519 Diffie-Hellmans,
// one Ed25519 signature check) and prints that floor for 100,000 registrations, so the
// measured cost can be read against what the cryptography alone takes on this CPU.
#include <malloc.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <new>
#include <string>

#include "tests/support/coord_fleet.hpp"

namespace {

using namespace std::chrono_literals;
using p2p::sim::CoordFleet;
using p2p::sim::FleetNode;

long rss_bytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

long mappings() {
  std::ifstream f("/proc/self/maps");
  long n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

long max_map_count() {
  long n = 0;
  std::ifstream("/proc/sys/vm/max_map_count") >> n;
  return n;
}

std::size_t heap_bytes() {
  return mallinfo2().uordblks;
}

p2p::Ipv4 vip_of(long i) {
  return p2p::Ipv4{0x0A000000u + static_cast<std::uint32_t>(i) + 2};
}

p2p::Endpoint endpoint_of(long i) {
  return p2p::Endpoint{p2p::Ipv4{0x64400000u + static_cast<std::uint32_t>(i)}, 40000};
}

std::chrono::nanoseconds thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Thread CPU time of one call of `op`, the median of 5 rounds of `reps` calls.
template <typename Op>
double op_us(int reps, Op op) {
  double rounds[5];
  for (double& r : rounds) {
    const auto t0 = thread_cpu();
    for (int i = 0; i < reps; ++i) op();
    r = static_cast<double>((thread_cpu() - t0).count()) / reps / 1e3;
  }
  std::sort(std::begin(rounds), std::end(rounds));
  return rounds[2];
}

// The floor: what one XX responder registration costs in public-key operations alone.
void print_public_key_floor() {
  std::uint8_t sk[32], pk[32], out[32], esk[64], epk[32], sig[64], msg[160] = {};
  randombytes_buf(sk, sizeof sk);
  crypto_scalarmult_base(pk, sk);
  crypto_sign_keypair(epk, esk);
  crypto_sign_detached(sig, nullptr, msg, sizeof msg, esk);
  volatile int sink = 0;
  const double base = op_us(2000, [&] { sink = sink + crypto_scalarmult_base(out, sk); });
  const double dh = op_us(2000, [&] { sink = sink + crypto_scalarmult(out, sk, pk); });
  const double verify =
      op_us(2000, [&] { sink = sink + crypto_sign_verify_detached(sig, msg, sizeof msg, epk); });
  const double floor = base + 3 * dh + verify;
  std::printf(
      "public-key floor per registration: %.1f us (X25519 keygen %.1f + 3 x DH %.1f + "
      "Ed25519 verify %.1f) = %.1f s for 100,000\n",
      floor, base, dh, verify, floor * 100'000 / 1e6);
}

double per(std::chrono::nanoseconds cpu, long n) {
  return n ? static_cast<double>(cpu.count()) / static_cast<double>(n) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100'000;
  const long relayed = argc > 2 ? std::atol(argv[2]) : 100'000;
  const long lookups = argc > 3 ? std::atol(argv[3]) : 100'000;
  if (n < 2) {
    std::fprintf(stderr, "usage: coordinator_bench [N>=2] [RELAYED] [LOOKUPS]\n");
    return 2;
  }

  p2p::coord::CoordinatorSettings settings;
  settings.max_nodes = static_cast<std::size_t>(n);
  settings.node_timeout = 1h;  // nobody expires during the run
  settings.relay_rate = settings.relay_burst = 1ull << 40;
  settings.lookup_rate = settings.lookup_burst = 1ull << 30;
  settings.introduction_rate = settings.introduction_burst = 1ull << 30;
  CoordFleet fleet(settings);

  // Two nodes stay whole: they relay to each other and ask for the others.
  FleetNode& a = fleet.add("node0", vip_of(0), endpoint_of(0));
  FleetNode& b = fleet.add("node1", vip_of(1), endpoint_of(1));
  fleet.connect(a);
  fleet.connect(b);

  const long rss0 = rss_bytes(), maps0 = mappings();
  const std::size_t heap0 = heap_bytes();
  fleet.timing = true;
  long registered = 2;
  try {
    for (long i = 2; i < n; ++i) {
      FleetNode& node = fleet.add("node" + std::to_string(i), vip_of(i), endpoint_of(i));
      fleet.connect(node);
      if (node.registered != 1) {
        std::fprintf(stderr, "node %ld did not register\n", i);
        return 1;
      }
      fleet.forget(node);
      ++registered;
    }
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "stopped after %ld registrations: std::bad_alloc (%ld memory mappings, "
                 "vm.max_map_count %ld)\n",
                 registered, mappings(), max_map_count());
  }
  fleet.timing = false;
  const auto register_cpu = fleet.coordinator_cpu;
  const auto register_datagrams = fleet.coordinator_datagrams;
  fleet.advance(11s);  // the finished handshakes' deadlines pass
  const long grown = registered - 2;
  const double rss_per = static_cast<double>(rss_bytes() - rss0) / static_cast<double>(grown);
  const double heap_per =
      (static_cast<double>(heap_bytes()) - static_cast<double>(heap0)) / static_cast<double>(grown);
  const double maps_per = static_cast<double>(mappings() - maps0) / static_cast<double>(grown);

  // Relay: a -> coordinator -> b, 1000-byte payloads.
  fleet.coordinator_cpu = {};
  fleet.coordinator_datagrams = 0;
  fleet.timing = true;
  std::vector<std::uint8_t> buf(p2p::kBufferSize);
  for (long i = 0; i < relayed; ++i) {
    p2p::PacketView v(buf.data(), buf.size(), p2p::kHeadroom + 16, 1000);
    a.link.send_relayed(fleet.now(), b.vip(), v);
    fleet.deliver();
  }
  const auto relay_cpu = fleet.coordinator_cpu;
  const int relay_arrived = b.relayed;

  // Lookups: a asks for registered nodes by virtual IP; each answer is two Introduces.
  fleet.coordinator_cpu = {};
  for (long i = 0; i < lookups; ++i) {
    const long target = 2 + (i * 7919) % (registered - 2 > 0 ? registered - 2 : 1);
    a.link.send(fleet.now(), p2p::wire::PeerRequest{a.link.next_request_id(), vip_of(target)});
    fleet.deliver();
  }
  const auto lookup_cpu = fleet.coordinator_cpu;
  fleet.timing = false;

  const auto status = fleet.core().status(fleet.now());
  std::printf("registered nodes:                %zu (asked for %ld)\n", status.nodes.size(), n);
  std::printf("bytes per registered node (RSS): %.0f\n", rss_per);
  std::printf("bytes per registered node (heap, mallinfo2): %.0f\n", heap_per);
  std::printf("memory mappings per node:        %.2f (vm.max_map_count %ld)\n", maps_per,
              max_map_count());
  std::printf("coordinator CPU, registrations:  %.3f s for %ld (%.1f us each, %.1f datagrams)\n",
              static_cast<double>(register_cpu.count()) / 1e9, grown,
              per(register_cpu, grown) / 1e3,
              static_cast<double>(register_datagrams) / static_cast<double>(grown));
  std::printf("coordinator CPU per relayed packet (1000 B): %.2f us (%ld sent, %d arrived)\n",
              per(relay_cpu, relayed) / 1e3, relayed, relay_arrived);
  std::printf("lookups per second of coordinator CPU: %.0f (%.2f us each, %ld lookups)\n",
              lookup_cpu.count()
                  ? 1e9 * static_cast<double>(lookups) / static_cast<double>(lookup_cpu.count())
                  : 0.0,
              per(lookup_cpu, lookups) / 1e3, lookups);
  std::printf("projected coordinator CPU for 100,000 registrations: %.1f s\n",
              per(register_cpu, grown) * 100'000 / 1e9);
  print_public_key_floor();
  return 0;
}
