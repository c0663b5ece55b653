#!/usr/bin/env bash
# A running mesh changed and stopped as an admin does it (issue 12, "staying up"):
#   SIGHUP with a changed log level and peer policy while a ping crosses the tunnel (at most
#   one packet lost, the path moves to the relay); SIGHUP with an invalid mesh.yaml (the old
#   one stays, the log names file:line and key); `p2pvpnctl reload` (refused, then applied
#   with a "needs restart" key named); the coordinator's SIGHUP and `reload`; pings of an
#   unknown name, an unknown address and the coordinator (refused at once, exit 1, no row);
#   `issue --renew` (same key, new validity, which status then warns about); SIGTERM: exit 0
#   within 2 s, TUN gone, the peer shows it "gone" and the coordinator forgot it within 2 s;
#   the coordinator's SIGTERM: exit 0.
# e2e-timeout: 120
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

ctl() {  # NAME ARGS...: p2pvpnctl in NAME's host with NAME's control socket
  local name=$1; shift
  lab_exec "${P2P_HOST[$name]}" timeout 20 "$P2P_CTL" "$@" --socket "$LAB_DIR/nodes/$name/ctl.sock"
}

# Sends SIGNAL to PID (a child of this shell) and waits up to SECONDS for it to exit; sets
# STOP_RC (its exit status, "killed" after SECONDS) and STOP_MS (the time it took).
stop_timed() {  # PID SIGNAL SECONDS
  local pid=$1 t0 i
  t0=$(now_ms)
  kill "-$2" "$pid"
  for ((i = 0; i < $3 * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  STOP_MS=$(($(now_ms) - t0))
  if kill -KILL "$pid" 2>/dev/null; then
    STOP_RC=killed
    wait "$pid" 2>/dev/null || true
    return
  fi
  STOP_RC=0
  wait "$pid" || STOP_RC=$?
}

main() {
  local out rc mesh alice_log
  p2p_public_pair
  mesh=$LAB_DIR/nodes/alice/mesh.yaml
  alice_log=$LAB_DIR/logs/alice.log
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_wait_path alice bob direct 15 || fail "alice -> bob never went direct"

  # --- SIGHUP while a ping crosses the tunnel: log level and bob's policy change.
  local stats=$LAB_DIR/logs/hup-ping
  lab_exec alice ping -n -i 0.1 -W 1 -w 6 10.77.0.3 >"$stats" 2>&1 &
  local ping_pid=$!
  sleep 1
  cp "$mesh" "$mesh.orig"
  sed -i "s/^log: .*/log: { level: info }/" "$mesh"
  echo "peers: [ { name: bob, force: relay } ]" >>"$mesh"
  kill -HUP "$(p2p_pid alice)"
  wait_for 5 "alice's reload" grep -q "reloaded .*applied: log, peers" "$alice_log" ||
    fail "alice logged no reload: $(tail -n 5 "$alice_log")"
  p2p_wait_path alice bob relay 3 || fail "bob's new policy did not move alice to the relay"
  # An invalid file: the running configuration stays, the log names file:line and key.
  sed -i 's/^log: .*/log: { level: loud }/' "$mesh"
  kill -HUP "$(p2p_pid alice)"
  wait_for 5 "alice's refused reload" grep -q "reload refused.*$mesh:[0-9]*:[0-9]*: log.level" \
    "$alice_log" || fail "alice's refusal: $(tail -n 5 "$alice_log")"
  wait "$ping_pid" || true
  local sent received
  sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$stats")
  received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$stats")
  [ -n "$sent" ] && [ "$((sent - received))" -le 1 ] ||
    fail "ping through the reloads lost $((sent - received)) of $sent: $(tail -n 3 "$stats")"
  lab_report "reload during ping: $received of $sent answered"
  kill -0 "$(p2p_pid alice)" || fail "alice died of SIGHUP"
  [ "$(p2p_peer alice bob state)" = connected ] || fail "bob's session dropped by the reloads"

  # --- p2pvpnctl reload: refused (exit 1, file:line key), then applied with a restart key.
  rc=0
  out=$(ctl alice reload 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "p2pvpnctl reload of an invalid file exits $rc: $out"
  grep -q "$mesh:[0-9]*:[0-9]*: log.level" <<<"$out" || fail "p2pvpnctl reload said: $out"
  cp "$mesh.orig" "$mesh"
  sed -i 's/^listen: .*/listen: { port: 5999 }/' "$mesh"
  out=$(ctl alice reload 2>&1) || fail "p2pvpnctl reload of a valid file failed: $out"
  grep -q "^reloaded: applied: log, peers; needs restart (ignored): listen" <<<"$out" ||
    fail "p2pvpnctl reload said: $out"
  p2p_wait_path alice bob direct 15 || fail "without its policy bob did not go direct again"

  # --- The coordinator: SIGHUP with new relay limits, then p2pvpnctl reload.
  local cyaml=$LAB_DIR/coordinator/coordinator.yaml clog=$LAB_DIR/logs/coordinator.log
  sed -i 's/rate_limit: 10gbit/rate_limit: 5gbit/' "$cyaml"
  kill -HUP "$(p2p_coordinator_pid)"
  wait_for 5 "the coordinator's reload" grep -q "reloaded .*applied: relay" "$clog" ||
    fail "the coordinator logged no reload: $(tail -n 5 "$clog")"
  out=$(lab_exec coord timeout 10 "$P2P_CTL" reload --socket "$LAB_DIR/coordinator/ctl.sock" 2>&1) ||
    fail "p2pvpnctl reload at the coordinator: $out"
  grep -q "^reloaded: no changes" <<<"$out" || fail "coordinator reload said: $out"
  p2p_ping alice 10.77.0.3 2 || fail "the coordinator's reload broke the tunnel"

  # --- Pings that can never be answered: refused at once, exit 1, no status row.
  local target why
  for target in "nobody:unknown peer nobody" "10.77.0.99:unknown peer 10.77.0.99" \
    "10.77.0.1:10.77.0.1 is the coordinator"; do
    why=${target#*:}
    target=${target%%:*}
    rc=0
    out=$(ctl alice ping -n 3 "$target" 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "ping $target exits $rc: $out"
    grep -q "$why" <<<"$out" || fail "ping $target said: $out"
  done
  [ "$(p2p_status alice | jq -r '[.peers[].name] | join(",")')" = bob ] ||
    fail "the refused pings left rows: $(p2p_status alice | jq -c '[.peers[].name]')"

  # --- issue --renew: same key, new validity (20 days: status then warns).
  local fp_before
  local key_before
  fp_before=$(p2p_fingerprint "$LAB_DIR/pki/bob.crt")
  key_before=$(sha256sum <"$LAB_DIR/pki/bob.key")
  out=$("$P2P_CTL" issue --ca "$LAB_DIR/pki/ca" --name bob --renew --valid 20d \
    --out "$LAB_DIR/pki" 2>&1) || fail "issue --renew failed: $out"
  grep -q "^renewed 'bob' (node, 10.77.0.3/24)" <<<"$out" || fail "issue --renew said: $out"
  [ "$(p2p_fingerprint "$LAB_DIR/pki/bob.crt")" != "$fp_before" ] || fail "renew changed nothing"
  [ "$(sha256sum <"$LAB_DIR/pki/bob.key")" = "$key_before" ] || fail "renew rewrote bob.key"
  grep -q "^bob 10.77.0.3/24 " "$LAB_DIR/pki/ca/issued.txt" || fail "issued.txt lost bob"

  # --- SIGTERM: exit 0 within 2 s, TUN gone, alice sees bob gone, the coordinator forgot bob.
  stop_timed "$(p2p_pid bob)" TERM 5
  lab_report "bob's SIGTERM: exit status $STOP_RC after $STOP_MS ms"
  [ "$STOP_RC" = 0 ] || fail "bob's p2pvpnd exited '$STOP_RC' on SIGTERM"
  [ "$STOP_MS" -le 2000 ] || fail "bob took $STOP_MS ms to stop"
  p2p_tun_up bob && fail "bob's TUN is still up"
  wait_for 2 "alice shows bob gone" test "$(p2p_peer alice bob state)" = gone ||
    fail "alice shows bob as $(p2p_peer alice bob state)"
  lab_exec coord timeout 10 "$P2P_CTL" status --json --socket "$LAB_DIR/coordinator/ctl.sock" |
    jq -e '[.nodes[].name] == ["alice"]' >/dev/null ||
    fail "the coordinator still lists bob"

  # --- bob with the renewed certificate: the same key is accepted; status warns.
  cp "$LAB_DIR/pki/bob.crt" "$LAB_DIR/nodes/bob/bob.crt"
  p2p_start bob
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob with its renewed certificate"
  p2p_status bob | jq -e '.node.certificate.warnings | length == 1' >/dev/null ||
    fail "bob's status: $(p2p_status bob | jq -c .node.certificate)"
  # 20 days less the seconds since the renewal: "20 days" within the same second, else 19.
  ctl bob status | grep -Eq "^warning: certificate 'bob' expires in (19|20) days" ||
    fail "bob's status text: $(ctl bob status)"
  grep -q "warn.*certificate 'bob' expires in" "$LAB_DIR/logs/bob.log" ||
    fail "bob logged no expiry warning"

  # --- The coordinator's SIGTERM: exit 0.
  stop_timed "$(p2p_coordinator_pid)" TERM 5
  lab_report "the coordinator's SIGTERM: exit status $STOP_RC after $STOP_MS ms"
  [ "$STOP_RC" = 0 ] || fail "the coordinator exited '$STOP_RC' on SIGTERM"
  lab_log "lifecycle: reload, shutdown, renew and refused pings as documented"
}

main "$@"
