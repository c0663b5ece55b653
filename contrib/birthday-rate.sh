#!/usr/bin/env bash
# The birthday punch's success rate and cost in the namespace lab (issue 13): runs
# tests/e2e/test_birthday_punch.sh RUNS times (default 20; a port-restricted cone x a symmetric
# NAT with random ports, fresh lab each run) and prints, per run and in all, whether the pair
# went direct, the time from the first ping to the direct path, and the probes each side sent.
#   contrib/birthday-rate.sh BUILD_DIR [RUNS]     (root: network namespaces)
# Exits 1 if any run failed its checks (a miss that ends on the relay is not a failure).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: birthday-rate.sh BUILD_DIR [RUNS]}
runs=${2:-20}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

direct=0 failed=0 probes=0 times=()
for ((i = 1; i <= runs; i++)); do
  if ! "$top/tests/e2e/run.sh" "$build" birthday_punch >"$out/run-$i.log" 2>&1; then
    failed=$((failed + 1))
    echo "run $i: FAILED (log follows)"
    tail -n 30 "$out/run-$i.log"
    continue
  fi
  line=$(grep -o 'birthday outcome=.*' "$out/run-$i.log" | tail -n1 || true)
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  outcome=$(field outcome)
  pa=$(field probes_a)
  pb=$(field probes_b)
  probes=$((probes + pa + pb))
  if [ "$outcome" = direct ]; then
    direct=$((direct + 1))
    times+=("$(field direct_s)")
  fi
  printf 'run %2d: %-6s direct after %5s s  probes a=%4s b=%4s  peak sockets b=%s\n' "$i" \
    "$outcome" "$(field direct_s)" "$pa" "$pb" "$(field sockets_peak_b)"
done
ok=$((runs - failed))
echo "----"
echo "runs: $runs, checks failed: $failed"
if ((ok > 0)); then
  echo "direct: $direct of $ok ($((100 * direct / ok)) %)"
  echo "probes per attempt (both sides together): $((probes / ok)) on average"
fi
if ((${#times[@]})); then
  printf '%s\n' "${times[@]}" | sort -n |
    awk '{t[NR] = $1; s += $1} END {printf "time to direct: median %.2f s, mean %.2f s, max %.2f s\n", t[int((NR + 1) / 2)], s / NR, t[NR]}'
fi
((failed == 0))
