#!/usr/bin/env bash
# The soak run (by hand, not in CI; needs root): a coordinator and three nodes in the namespace
# lab (tests/e2e/lib.sh) carry traffic for MINUTES while, every PERIOD seconds, either both
# NAT routers forget their mappings (conntrack -F) or the coordinator is restarted, in turn.
#
#   alice  192.168.1.10 behind a symmetric NAT          10.77.0.2
#   bob    192.168.2.10 behind a port-restricted NAT    10.77.0.3
#   carol  203.0.113.103, public                         10.77.0.4
#
# Traffic: a ring of pings (alice->bob, bob->carol, carol->alice), RATE a second each, 1000
# bytes. Every SAMPLE seconds: the RSS of each daemon and of the coordinator, the pings lost
# in the sample per ring direction (ping's SIGQUIT summary), and the stuck peers: a pinged
# peer that the pinging node's status shows without a session (path "none", or absent), or
# whose session lost more than half the sample's pings - reported when it stays so for 3
# samples in a row. At the end: RSS over time, stuck peers,
# and per ring direction the pings sent, answered and the bytes lost.
#
#   contrib/soak.sh [MINUTES (30)] [--build DIR] [--period SECONDS (180)] [--rate N (20)]
#                   [--sample SECONDS (10)]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$top/tests/e2e/p2p.sh"

minutes=30
E2E_BUILD=$top/build
period=180
rate=20
sample=10
while [ $# -gt 0 ]; do
  case $1 in
    --build) E2E_BUILD=$2; shift 2 ;;
    --period) period=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    [0-9]*) minutes=$1; shift ;;
    *) echo "usage: $0 [MINUTES] [--build DIR] [--period S] [--rate N] [--sample S]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "soak.sh needs root (network namespaces)" >&2; exit 1; }
P2P_LOG_LEVEL=info  # half an hour of debug logs is more than anyone reads
export E2E_BUILD

rss_kib() {  # PID: resident set in KiB, or "-" when it is gone
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo -
}

restart_coordinator() {
  lab_stop "$P2P_COORD_PID" TERM 5 || true
  lab_spawn coord "$LAB_DIR/logs/coordinator.log" "$P2P_COORDINATOR" \
    -c "$LAB_DIR/coordinator/coordinator.yaml"
  P2P_COORD_PID=$LAB_LAST_PID
  wait_for 10 "coordinator listening again" p2p_listening coord "$P2P_COORD_ENDPOINT" ||
    fail "the coordinator did not come back"
}

flush_nats() {
  local r
  for r in r-alice r-bob; do lab_exec "$r" conntrack -F >/dev/null 2>&1 || true; done
}

# "alice bob" -> whether alice's status shows bob with a session (path direct or relay).
# Pings sent and answered so far by the ping of PAIR, as "SENT ANSWERED" (SIGQUIT makes ping
# print "answered/sent packets, ..." without stopping).
ping_progress() {  # LOG PID
  kill -QUIT "$2" 2>/dev/null || true
  sleep 0.2
  tr '\r' '\n' <"$1" | sed -n 's#^\([0-9]*\)/\([0-9]*\) packets.*#\2 \1#p' | tail -n1
}

has_session() {  # NAME PEER
  local path
  path=$(p2p_peer "$1" "$2" path)
  [ "$path" = direct ] || [ "$path" = relay ]
}

main() {
  local seconds=$((minutes * 60)) count=$((minutes * 60 * rate)) t0 next_event event=0
  local -a ring=("alice bob" "bob carol" "carol alice")
  local -A stuck_run stuck_max ping_pid last_sent last_got
  p2p_lab ""
  lab_host alice symmetric 1
  lab_host bob port-restricted 2
  lab_host carol none 3
  p2p_node alice alice 10.77.0.2
  p2p_node bob bob 10.77.0.3
  p2p_node carol carol 10.77.0.4
  local pair from to
  for pair in "${ring[@]}"; do
    read -r from to <<<"$pair"
    p2p_wait_ping "$from" "${P2P_VIP[$to]}" 30 || fail "$from cannot ping $to"
  done
  lab_log "soak: $minutes min, pings $rate/s per direction, an event every $period s"

  for pair in "${ring[@]}"; do
    read -r from to <<<"$pair"
    lab_spawn "$from" "$LAB_DIR/logs/ping-$from-$to.log" \
      ping -q -n -s 972 -i "$(awk -v r="$rate" 'BEGIN {printf "%.3f", 1 / r}')" \
      -c "$count" -w "$((seconds + 30))" "${P2P_VIP[$to]}"
    ping_pid[$pair]=$LAB_LAST_PID
    stuck_run[$pair]=0
    stuck_max[$pair]=0
    last_sent[$pair]=0
    last_got[$pair]=0
  done

  printf 'rss_kib: %6s %9s %9s %9s %9s  %-24s %s\n' time alice bob carol coord \
    "lost: a>b b>c c>a" event
  t0=$SECONDS
  next_event=$((t0 + period))
  while ((SECONDS - t0 < seconds)); do
    sleep "$sample"
    local what=""
    if ((SECONDS >= next_event)); then
      if ((event % 2 == 0)); then
        flush_nats
        what="conntrack -F in both NATs"
      else
        restart_coordinator
        what="coordinator restarted"
      fi
      event=$((event + 1))
      next_event=$((next_event + period))
    fi
    local lost="" progress sent got
    for pair in "${ring[@]}"; do
      read -r from to <<<"$pair"
      progress=$(ping_progress "$LAB_DIR/logs/ping-$from-$to.log" "${ping_pid[$pair]}")
      read -r sent got <<<"${progress:-0 0}"
      local n_sent=$((sent - last_sent[$pair])) n_lost=$(((sent - last_sent[$pair]) - (got - last_got[$pair])))
      lost+=" $n_lost"
      last_sent[$pair]=$sent
      last_got[$pair]=$got
      # Stuck: no session in the status, or a session that carries less than half the pings.
      if has_session "$from" "$to" && ((n_lost * 2 <= n_sent)); then
        stuck_run[$pair]=0
      else
        stuck_run[$pair]=$((stuck_run[$pair] + 1))
        ((stuck_run[$pair] > stuck_max[$pair])) && stuck_max[$pair]=${stuck_run[$pair]}
        ((stuck_run[$pair] == 3)) &&
          lab_log "stuck: $from -> $to without a session or losing most pings for $((3 * sample)) s"
      fi
    done
    printf 'rss_kib: %6s %9s %9s %9s %9s  %-24s %s\n' "$((SECONDS - t0))s" \
      "$(rss_kib "${P2P_PID[alice]}")" "$(rss_kib "${P2P_PID[bob]}")" \
      "$(rss_kib "${P2P_PID[carol]}")" "$(rss_kib "$P2P_COORD_PID")" "$lost" "$what"
  done

  local sent got
  for pair in "${ring[@]}"; do
    read -r from to <<<"$pair"
    kill -INT "${ping_pid[$pair]}" 2>/dev/null || true
    wait "${ping_pid[$pair]}" 2>/dev/null || true
    sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$LAB_DIR/logs/ping-$from-$to.log")
    got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$LAB_DIR/logs/ping-$from-$to.log")
    sent=${sent:-0}
    got=${got:-0}
    lab_report "$(printf '%-5s -> %-5s pings sent %6d answered %6d lost %5d (%d bytes of 1000-byte packets); longest stretch stuck: %d s' \
      "$from" "$to" "$sent" "$got" "$((sent - got))" "$(((sent - got) * 1000))" \
      "$((stuck_max[$pair] * sample))")"
  done
  for from in alice bob carol; do
    lab_report "$from: $(p2p_status "$from" | jq -c '{drops, peer_table, peers: [.peers[] | {name, state, path}]}')"
  done
}

main "$@"
