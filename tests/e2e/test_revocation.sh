#!/usr/bin/env bash
# Revocation that takes effect: alice and bob have a live tunnel (alice pings bob ten times a
# second); the admin revokes bob with `p2pvpnctl revoke` and puts the signed list where the
# coordinator's `revocation_list:` points. The coordinator notices the file (it looks once a
# second), forgets bob and pushes the list to alice, who cuts her session with bob. Measured:
# the seconds from the list landing at the coordinator to alice's last answered ping. Then
# bob stays cut off both ways, and alice shows the list in her status and keeps it in her
# revocation_list file. (Rollback and forgery are refused in tests/unit: revocation_*_test.)
# e2e-timeout: 120
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

# Seconds (with microseconds) of the last answered ping in ping -D output.
last_reply() {  # LOG
  sed -n 's/^\[\([0-9.]*\)\].*bytes from.*/\1/p' "$1" | tail -n1
}

# The state of the peer at VIP in NAME's status (a refused peer is known by its address only).
peer_state() {  # NAME VIP
  p2p_status "$1" 2>/dev/null | jq -r --arg v "$2" '.peers[] | select(.vip == $v) | .state' ||
    true
}

main() {
  p2p_lab "" "revocation_list: revoked.list"
  lab_public_host alice 203.0.113.101
  lab_public_host bob 203.0.113.102
  p2p_node alice alice 10.77.0.2 "revocation_list: revoked.list"
  p2p_node bob bob 10.77.0.3
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_wait_path alice bob direct 10 || fail "alice's status does not show bob on a direct path"
  lab_log "tunnel up: alice pings bob"

  local pings=$LAB_DIR/logs/ping.log
  lab_spawn alice "$pings" ping -n -D -i 0.1 -W 1 10.77.0.3
  local ping_pid=$LAB_LAST_PID
  wait_for 5 "pings answered" grep -q "bytes from" "$pings" || fail "alice's pings unanswered"

  # The admin's side: sign the list in the CA directory, copy it to the coordinator.
  local ca=$LAB_DIR/pki/ca
  "$P2P_CTL" revoke --ca "$ca" --name bob >"$LAB_DIR/logs/revoke.log" ||
    fail "p2pvpnctl revoke failed: $(cat "$LAB_DIR/logs/revoke.log")"
  grep -q "revocation list 1: 1 certificates revoked" "$LAB_DIR/logs/revoke.log" ||
    fail "p2pvpnctl revoke said: $(cat "$LAB_DIR/logs/revoke.log")"
  cp "$ca/revoked.list" "$LAB_DIR/coordinator/revoked.list.new"
  local t0
  t0=$(date +%s.%N)
  mv "$LAB_DIR/coordinator/revoked.list.new" "$LAB_DIR/coordinator/revoked.list"

  local deadline=$((SECONDS + 15))
  until [ "$(peer_state alice 10.77.0.3)" = refused ]; do
    ((SECONDS < deadline)) ||
      fail "alice still has bob as '$(peer_state alice 10.77.0.3)' 15 s after the revocation"
    sleep 0.1
  done
  sleep 3  # long enough for a ping answered after the cut to show
  lab_stop "$ping_pid" INT 5 || true
  local last cut
  last=$(last_reply "$pings")
  [ -n "$last" ] || fail "no answered ping in $pings"
  cut=$(awk -v a="$last" -v b="$t0" 'BEGIN { d = a - b; if (d < 0) d = 0; printf "%.2f", d + 0.1 }')
  lab_report "revocation: alice's pings to bob stopped ${cut} s after the list reached the coordinator"
  awk -v c="$cut" 'BEGIN { exit !(c < 5) }' || fail "the revocation took ${cut} s (over 5 s)"

  # Cut off for good: bob cannot come back, through the coordinator or directly.
  sleep 2
  p2p_ping alice 10.77.0.3 3 && fail "alice can ping bob again after the revocation"
  p2p_ping bob 10.77.0.2 3 && fail "bob can ping alice after the revocation"
  local status
  status=$(p2p_status alice)
  [ "$(jq -r .node.revocation_list.sequence <<<"$status")" = 1 ] ||
    fail "alice's status: revocation_list $(jq -c .node.revocation_list <<<"$status")"
  lab_exec alice timeout 10 "$P2P_CTL" status --socket "$LAB_DIR/nodes/alice/ctl.sock" |
    grep -q "revocation list 1" || fail "p2pvpnctl status does not show the revocation list"
  grep -q "revoked" "$LAB_DIR/logs/coordinator.log" || fail "the coordinator did not log bob's removal"
  "$P2P_CTL" cert show "$LAB_DIR/nodes/alice/revoked.list" | grep -q "sequence:    1" ||
    fail "alice did not keep the list in her revocation_list file"
  lab_log "revocation: ok"
  return 0
}

main "$@"
