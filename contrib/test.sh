#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing, then builds and runs
#   0. the layering check (contrib/check-layers.sh: dependencies run one way),
#   1. the programs (GCC, optimised, warnings as errors),
#   2. the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (warnings as errors),
#   3. every libFuzzer target for a bounded time (clang),
#   4. the end-to-end tests in network namespaces (needs root; skipped with a notice otherwise).
# Exits non-zero on the first failure. Options: --quick (steps 1 and 4 only, and the unit tests
# in the GCC build instead of step 2), FUZZ_SECONDS=N (default 20) for step 3.
# The unit tests are built once, in the sanitizer build: building them twice cost a third of
# the run on a 2-core machine. The end-to-end tests need only the optimised programs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
quick=0
[ "${1:-}" = "--quick" ] && quick=1
fuzz_seconds=${FUZZ_SECONDS:-20}
jobs=$(nproc)

start=$SECONDS
step() { printf '\n==== [%4ds] %s\n' $((SECONDS - start)) "$*"; }

step "dependencies"
bash contrib/install-deps.sh

build() {  # build DIR TARGET [cmake options...]
  local dir=$1 target=$2; shift 2
  cmake -S "$top" -B "$dir" -G Ninja -DP2P_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j "$jobs" $target
}

step "layering (contrib/check-layers.sh)"
contrib/check-layers.sh

if [ $quick = 1 ]; then
  step "build (GCC, -Werror)"
  build build all
  step "unit tests"
  ctest --test-dir build -L unit --output-on-failure -j "$jobs"
else
  step "build the programs and test tools (GCC, -Werror)"
  build build p2p_e2e_programs
  # -g1 keeps file:line in the sanitizers' stack traces at a fraction of -g's compile time.
  step "build (ASan + UBSan)"
  build build-asan all -DP2P_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1
  step "unit tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"

  step "build fuzz targets (clang + libFuzzer)"
  build build-fuzz all -DP2P_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
  step "fuzzing, ${fuzz_seconds}s per target"
  for f in build-fuzz/tests/fuzz_*; do
    name=$(basename "$f"); name=${name#fuzz_}
    seeds="tests/fuzz/corpus/$name"
    work=$(mktemp -d)
    echo "-- $name"
    if ! "$f" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         "$work" "$seeds" >"$work.log" 2>&1; then
      tail -60 "$work.log"; echo "fuzz target $name failed"; exit 1
    fi
    grep -E "stat::number_of_executed_units" "$work.log" || true
    rm -rf "$work" "$work.log"
  done
fi

step "end-to-end tests (network namespaces)"
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: the end-to-end tests need root (ip netns, nftables, /dev/net/tun)"
elif [ -x tests/e2e/run.sh ]; then
  tests/e2e/run.sh build
else
  echo "no end-to-end tests yet"
fi

step "all tests passed"
