# shellcheck shell=bash
# The measurements, statistics and report of contrib/bench.sh (sourced by it, after
# tests/e2e/lib.sh). Figures are kept per row, figure and run in BENCH_VALUE["ROW,FIG,RUN"]
# ("-" where a measurement failed); the report prints every run, the median, the ratio to
# wireguard-go's figure in the same run and the median of those ratios.

BENCH_SECONDS=${BENCH_SECONDS:-10}   # iperf3 -t
BENCH_IDLE_PINGS=200                 # 10 ms apart
BENCH_WIRE_BYTES=1514                # an underlay frame at most (MTU 1500 + Ethernet header)
declare -A BENCH_VALUE
declare -A BENCH_WARNINGS_SEEN
BENCH_WARNINGS=()

# The figures, in the order of the report: key, title, unit, printf format, which way is better.
BENCH_FIGS=(t1 t4 cpu pps ip50 ip99 lp50 lp99)
declare -A FIG_TITLE=(
  [t1]="throughput, TCP 1 stream" [t4]="throughput, TCP 4 streams"
  [cpu]="CPU seconds per GB (1 stream)" [pps]="packets per second per core (1 stream)"
  [ip50]="added RTT idle, p50" [ip99]="added RTT idle, p99"
  [lp50]="added RTT under load (1 stream), p50" [lp99]="added RTT under load (1 stream), p99")
declare -A FIG_HEAD=(
  [t1]="1 str Mbit/s" [t4]="4 str Mbit/s" [cpu]="CPU s/GB" [pps]="kpkt/s/core"
  [ip50]="+RTT idle p50" [ip99]="+RTT idle p99" [lp50]="+RTT load p50" [lp99]="+RTT load p99")
declare -A FIG_UNIT=([t1]="Mbit/s" [t4]="Mbit/s" [cpu]="s/GB" [pps]="kpkt/s per core"
  [ip50]=ms [ip99]=ms [lp50]=ms [lp99]=ms)
declare -A FIG_FMT=([t1]="%.0f" [t4]="%.0f" [cpu]="%.2f" [pps]="%.1f"
  [ip50]="%.3f" [ip99]="%.3f" [lp50]="%.3f" [lp99]="%.3f")
declare -A FIG_BETTER=([t1]=higher [t4]=higher [cpu]=lower [pps]=higher
  [ip50]=lower [ip99]=lower [lp50]=lower [lp99]=lower)

bench_warn() {  # MESSAGE: logged now, repeated under the report
  lab_log "warning: $*"
  [ -n "${BENCH_WARNINGS_SEEN[$*]:-}" ] && return 0
  BENCH_WARNINGS_SEEN[$*]=1
  BENCH_WARNINGS+=("$*")
}

# --- measuring ----------------------------------------------------------------------------------

# COUNT pings from HOST to ADDR, 10 ms apart, each waited for 1 s at most; prints
# "P50 P99 SENT RECEIVED" (ms; percentiles of the replies, "-" when none came back).
bench_ping() {  # HOST ADDR COUNT
  local host=$1 addr=$2 count=$3 out
  out=$(lab_exec "$host" timeout $((count / 100 + 15)) ping -n -c "$count" -i 0.01 -W 1 "$addr" \
    2>/dev/null) || true
  sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' <<<"$out" | sort -n |
    awk -v sent="$count" '{ v[NR] = $1 }
      function pct(p,  i) { i = int(NR * p + 0.999999); if (i < 1) i = 1; return v[i] }
      END { if (NR == 0) { print "- - " sent " 0"; exit }
            printf "%.3f %.3f %d %d\n", pct(0.50), pct(0.99), sent, NR }'
}

# iperf3 TCP from HOST to ADDR with STREAMS streams for BENCH_SECONDS, bounded; prints
# "BITS_PER_SECOND BYTES" as received ("- -" on failure, with the reason logged; it may run in
# a subshell, so the caller warns).
bench_iperf() {  # HOST ADDR STREAMS JSON_OUT
  local host=$1 addr=$2 streams=$3 json=$4 err
  if ! lab_exec "$host" timeout $((BENCH_SECONDS + 30)) iperf3 -J --connect-timeout 5000 \
    -c "$addr" -t "$BENCH_SECONDS" -P "$streams" >"$json" 2>&1; then
    err=$(jq -r '.error // empty' "$json" 2>/dev/null || true)
    lab_log "iperf3 -P $streams to $addr failed${err:+: $err} (output in $json)"
    echo "- -"
    return 0
  fi
  jq -r 'if (.end.sum_received.bytes // 0) > 0
         then "\(.end.sum_received.bits_per_second) \(.end.sum_received.bytes)" else "- -" end' \
    "$json" 2>/dev/null || echo "- -"
}

# The underlay interface's counters in HOST: "TX_PACKETS RX_PACKETS TX_BYTES RX_BYTES".
bench_netdev() {  # HOST DEV
  local d=/sys/class/net/$2/statistics
  lab_exec "$1" cat "$d/tx_packets" "$d/rx_packets" "$d/tx_bytes" "$d/rx_bytes" | tr '\n' ' '
}

bench_cpu_ms() {  # PID...: their utime + stime together, in ms
  local pid total=0
  for pid in "$@"; do total=$((total + $(lab_cpu_ms "$pid"))); done
  echo "$total"
}

# Tunnel packets between two bench_netdev readings: per direction the packet count, but at
# least one per BENCH_WIRE_BYTES (a UDP GSO super-datagram counts once in the veth counters).
bench_packets() {  # "BEFORE" "AFTER"
  awk -v a="$1" -v b="$2" -v w="$BENCH_WIRE_BYTES" 'BEGIN {
    split(a, x, " "); split(b, y, " "); n = 0
    for (d = 1; d <= 2; d++) {
      p = y[d] - x[d]; s = (y[d + 2] - x[d + 2]) / w; s = int(s) + (s > int(s))
      n += (p > s ? p : s) }
    print n }'
}

# Prints an awk expression's value with FMT, or "-" when any operand is "-".
bench_calc() {  # FMT EXPR VAR=VALUE...
  local fmt=$1 expr=$2 v args=()
  shift 2
  for v in "$@"; do
    [ "${v#*=}" = "-" ] && { echo "-"; return 0; }
    args+=(-v "$v")
  done
  awk "${args[@]}" "BEGIN { printf \"$fmt\\n\", ($expr) }"
}

# Measures one row in one run into BENCH_VALUE. HOST pings and runs iperf3 against ADDR;
# DEV is HOST's underlay interface; PIDS are the tunnel's processes (none for the underlay).
# BASE_P50/BASE_P99 are this run's idle underlay RTT. IDLE_IS_BASE: the row is the underlay,
# whose idle ping is the baseline itself.
bench_measure() {  # ROW RUN HOST ADDR DEV IDLE_IS_BASE PID...
  local row=$1 run=$2 host=$3 addr=$4 dev=$5 idle_is_base=$6 f
  shift 6
  local ip50=0 ip99=0 lp50=- lp99=- t1=- b1=- t4=- cpu=- pps=- i50 i99 sent recv
  local cpu0 cpu1 net0 net1 iperf_pid load_count json=$LAB_DIR/iperf-$row-$run
  for f in "${BENCH_FIGS[@]}"; do BENCH_VALUE[$row,$f,$run]=-; done
  lab_log "run $run: $row ($host -> $addr)"
  if ! wait_for 30 "ping $host -> $addr" lab_exec "$host" ping -q -n -c 1 -W 1 "$addr"; then
    bench_warn "$row, run $run: $addr unreachable from $host, not measured"
    return 0
  fi
  lab_exec "$host" ping -n -q -c 20 -i 0.01 -W 1 "$addr" >/dev/null 2>&1 || true  # warm up
  if ((!idle_is_base)); then
    read -r i50 i99 sent recv <<<"$(bench_ping "$host" "$addr" "$BENCH_IDLE_PINGS")"
    ip50=$(bench_calc %.3f "a - b" a="$i50" b="$BASE_P50")
    ip99=$(bench_calc %.3f "a - b" a="$i99" b="$BASE_P99")
    ((recv == sent)) || bench_warn "$row, run $run: $((sent - recv)) of $sent idle pings lost"
  fi

  # One stream, with pings alongside from its second second to a second before its end.
  load_count=$(((BENCH_SECONDS - 2) * 100))
  ((load_count >= 100)) || load_count=100
  cpu0=$(bench_cpu_ms "$@")
  net0=$(bench_netdev "$host" "$dev")
  bench_iperf "$host" "$addr" 1 "$json-1.json" >"$json-1.out" &
  iperf_pid=$!
  sleep 1
  read -r i50 i99 sent recv <<<"$(bench_ping "$host" "$addr" "$load_count")"
  wait "$iperf_pid" || true
  cpu1=$(bench_cpu_ms "$@")
  net1=$(bench_netdev "$host" "$dev")
  read -r t1 b1 <"$json-1.out" || true
  t1=${t1:--} b1=${b1:--}
  [ "$t1" != - ] || bench_warn "$row, run $run: iperf3 with 1 stream failed"
  lp50=$(bench_calc %.3f "a - b" a="$i50" b="$BASE_P50")
  lp99=$(bench_calc %.3f "a - b" a="$i99" b="$BASE_P99")
  ((recv == sent)) || bench_warn "$row, run $run: $((sent - recv)) of $sent pings under load lost"
  if [ $# -gt 0 ] && [ "$b1" != - ]; then
    cpu=$(bench_calc %.4f "c / 1000 / (b / 1e9)" c=$((cpu1 - cpu0)) b="$b1")
    pps=$(bench_calc %.3f "c > 0 ? p / (c / 1000) / 1000 : 0" \
      p="$(bench_packets "$net0" "$net1")" c=$((cpu1 - cpu0)))
  fi

  read -r t4 _ <<<"$(bench_iperf "$host" "$addr" 4 "$json-4.json")"
  t1=$(bench_calc %.1f "t / 1e6" t="$t1")
  t4=$(bench_calc %.1f "t / 1e6" t="$t4")
  [ "$t4" != - ] || bench_warn "$row, run $run: iperf3 with 4 streams failed"
  for f in "${BENCH_FIGS[@]}"; do BENCH_VALUE[$row,$f,$run]=${!f}; done
  lab_log "run $run: $row: $t1 / $t4 Mbit/s, CPU $cpu s/GB, $pps kpkt/s/core," \
    "+RTT idle $ip50/$ip99 ms, load $lp50/$lp99 ms"
}

# --- statistics ---------------------------------------------------------------------------------
# Figures of one row over the runs travel as one space-separated word list ("-" for a missing
# run); these awk functions take such lists. A ratio is "-" when either side is missing or the
# denominator is not positive (an added RTT of 0 or less has no meaningful ratio).
BENCH_AWK='
function median(s,   t, v, m, n, i, j, x) {
  m = split(s, t, " "); n = 0
  for (i = 1; i <= m; i++) if (t[i] != "-") v[++n] = t[i] + 0
  if (n == 0) return "-"
  for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
  return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function ratio(a, b) { return (a == "-" || b == "-" || b + 0 <= 0) ? "-" : a / b }
function ratios(s, r,   a, b, i, n, out) {
  n = split(s, a, " "); split(r, b, " ")
  for (i = 1; i <= n; i++) out = out (i > 1 ? " " : "") ratio(a[i], b[i])
  return out
}
function fmt(f, v) { return v == "-" ? "-" : sprintf(f, v) }
function x(r) { if (r == "-") return "-"; r = sprintf("%.2f", r); return (r == "-0.00" ? "0.00" : r) "x" }
function cells(s, f, w,   t, n, i, out) {
  n = split(s, t, " ")
  for (i = 1; i <= n; i++) out = out sprintf(" %" w "s", f == "x" ? x(t[i]) : fmt(f, t[i]))
  return out
}
'

bench_vals() {  # ROW FIG: VALS = the runs' values of ROW's FIG, one word each
  local run
  VALS=""
  for ((run = 1; run <= BENCH_RUNS; run++)); do VALS+="${BENCH_VALUE[$1,$2,$run]:--} "; done
}

# --- the report ---------------------------------------------------------------------------------

BENCH_REF=wireguard-go

bench_report_figure() {  # FIG
  local fig=$1 row run head refs
  echo
  echo "${FIG_TITLE[$fig]}, ${FIG_UNIT[$fig]} (${FIG_BETTER[$fig]} is better)"
  head=$(printf '%-16s' "")
  for ((run = 1; run <= BENCH_RUNS; run++)); do head+=$(printf ' %8s' "run $run"); done
  head+=$(printf ' %8s |' median)
  for ((run = 1; run <= BENCH_RUNS; run++)); do head+=$(printf ' %7s' "/wg $run"); done
  echo "$head$(printf ' %7s' median)"
  bench_vals "$BENCH_REF" "$fig"
  refs=$VALS
  for row in "${BENCH_SELECTED[@]}"; do
    bench_vals "$row" "$fig"
    awk -v label="${ROW_LABEL[$row]}" -v vals="$VALS" -v refs="$refs" -v f="${FIG_FMT[$fig]}" \
      "$BENCH_AWK"'BEGIN {
        r = ratios(vals, refs)
        printf "%-16s%s %8s |%s %7s\n", label, cells(vals, f, 8), fmt(f, median(vals)),
          cells(r, "x", 7), x(median(r)) }'
  done
}

# Sets num and den (the caller's locals) from "NUM:DEN"; 1 unless both rows were measured.
bench_pair_rows() {  # PAIR
  num=${1%%:*} den=${1#*:}
  bench_selected "$num" && bench_selected "$den"
}

# Throughput of each pair's first row over its second's (relayed over direct), run by run.
bench_report_pairs() {
  local pair num den fig nums
  for pair in "${BENCH_PAIRS[@]}"; do
    bench_pair_rows "$pair" || continue
    echo
    echo "${ROW_LABEL[$num]} / ${ROW_LABEL[$den]} throughput"
    for fig in t1 t4; do
      bench_vals "$num" "$fig"
      nums=$VALS
      bench_vals "$den" "$fig"
      awk -v label="${FIG_HEAD[$fig]%% Mbit/s}" -v nums="$nums" -v dens="$VALS" "$BENCH_AWK"'BEGIN {
        r = ratios(nums, dens); printf "%-16s%s   median %s\n", label, cells(r, "x", 8), x(median(r)) }'
    done
  done
}

# The table a closing note can paste (Markdown): medians, and in brackets the median of the
# per-run ratios to wireguard-go (none on its own row).
bench_summary() {
  local row fig line pair num den all refs nums
  echo
  echo "Summary: median of $BENCH_RUNS run(s); (Nx) = median of the per-run ratios to" \
    "$BENCH_REF in the same run"
  line="| row |"
  for fig in "${BENCH_FIGS[@]}"; do line+=" ${FIG_HEAD[$fig]} |"; done
  echo "$line"
  echo "|---|$(printf -- '---:|%.0s' "${BENCH_FIGS[@]}")"
  for row in "${BENCH_SELECTED[@]}"; do
    # One awk per row: figures separated by "|", the reference's likewise.
    all="" refs="" line=""
    for fig in "${BENCH_FIGS[@]}"; do
      bench_vals "$row" "$fig"
      all+="$VALS|"
      bench_vals "$BENCH_REF" "$fig"
      refs+="$VALS|"
      line+="${FIG_FMT[$fig]}|"
    done
    awk -v label="${ROW_LABEL[$row]}" -v all="$all" -v refs="$refs" -v fmts="$line" \
      -v own="$([ "$row" = "$BENCH_REF" ] && echo 1 || echo 0)" "$BENCH_AWK"'BEGIN {
        n = split(all, v, "|"); split(refs, r, "|"); split(fmts, f, "|"); out = "| " label " |"
        for (i = 1; i < n; i++) {
          cell = fmt(f[i], median(v[i]))
          if (!own && cell != "-") cell = cell " (" x(median(ratios(v[i], r[i]))) ")"
          out = out " " cell " |" }
        print out }'
  done
  for pair in "${BENCH_PAIRS[@]}"; do
    bench_pair_rows "$pair" || continue
    line="${ROW_LABEL[$num]} / ${ROW_LABEL[$den]} throughput (median of per-run ratios):"
    for fig in t1 t4; do
      bench_vals "$num" "$fig"
      nums=$VALS
      bench_vals "$den" "$fig"
      line+=$(awk -v nums="$nums" -v dens="$VALS" -v what="${FIG_TITLE[$fig]#*TCP }" \
        "$BENCH_AWK"'BEGIN { printf " %s %s,", what, x(median(ratios(nums, dens))) }')
    done
    echo "${line%,}"
  done
}

bench_report() {
  local fig warning
  echo
  echo "p2pvpn benchmark: $BENCH_RUNS run(s) of every row, interleaved; iperf3 TCP" \
    "${BENCH_SECONDS} s; $(nproc) CPUs, kernel $(uname -r); load average before" \
    "$BENCH_LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Added RTT = ping through the row minus the idle underlay ping (left -> right) of the" \
    "same run, same percentile."
  echo "CPU = utime+stime of the tunnel processes of both ends (and of the coordinator when" \
    "relaying) during the 1-stream run."
  echo "Packets = the client's underlay interface counters (tx+rx of eth0 in /sys/class/net)" \
    "during the 1-stream run, at least one per $BENCH_WIRE_BYTES bytes; per core = per CPU second."
  for fig in "${BENCH_FIGS[@]}"; do bench_report_figure "$fig"; done
  bench_report_pairs
  bench_summary
  if [ ${#BENCH_WARNINGS[@]} -gt 0 ]; then
    echo
    for warning in "${BENCH_WARNINGS[@]}"; do echo "warning: $warning"; done
  fi
}
