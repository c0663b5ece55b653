#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing, then builds and runs
#   0. the layering check (contrib/check-layers.sh: dependencies run one way),
#   1. the unit tests (GCC, warnings as errors),
#   2. the same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. every libFuzzer target for a bounded time (clang),
#   4. the end-to-end tests in network namespaces (needs root; skipped with a notice otherwise).
# Exits non-zero on the first failure. Options: --quick (steps 1 and 4 only),
# FUZZ_SECONDS=N (default 20) for step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
quick=0
[ "${1:-}" = "--quick" ] && quick=1
fuzz_seconds=${FUZZ_SECONDS:-20}
jobs=$(nproc)

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
bash contrib/install-deps.sh

build() {  # build DIR [cmake options...]
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -G Ninja -DP2P_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j "$jobs"
}

step "layering (contrib/check-layers.sh)"
contrib/check-layers.sh

step "build (GCC, -Werror)"
build build
step "unit tests"
ctest --test-dir build -L unit --output-on-failure -j "$jobs"

if [ $quick = 0 ]; then
  step "build (ASan + UBSan)"
  build build-asan -DP2P_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  step "unit tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"

  step "build fuzz targets (clang + libFuzzer)"
  build build-fuzz -DP2P_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
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
