#!/usr/bin/env bash
# Runs the end-to-end tests in network namespaces:
#   tests/e2e/run.sh BUILD_DIR [TEST...]
# TEST is a name such as nat_types (or test_nat_types.sh); default: every tests/e2e/test_*.sh
# but those in not_default below.
# Each test runs alone, in its own fresh lab (its own namespace prefix), bounded by timeout(1):
# 120 s, or what its "# e2e-timeout: SECONDS" header line asks for. Prints PASS/FAIL per test
# (and a failing test's output), then "N passed, M failed" alone on a line; exits 1 on any
# failure. A test that leaves a namespace behind fails, and the namespace is removed.
# Ctrl-C or SIGTERM stops the running test, which cleans up before run.sh exits.
# Needs root. Environment: E2E_KEEP=1 keeps every test's logs (printed path), not only on
# failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: $0 BUILD_DIR [TEST...]" >&2
  exit 2
}

[ $# -ge 1 ] || usage
[ "$(id -u)" -eq 0 ] || { echo "run.sh: the end-to-end tests need root" >&2; exit 2; }
[ -d "$1" ] || { echo "run.sh: no build directory $1" >&2; exit 2; }
E2E_BUILD=$(cd "$1" && pwd)
export E2E_BUILD
shift

# Tests left out of the default list (still run when named): the flood tests of issue 9 fail
# on the code before its fixes.
not_default=()

tests=()
if [ $# -eq 0 ]; then
  for t in "$here"/test_*.sh; do
    name=$(basename "$t" .sh)
    if [[ " ${not_default[*]} " == *" ${name#test_} "* ]]; then
      echo "run.sh: ${name#test_} is not in the default list; name it to run it"
      continue
    fi
    tests+=("$t")
  done
else
  for name in "$@"; do
    name=${name%.sh}
    name=${name#test_}
    [ -f "$here/test_$name.sh" ] || { echo "run.sh: no test $name" >&2; exit 2; }
    tests+=("$here/test_$name.sh")
  done
fi

current=""   # pid of the running test's timeout(1)
out=""       # its output file
on_signal() {
  # timeout(1) runs the test in its own process group; forward the stop so the test cleans up.
  if [ -n "$current" ]; then
    kill -TERM "$current" 2>/dev/null || true
    wait "$current" 2>/dev/null || true
    sed 's/^/    /' "$out" | tail -n 20
    rm -f "$out"
  fi
  echo "run.sh: interrupted" >&2
  exit 130
}
trap on_signal INT TERM

test_timeout() {  # FILE
  local t
  t=$(sed -n 's/^# e2e-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n1)
  echo "${t:-120}"
}

passed=0
failed=0
failed_names=()
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  name=${name#test_}
  prefix="p2pe$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-"
  out=$(mktemp "/tmp/${prefix}out.XXXXXX")
  limit=$(test_timeout "$t")
  start=$SECONDS
  LAB_PREFIX=$prefix timeout -k 15 "$limit" bash "$t" >"$out" 2>&1 &
  current=$!
  status=0
  wait "$current" || status=$?
  current=""
  took=$((SECONDS - start))
  leftover=$(ip netns list | awk '{print $1}' | grep "^$prefix" || true)
  if [ -n "$leftover" ]; then
    echo "run.sh: $name left namespaces behind: $leftover" >>"$out"
    for ns in $leftover; do
      # shellcheck disable=SC2046  # one pid per word
      kill -KILL $(ip netns pids "$ns") 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    done
    [ "$status" -eq 0 ] && status=1
  fi
  if [ "$status" -eq 0 ]; then
    printf 'PASS  %-28s %4ds\n' "$name" "$took"
    passed=$((passed + 1))
    if [ -n "${E2E_KEEP:-}" ]; then
      sed 's/^/    /' "$out"
    else
      sed -n 's/^report: /    /p' "$out"  # what the test measured
    fi
  else
    [ "$status" -eq 124 ] && echo "run.sh: $name timed out after ${limit}s" >>"$out"
    printf 'FAIL  %-28s %4ds (exit %d)\n' "$name" "$took" "$status"
    sed 's/^/    /' "$out" | tail -n 200
    failed=$((failed + 1))
    failed_names+=("$name")
  fi
  rm -f "$out"
done

[ "$failed" -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
