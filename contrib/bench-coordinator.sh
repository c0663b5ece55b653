#!/usr/bin/env bash
# The coordinator at scale, in one process and without root: tests/bench/coordinator_bench
# registers N simulated nodes with one Coordinator core (real Noise XX handshakes and
# certificates from a CA made in the program), relays RELAYED 1000-byte packets between two
# of them and answers LOOKUPS peer lookups, then prints bytes per registered node (resident
# set and malloc growth over N), memory mappings per node, the coordinator's CPU per
# registration, per relayed packet and per lookup (thread CPU time inside on_udp() only).
# The aim (issue 9): <= 2 KiB per node, 100,000 registrations in < 10 s of coordinator CPU.
# The last line is the floor the cryptography sets on this CPU (X25519 key generation, three
# X25519 DHs and one Ed25519 check per XX registration with a certificate), timed in the same
# process: read the registration figure against it.
#
#   [BUILD_DIR=build] [NO_BUILD=1] contrib/bench-coordinator.sh [N [RELAYED [LOOKUPS]]]
#
# Defaults: N=100000, RELAYED=100000, LOOKUPS=100000. Per-session keys are wiped ordinary
# memory (no memory mapping per node); should mappings run out anyway, the program reports
# where it stopped. All nodes register at one virtual instant, so past the handshake guard's
# global budget each registration takes the cookie round trip (4 datagrams), as in a storm
# of re-registrations after a coordinator restart.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$top/build}
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
n=${1:-100000}
relayed=${2:-100000}
lookups=${3:-100000}

if [ "${NO_BUILD:-0}" = 0 ]; then
  [ -f "$build_dir/build.ninja" ] ||
    cmake -S "$top" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build_dir" -j2 coordinator_bench >/dev/null
fi
bench=$build_dir/tests/coordinator_bench
[ -x "$bench" ] || { echo "bench-coordinator.sh: $bench not built" >&2; exit 1; }

echo "coordinator_bench $n $relayed $lookups"
"$bench" "$n" "$relayed" "$lookups"
