#!/usr/bin/env bash
# The Prometheus endpoints in the lab: the coordinator (metrics on 127.0.0.1:9102 of its host)
# and alice and bob (127.0.0.1:9101 of theirs) answer GET /metrics with curl, refuse anything
# else, and the figures move with traffic: after alice pings bob, bob's packets from alice,
# both nodes' completed handshakes and the coordinator's registered nodes are counted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

scrape() {  # HOST PORT
  lab_exec "$1" curl -sS --max-time 5 "http://127.0.0.1:$2/metrics"
}

# The value of the sample whose name and labels start with SERIES (first match; empty if none).
metric() {  # HOST PORT SERIES
  scrape "$1" "$2" | awk -v s="$3" 'index($0, s) == 1 { print $NF; exit }'
}

metric_at_least() {  # HOST PORT SERIES MIN
  local v
  v=$(metric "$1" "$2" "$3")
  [ -n "$v" ] && awk -v v="$v" -v m="$4" 'BEGIN { exit !(v + 0 >= m + 0) }'
}

main() {
  p2p_lab "" "metrics: { listen: 127.0.0.1:9102 }"
  lab_public_host alice 203.0.113.101
  lab_public_host bob 203.0.113.102
  p2p_node alice alice 10.77.0.2 "metrics: { listen: 127.0.0.1:9101 }"
  p2p_node bob bob 10.77.0.3 "metrics: { listen: 127.0.0.1:9101 }"

  local body
  body=$(scrape coord 9102) || fail "no answer from the coordinator's /metrics"
  grep -q '^# TYPE p2pvpn_coordinator_relay_bytes_total counter$' <<<"$body" ||
    fail "the coordinator's /metrics lacks p2pvpn_coordinator_relay_bytes_total"
  body=$(scrape alice 9101) || fail "no answer from alice's /metrics"
  grep -q '^# TYPE p2pvpn_time_to_direct_seconds histogram$' <<<"$body" ||
    fail "alice's /metrics lacks the time-to-direct histogram"
  local code
  code=$(lab_exec alice curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    "http://127.0.0.1:9101/secret")
  [ "$code" = 404 ] || fail "GET /secret answered $code, not 404"
  code=$(lab_exec alice curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    "http://127.0.0.1:9101/metrics")
  [ "$code" = 405 ] || fail "POST /metrics answered $code, not 405"
  lab_exec alice curl -s --max-time 5 "http://203.0.113.101:9101/metrics" >/dev/null 2>&1 &&
    fail "the metrics endpoint answers beyond loopback"

  wait_for 10 "both registered" metric_at_least coord 9102 p2pvpn_coordinator_registered_nodes 2 ||
    fail "the coordinator's p2pvpn_coordinator_registered_nodes did not reach 2"
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_ping alice 10.77.0.3 5 || fail "pings lost"
  metric_at_least bob 9101 'p2pvpn_peer_receive_packets_total{peer="alice"' 5 ||
    fail "bob's p2pvpn_peer_receive_packets_total for alice: $(metric bob 9101 'p2pvpn_peer_receive_packets_total{peer="alice"')"
  metric_at_least bob 9101 'p2pvpn_peer_transmit_bytes_total{peer="alice"' 400 ||
    fail "bob's p2pvpn_peer_transmit_bytes_total for alice did not move"
  metric_at_least alice 9101 p2pvpn_handshakes_started_total 1 || fail "alice started no handshake"
  metric_at_least bob 9101 p2pvpn_handshakes_completed_total 1 || fail "bob completed no handshake"
  metric_at_least alice 9101 p2pvpn_coordinator_registered 1 || fail "alice not registered"
  wait_for 15 "alice direct" metric_at_least alice 9101 'p2pvpn_peers{path="direct"' 1 ||
    fail "alice's p2pvpn_peers{path=direct} stayed 0"
  metric_at_least alice 9101 p2pvpn_punch_attempts_total 1 || fail "alice counted no punching"
  lab_log "alice: $(scrape alice 9101 | grep -E '^p2pvpn_(punch|handshakes|time_to_direct_seconds_count)')"
  lab_log "coordinator: $(scrape coord 9102 | grep -E '^p2pvpn_coordinator_(registered|relay_packets)')"
}

main "$@"
