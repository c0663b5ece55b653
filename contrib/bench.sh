#!/usr/bin/env bash
# The benchmark: p2pvpn against the raw underlay and two userspace references, in one run on
# one namespace topology (needs root):
#
#   internet bridge -- coord 203.0.113.10 (coordinator, relay)
#                   -- left  203.0.113.101 / right 203.0.113.102    (public, no NAT)
#                   -- two routers with symmetric NATs, sleft / sright behind them
#
# Rows: underlay (left -> right directly), p2pvpn direct (left -> right), p2pvpn relayed
# (sleft -> sright: both symmetric, so through the coordinator), wireguard-go and fastd
# (salsa2012+umac; fastd 22 has no chacha20-poly1305) between left and right, each set up by
# hand. Every tunnel has MTU 1400. Per row: iperf3 TCP for --time seconds with 1 and with 4
# streams, ping RTT (200 pings, 10 ms apart: average and 99th percentile), and the CPU the
# tunnel processes use during the 1-stream run (utime+stime from /proc/PID/stat of both ends,
# plus the coordinator when relaying): as % of one core, and as CPU milliseconds per
# transferred GB. Then ratios against the underlay and against wireguard-go.
#
#   contrib/bench.sh [--build DIR] [--no-build] [--time SECONDS] [--rows LIST]
# LIST is a comma-separated subset of underlay,p2pvpn,relay,wireguard-go,fastd (default all).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$top/tests/e2e/p2p.sh"

build_dir=$top/build
do_build=1
seconds=10
rows="underlay,p2pvpn,relay,wireguard-go,fastd"
P2P_LOG_LEVEL=warn

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --build) build_dir=$(realpath -m "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --time) seconds=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root (network namespaces)" >&2; exit 2; }

want() { [[ ",$rows," == *",$1,"* ]]; }

# --- measurements -----------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# utime+stime of the given processes, in clock ticks.
cpu_ticks() {  # PID...
  local pid total=0 fields
  for pid in "$@"; do
    # Fields after the ")" that ends comm: state is the 1st, utime the 12th, stime the 13th.
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    total=$((total + $(echo "$fields" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# iperf3 from HOST to ADDR with STREAMS streams; prints the received rate in bit/s.
throughput() {  # HOST ADDR STREAMS
  lab_exec "$1" timeout $((seconds + 30)) iperf3 -J -c "$2" -t "$seconds" -P "$3" \
    >"$LAB_DIR/iperf.json" 2>&1 || { lab_log "iperf3 to $2 failed"; echo 0; return 0; }
  jq -r '.end.sum_received.bits_per_second // 0' "$LAB_DIR/iperf.json"
}

# 200 pings, 10 ms apart; prints "AVG P99" in ms.
rtt() {  # HOST ADDR
  lab_exec "$1" ping -n -c 200 -i 0.01 -W 1 "$2" 2>/dev/null |
    sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | sort -n |
    awk '{ v[NR] = $1; s += $1 }
         END { if (NR == 0) { print "nan nan"; exit }
               i = int(NR * 0.99 + 0.999); if (i > NR) i = NR
               printf "%.3f %.3f\n", s / NR, v[i] }'
}

# One row: RESULT[name]="tput1 tput4 rtt_avg rtt_p99 cpu_pct cpu_ms_per_gb".
declare -A RESULT
ROW_ORDER=()

measure() {  # NAME HOST ADDR [TUNNEL_PID...]
  local name=$1 host=$2 addr=$3 t1 t4 r before after wall cpu_pct ms_per_gb start_ns; shift 3
  lab_log "measuring $name ($host -> $addr)"
  p2p_wait_ping "$host" "$addr" 30 || { lab_log "$name: $addr unreachable, row skipped"; return 0; }
  lab_exec "$host" ping -n -q -c 20 -i 0.01 "$addr" >/dev/null 2>&1 || true  # warm up
  before=$(cpu_ticks "$@")
  start_ns=$(date +%s%N)
  t1=$(throughput "$host" "$addr" 1)
  wall=$(($(date +%s%N) - start_ns))
  after=$(cpu_ticks "$@")
  t4=$(throughput "$host" "$addr" 4)
  r=$(rtt "$host" "$addr")
  if [ $# -gt 0 ]; then
    cpu_pct=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v w="$wall" \
      'BEGIN { printf "%.0f", 100 * t / hz / (w / 1e9) }')
    ms_per_gb=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v rate="$t1" -v s="$seconds" \
      'BEGIN { b = rate * s / 8; if (b <= 0) { print "-"; exit }
               printf "%.0f", 1000 * t / hz / (b / 1e9) }')
  else
    cpu_pct=- ms_per_gb=-
  fi
  RESULT[$name]="$t1 $t4 $r $cpu_pct $ms_per_gb"
  ROW_ORDER+=("$name")
}

gbit() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }

report() {
  local name t1 t4 ra rp cpu mpg ref
  echo
  echo "p2pvpn benchmark: iperf3 TCP ${seconds} s, 200 pings at 10 ms; $(nproc) CPUs, kernel $(uname -r)"
  printf '%-16s %12s %12s %10s %10s %10s %12s\n' "" "TCP 1 str." "TCP 4 str." "RTT avg" \
    "RTT p99" "CPU (1 str)" "CPU ms/GB"
  printf '%-16s %12s %12s %10s %10s %10s %12s\n' "" "Gbit/s" "Gbit/s" "ms" "ms" "% core" ""
  for name in "${ROW_ORDER[@]}"; do
    read -r t1 t4 ra rp cpu mpg <<<"${RESULT[$name]}"
    printf '%-16s %12s %12s %10s %10s %10s %12s\n' "$name" "$(gbit "$t1")" "$(gbit "$t4")" \
      "$ra" "$rp" "$cpu" "$mpg"
  done
  for ref in underlay wireguard-go; do
    [ -n "${RESULT[$ref]:-}" ] || continue
    echo
    echo "ratio vs $ref (throughput: higher is better; RTT: lower is better)"
    printf '%-16s %12s %12s %10s %10s %12s\n' "" "TCP 1 str." "TCP 4 str." "RTT avg" "RTT p99" \
      "added RTT ms"
    local r1 r4 rra rrp
    read -r r1 r4 rra rrp _ _ <<<"${RESULT[$ref]}"
    for name in "${ROW_ORDER[@]}"; do
      [ "$name" = "$ref" ] && continue
      read -r t1 t4 ra rp _ _ <<<"${RESULT[$name]}"
      printf '%-16s %12s %12s %10s %10s %12s\n' "$name" "$(ratio "$t1" "$r1")" \
        "$(ratio "$t4" "$r4")" "$(ratio "$ra" "$rra")" "$(ratio "$rp" "$rrp")" "$(minus "$ra" "$rra")"
    done
  done
}

# --- the references, set up by hand -------------------------------------------------------------

# wireguard-go between left (10.88.0.1) and right (10.88.0.2). Its UAPI socket lives in the
# shared /var/run/wireguard, so the interface names carry this run's unique prefix.
WG_PIDS=()
setup_wireguard() {
  local tag=${LAB_PREFIX//[^0-9a-f]/} side peer i=1 dir=$LAB_DIR/wg
  tag=${tag:0:8}
  mkdir -p "$dir"
  for side in left right; do
    (umask 077 && wg genkey >"$dir/$side.key")
    wg pubkey <"$dir/$side.key" >"$dir/$side.pub"
  done
  for side in left right; do
    peer=right; [ $side = right ] && peer=left
    local ifname="wg${tag}${side:0:1}"
    WG_PROCESS_FOREGROUND=1 lab_spawn "$side" "$LAB_DIR/logs/wireguard-$side.log" \
      wireguard-go -f "$ifname"
    WG_PIDS+=("$LAB_LAST_PID")
    wait_for 10 "wireguard-go's $ifname" lab_exec "$side" ip link show dev "$ifname" ||
      fail "wireguard-go did not create $ifname"
    wait_for 10 "wireguard-go's UAPI socket" test -S "/var/run/wireguard/$ifname.sock" ||
      fail "wireguard-go's UAPI socket for $ifname is missing"
    lab_exec "$side" wg set "$ifname" listen-port 51820 private-key "$dir/$side.key" \
      peer "$(cat "$dir/$peer.pub")" endpoint "$(lab_addr "$peer"):51820" \
      allowed-ips "10.88.0.$((3 - i))/32"
    lab_exec "$side" ip addr add "10.88.0.$i/24" dev "$ifname"
    lab_exec "$side" ip link set "$ifname" mtu 1400 up
    i=$((i + 1))
  done
}

# fastd (tun mode, salsa2012+umac) between left (10.99.0.1) and right (10.99.0.2).
FASTD_PIDS=()
setup_fastd() {
  local dir=$LAB_DIR/fastd side peer i=1
  mkdir -p "$dir"
  for side in left right; do
    fastd --generate-key --machine-readable >"$dir/$side.secret"
    printf 'secret "%s";\n' "$(cat "$dir/$side.secret")" >"$dir/$side.secret.conf"
    fastd --config "$dir/$side.secret.conf" --show-key --machine-readable >"$dir/$side.pub"
  done
  for side in left right; do
    peer=right; [ $side = right ] && peer=left
    cat >"$dir/$side.conf" <<EOF
log level warn;
mode tun;
interface "fastd0";
method "salsa2012+umac";
secret "$(cat "$dir/$side.secret")";
bind $(lab_addr "$side"):10000;
mtu 1400;
on up "ip addr add 10.99.0.$i/24 dev \$INTERFACE && ip link set \$INTERFACE up";
peer "$peer" {
  key "$(cat "$dir/$peer.pub")";
  remote $(lab_addr "$peer"):10000;
}
EOF
    lab_spawn "$side" "$LAB_DIR/logs/fastd-$side.log" fastd --config "$dir/$side.conf"
    FASTD_PIDS+=("$LAB_LAST_PID")
    i=$((i + 1))
  done
}

# --- main -------------------------------------------------------------------------------------

main() {
  if ((do_build)); then
    p2p_build "$top" "$build_dir"
  fi
  lab_init
  lab_internet
  lab_public_host coord 203.0.113.10
  lab_public_host left 203.0.113.101
  lab_public_host right 203.0.113.102
  lab_spawn right "$LAB_DIR/logs/iperf3-right.log" iperf3 -s
  if want p2pvpn || want relay; then
    p2p_init "$build_dir"
    p2p_coordinator coord
  fi
  if want p2pvpn; then
    p2p_node left left 10.77.0.2
    p2p_node right right 10.77.0.3
  fi
  if want relay; then
    lab_host sleft symmetric 1
    lab_host sright symmetric 2
    lab_spawn sright "$LAB_DIR/logs/iperf3-sright.log" iperf3 -s
    p2p_node sleft sleft 10.77.0.4
    p2p_node sright sright 10.77.0.5
  fi
  want wireguard-go && setup_wireguard
  want fastd && setup_fastd
  wait_for 10 "iperf3 server" sh -c "ip netns exec '$(lab_ns right)' ss -Hntl | grep -q ':5201'" ||
    fail "iperf3 -s did not start"

  want underlay && measure underlay left 203.0.113.102
  if want p2pvpn; then
    measure "p2pvpn direct" left 10.77.0.3 "$(p2p_pid left)" "$(p2p_pid right)"
    p2p_path_is left right direct || lab_log "warning: left -> right is not direct"
  fi
  if want relay; then
    p2p_wait_ping sleft 10.77.0.5 30 || true
    wait_for 20 "sleft -> sright settled on the relay" p2p_relay_settled sleft sright ||
      lab_log "warning: sleft -> sright is $(p2p_peer sleft sright path)"
    measure "p2pvpn relayed" sleft 10.77.0.5 "$(p2p_pid sleft)" "$(p2p_pid sright)" \
      "$(p2p_coordinator_pid)"
  fi
  want wireguard-go && measure wireguard-go left 10.88.0.2 "${WG_PIDS[@]}"
  want fastd && measure fastd left 10.99.0.2 "${FASTD_PIDS[@]}"
  report
}

main
