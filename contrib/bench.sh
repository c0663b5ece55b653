#!/usr/bin/env bash
# The benchmark: p2pvpn against the raw underlay and two userspace references, on one
# namespace topology (needs root):
#
#   internet bridge -- coord 203.0.113.10 (coordinator, relay; TCP main port 443, assist 7402)
#                   -- left  203.0.113.101 / right 203.0.113.102    (public, no NAT)
#                   -- two routers with symmetric NATs, sleft / sright behind them
#                   -- two port-restricted cone routers that drop all UDP, tleft / tright
#                   -- two symmetric NAT routers that drop all UDP, uleft / uright
#
# Rows: underlay (left -> right directly), p2pvpn direct (left -> right), p2pvpn relayed
# (sleft -> sright: both symmetric, so through the coordinator), p2pvpn TCP direct (tleft ->
# tright: port-restricted cones whose routers drop all UDP, registered over the coordinator's
# TCP main port, on a TCP path punched by simultaneous open), p2pvpn TCP relayed (uleft ->
# uright: symmetric NATs that drop all UDP, so relayed over the TCP main connections),
# wireguard-go and fastd (salsa2012+umac; fastd 22 has no chacha20-poly1305) between left and
# right, each set up by hand. Every tunnel has MTU 1400. Every row is set up once; then the
# whole set of rows is measured --runs times, interleaved (run 1 of every row, then run 2,
# ...). Per row and run:
#   - iperf3 TCP for --time seconds with 1 and with 4 streams (Mbit/s received);
#   - CPU seconds per GB: utime+stime (/proc/PID/stat) of the tunnel processes of both ends,
#     plus the coordinator when relaying, during the 1-stream run, per GB received;
#   - packets per second per core: tunnel packets per CPU second in that run, the packets
#     counted by the client host's underlay interface (tx+rx of eth0 in /sys/class/net, at
#     least one per 1514 bytes so a UDP GSO super-datagram is not counted as one);
#   - added RTT idle: 200 pings 10 ms apart through the row, p50 and p99, minus the same
#     percentile of the idle underlay ping left -> right measured at the start of the run;
#   - added RTT under load: pings 10 ms apart while the 1-stream iperf3 runs (from its
#     second second to a second before its end), p50 and p99, minus the same baseline.
# The report gives, per figure, every run's value and the median, the ratio to wireguard-go's
# figure in the same run and the median of those ratios; relayed / direct throughput, and TCP
# over UDP (TCP direct / UDP direct, TCP relayed / UDP relayed) from the same run; and a
# Markdown summary of medians and ratios for a closing note. Every iperf3 and ping is bounded
# by timeout(1); traffic stays inside the namespaces this script makes, and the lab's trap
# removes them on any exit (tests/e2e/lib.sh).
#
#   contrib/bench.sh [--build DIR] [--no-build] [--runs N] [--time SECONDS] [--rows LIST]
# --runs: default 3; --time: iperf3 seconds, default 10; LIST: a comma-separated subset of
# underlay,p2pvpn,relay,tcp-direct,tcp-relay,wireguard-go,fastd (default all). The TCP rows
# are measured only when their probe finds the pair on the intended path and transport (both
# ends registered over TCP; TCP direct, or settled on the relay). The underlay ping baseline
# is measured in every run whatever LIST says.
# P2P_PERFORMANCE (environment), when set, is the p2pvpn nodes' mesh.yaml `performance:` value
# (tests/e2e/p2p.sh), e.g. P2P_PERFORMANCE='{ workers: 0 }' vs '{ workers: 1 }' to compare
# sealing and opening on the loop alone with one worker beside it.
#
# Adding a row is a setup function, a probe function and one bench_row line, next to the
# others below (setup_tcp_direct and probe_tcp_direct are an example):
#   setup_ROW()  once, before run 1: its own hosts (so p2p0 and the ports stay free), the
#                shared pieces it needs (need_coordinator, need_iperf_server), its nodes;
#   probe_ROW()  before each measurement: checks the row is what it claims (path, transport)
#                and calls `probe HOST ADDR PID...` (where to measure, which pids to charge);
#   bench_row ROW "LABEL" setup_ROW probe_ROW
# plus `bench_pair NUM DEN` for a throughput ratio between two rows. A probe that returns
# non-zero skips the row in that run (its figures show "-").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$top/tests/e2e/p2p.sh"
# shellcheck source=contrib/bench-lib.sh
source "$top/contrib/bench-lib.sh"

build_dir=$top/build
do_build=1
BENCH_RUNS=3
rows=""
P2P_LOG_LEVEL=warn

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

positive() {  # OPTION VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: $1 wants a positive integer, not '$2'" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
  case $1 in
    --build) [ $# -ge 2 ] || usage; build_dir=$(realpath -m "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --runs) [ $# -ge 2 ] || usage; positive "$1" "$2"; BENCH_RUNS=$2; shift 2 ;;
    --time) [ $# -ge 2 ] || usage; positive "$1" "$2"; BENCH_SECONDS=$2; shift 2 ;;
    --rows) [ $# -ge 2 ] || usage; rows=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root (network namespaces)" >&2; exit 2; }

# --- the row table ------------------------------------------------------------------------------

BENCH_ROWS=()      # every row, in report order
BENCH_SELECTED=()  # those --rows asked for
BENCH_PAIRS=()     # "NUM:DEN": throughput ratios to print
declare -A ROW_LABEL ROW_SETUP ROW_PROBE

bench_row() {  # NAME LABEL SETUP PROBE
  BENCH_ROWS+=("$1")
  ROW_LABEL[$1]=$2 ROW_SETUP[$1]=$3 ROW_PROBE[$1]=$4
}
bench_pair() { BENCH_PAIRS+=("$1:$2"); }  # NUM DEN
bench_selected() { [[ " ${BENCH_SELECTED[*]} " == *" $1 "* ]]; }

# What a probe hands to the measurement: the client host, the address it measures against,
# and the tunnel's pids (none for the underlay).
PROBE_HOST="" PROBE_ADDR="" PROBE_PIDS=()
probe() {  # HOST ADDR [PID...]
  PROBE_HOST=$1 PROBE_ADDR=$2
  shift 2
  PROBE_PIDS=("$@")
}

# Shared pieces the setups ask for; each is made once.
BENCH_TCP_MAIN=443
BENCH_TCP_ASSIST=7402
declare -A BENCH_HAVE
need_coordinator() {  # with the TCP main and assist ports (only the TCP rows' nodes use them)
  [ -n "${BENCH_HAVE[coordinator]:-}" ] && return 0
  BENCH_HAVE[coordinator]=1
  p2p_init "$build_dir"
  p2p_coordinator coord "" "tcp: { main: 203.0.113.10:$BENCH_TCP_MAIN, assist: 203.0.113.10:$BENCH_TCP_ASSIST }"
}
need_iperf_server() {  # HOST
  [ -n "${BENCH_HAVE[iperf-$1]:-}" ] && return 0
  BENCH_HAVE[iperf-$1]=1
  lab_spawn "$1" "$LAB_DIR/logs/iperf3-$1.log" iperf3 -s --rcv-timeout 10000
  wait_for 10 "iperf3 server in $1" sh -c \
    "ip netns exec '$(lab_ns "$1")' ss -Hntl | grep -q ':5201'" || fail "iperf3 -s did not start in $1"
}

# --- the rows -----------------------------------------------------------------------------------

setup_underlay() { need_iperf_server right; }
probe_underlay() { probe left 203.0.113.102; }

setup_p2pvpn() {
  need_coordinator
  need_iperf_server right
  p2p_node left left 10.77.0.2
  p2p_node right right 10.77.0.3
}
probe_p2pvpn() {
  p2p_wait_ping left 10.77.0.3 30 || true
  p2p_path_is left right direct || bench_warn "p2pvpn: left -> right is not direct"
  probe left 10.77.0.3 "$(p2p_pid left)" "$(p2p_pid right)"
}

setup_relay() {
  need_coordinator
  lab_host sleft symmetric 1
  lab_host sright symmetric 2
  need_iperf_server sright
  p2p_node sleft sleft 10.77.0.4
  p2p_node sright sright 10.77.0.5
}
probe_relay() {
  p2p_wait_ping sleft 10.77.0.5 30 || true
  wait_for 20 "sleft -> sright settled on the relay" p2p_relay_settled sleft sright ||
    bench_warn "relay: sleft -> sright is '$(p2p_peer sleft sright path)', not settled on the relay"
  probe sleft 10.77.0.5 "$(p2p_pid sleft)" "$(p2p_pid sright)" "$(p2p_coordinator_pid)"
}

# Two nodes behind NAT routers of TYPE (LAN indices N and N+1) that drop all UDP: they
# register over the coordinator's TCP main port and may punch TCP paths through its assist
# port.
setup_udp_blocked_pair() {  # LEFT RIGHT TYPE N
  local left=$1 right=$2 type=$3 n=$4 yaml="punch: { tcp_assist: $BENCH_TCP_ASSIST }"
  need_coordinator
  lab_host "$left" "$type" "$n"
  lab_host "$right" "$type" $((n + 1))
  p2p_block_udp "r-$left"
  p2p_block_udp "r-$right"
  need_iperf_server "$right"
  P2P_COORD_TCP=$BENCH_TCP_MAIN p2p_node "$left" "$left" "10.77.0.$((n + 3))" "$yaml"
  P2P_COORD_TCP=$BENCH_TCP_MAIN p2p_node "$right" "$right" "10.77.0.$((n + 4))" "$yaml"
}

# Both ends registered over TCP (UDP gets no answer), else the row is not what it says.
probe_over_tcp() {  # ROW LEFT RIGHT
  local name
  for name in "$2" "$3"; do
    wait_for 40 "$name registered over TCP" p2p_coordinator_over "$name" tcp ||
      { bench_warn "$1: $name is not registered over TCP"; return 1; }
  done
}

setup_tcp_direct() { setup_udp_blocked_pair tleft tright port-restricted 3; }
probe_tcp_direct() {
  probe_over_tcp tcp-direct tleft tright || return 1
  if ! wait_for 60 "tleft -> tright direct over TCP" p2p_direct_now tleft tright tcp; then
    bench_warn "tcp-direct: tleft -> tright is '$(p2p_peer tleft tright path)'" \
      "'$(p2p_peer tleft tright transport)', not direct over TCP"
    return 1
  fi
  probe tleft 10.77.0.7 "$(p2p_pid tleft)" "$(p2p_pid tright)"
}

setup_tcp_relay() { setup_udp_blocked_pair uleft uright symmetric 5; }
probe_tcp_relay() {
  probe_over_tcp tcp-relay uleft uright || return 1
  p2p_wait_ping uleft 10.77.0.9 30 || true
  if ! wait_for 30 "uleft -> uright settled on the relay" p2p_relay_settled uleft uright; then
    bench_warn "tcp-relay: uleft -> uright is '$(p2p_peer uleft uright path)'" \
      "($(p2p_peer uleft uright relay_reason)), not settled on the relay"
    return 1
  fi
  probe uleft 10.77.0.9 "$(p2p_pid uleft)" "$(p2p_pid uright)" "$(p2p_coordinator_pid)"
}

# wireguard-go between left (10.88.0.1) and right (10.88.0.2). Its UAPI socket lives in the
# shared /var/run/wireguard, so the interface names carry this run's unique prefix.
WG_PIDS=()
setup_wireguard() {
  local tag=${LAB_PREFIX//[^0-9a-f]/} side peer i=1 dir=$LAB_DIR/wg
  tag=${tag:0:8}
  need_iperf_server right
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
probe_wireguard() { probe left 10.88.0.2 "${WG_PIDS[@]}"; }

# fastd (tun mode, salsa2012+umac) between left (10.99.0.1) and right (10.99.0.2).
FASTD_PIDS=()
setup_fastd() {
  local dir=$LAB_DIR/fastd side peer i=1
  need_iperf_server right
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
probe_fastd() { probe left 10.99.0.2 "${FASTD_PIDS[@]}"; }

bench_row underlay "underlay" setup_underlay probe_underlay
bench_row p2pvpn "p2pvpn direct" setup_p2pvpn probe_p2pvpn
bench_row relay "p2pvpn relayed" setup_relay probe_relay
bench_row tcp-direct "p2pvpn TCP direct" setup_tcp_direct probe_tcp_direct
bench_row tcp-relay "p2pvpn TCP relayed" setup_tcp_relay probe_tcp_relay
bench_row wireguard-go "wireguard-go" setup_wireguard probe_wireguard
bench_row fastd "fastd" setup_fastd probe_fastd
bench_pair relay p2pvpn
bench_pair tcp-relay tcp-direct
bench_pair tcp-direct p2pvpn
bench_pair tcp-relay relay

# --- main ---------------------------------------------------------------------------------------

select_rows() {
  local row
  [ -n "$rows" ] || rows=$(IFS=,; echo "${BENCH_ROWS[*]}")
  for row in ${rows//,/ }; do
    [ -n "${ROW_SETUP[$row]:-}" ] ||
      { echo "bench.sh: unknown row '$row' (rows: ${BENCH_ROWS[*]})" >&2; exit 2; }
  done
  for row in "${BENCH_ROWS[@]}"; do  # report order, whatever the order of --rows
    [[ ",$rows," == *",$row,"* ]] && BENCH_SELECTED+=("$row")
  done
  bench_selected "$BENCH_REF" ||
    lab_log "note: $BENCH_REF is not among the rows, so no ratios to it"
}

# The idle underlay ping of RUN, every row's added RTT is counted from.
measure_baseline() {  # RUN
  local sent recv
  read -r BASE_P50 BASE_P99 sent recv <<<"$(bench_ping left 203.0.113.102 "$BENCH_IDLE_PINGS")"
  lab_log "run $1: underlay idle RTT p50 $BASE_P50 ms, p99 $BASE_P99 ms ($recv of $sent)"
  [ "$BASE_P50" != - ] || fail "run $1: no ping over the underlay left -> right"
  BENCH_VALUE[baseline,p50,$1]=$BASE_P50 BENCH_VALUE[baseline,p99,$1]=$BASE_P99
}

main() {
  local row run
  select_rows
  if ((do_build)); then
    p2p_build "$top" "$build_dir"
  fi
  BENCH_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  lab_init
  lab_internet
  lab_public_host coord 203.0.113.10
  lab_public_host left 203.0.113.101
  lab_public_host right 203.0.113.102
  for row in "${BENCH_SELECTED[@]}"; do "${ROW_SETUP[$row]}"; done

  for ((run = 1; run <= BENCH_RUNS; run++)); do
    measure_baseline "$run"
    for row in "${BENCH_SELECTED[@]}"; do
      if ! "${ROW_PROBE[$row]}"; then
        bench_warn "$row, run $run: its probe failed, not measured"
        continue
      fi
      bench_measure "$row" "$run" "$PROBE_HOST" "$PROBE_ADDR" eth0 \
        "$([ "$row" = underlay ] && echo 1 || echo 0)" "${PROBE_PIDS[@]}"
    done
  done
  bench_report
}

main
