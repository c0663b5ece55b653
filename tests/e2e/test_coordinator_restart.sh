#!/usr/bin/env bash
# A coordinator restarted in about 1.5 s (SIGKILL, then started again: it has forgotten every
# session) while alice and bob talk only through its relay: the nodes notice within seconds
# (their Pings go unanswered), register again, and relayed traffic flows again within 10 s of
# its return. Prints the seconds from its return until a relayed ping is answered.
# e2e-timeout: 120
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

main() {
  p2p_lab ""
  lab_public_host alice 203.0.113.101
  lab_public_host bob 203.0.113.102
  p2p_node alice alice 10.77.0.2 "peers: [{ name: bob, force: relay }]"
  p2p_node bob bob 10.77.0.3 "peers: [{ name: alice, force: relay }]"
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_wait_path alice bob relay 10 || fail "alice -> bob is not relayed"

  local dir=$LAB_DIR/coordinator back flows
  sleep 1  # the first Pings' answers: each node knows the coordinator answers them
  lab_log "restarting the coordinator"
  kill -KILL "$P2P_COORD_PID"
  wait "$P2P_COORD_PID" 2>/dev/null || true
  sleep 1.5
  lab_spawn coord "$LAB_DIR/logs/coordinator.log" "$P2P_COORDINATOR" -c "$dir/coordinator.yaml"
  P2P_COORD_PID=$LAB_LAST_PID
  back=$(now_ms)
  wait_for 10 "coordinator listening" p2p_listening coord "$P2P_COORD_ENDPOINT" ||
    fail "the coordinator did not start again"
  # One ping a time, each waiting up to 1 s: the first answered one ends the wait.
  wait_for 20 "a relayed ping after the restart" \
    lab_exec alice ping -q -n -c 1 -W 1 10.77.0.3 || fail "relayed traffic did not come back"
  flows=$(($(now_ms) - back))
  lab_report "coordinator restart (1.5 s down): relayed traffic flows again $(ms_to_s "$flows") s after its return"
  p2p_path_is alice bob relay || fail "alice -> bob is no longer relayed"
  ((flows <= 10000)) || fail "relayed traffic came back only after $flows ms"
  grep -q "answers no ping" "$LAB_DIR/logs/alice.log" ||
    fail "alice did not notice the restart by its Pings"
}

main "$@"
