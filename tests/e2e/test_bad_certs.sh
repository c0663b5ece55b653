#!/usr/bin/env bash
# Certificates the network must refuse. mallory's certificate comes from another CA, eve's is
# revoked in coordinator.yaml: neither registers nor reaches alice, and alice cannot reach
# them. Each log says why: eve's that she is revoked; mallory's that no answer came (the
# coordinator drops initiations made for another CA unanswered, as blind garbage, and counts
# them as "bad mac1"). A daemon whose own certificate is not from the CA it trusts refuses
# to start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

# Until NAME's log matches the extended regex WHAT (bounded).
wait_log() {  # NAME REGEX SECONDS
  wait_for "$3" "$1's log to say /$2/" grep -qiE "$2" "$LAB_DIR/logs/$1.log"
}

main() {
  lab_init
  p2p_init "$E2E_BUILD"
  p2p_ca evil
  lab_internet
  lab_public_host coord 203.0.113.10
  lab_public_host alice 203.0.113.101
  lab_public_host mallory 203.0.113.102
  lab_public_host eve 203.0.113.103

  # eve's certificate is issued by the network's CA, then revoked by fingerprint.
  p2p_issue eve 10.77.0.5
  local fp
  fp=$(p2p_fingerprint "$LAB_DIR/pki/eve.crt")
  [ ${#fp} -eq 64 ] || fail "no fingerprint in 'p2pvpnctl cert show' for eve"
  p2p_coordinator coord "" "revoked: [ \"$fp\" ]"

  p2p_node alice alice 10.77.0.2
  p2p_configure mallory mallory 10.77.0.4 "" evil   # trusts and holds the other CA's
  p2p_start mallory
  p2p_node eve eve 10.77.0.5

  wait_log eve 'revoked' 15 || fail "eve's log does not say her certificate is revoked"
  wait_log mallory 'wrong CA|bad signature|refused|no answer from coordinator' 20 ||
    fail "mallory's log does not say why she is refused"
  grep -qiE 'refused.*revoked|revoked.*refused' "$LAB_DIR/logs/coordinator.log" ||
    fail "the coordinator's log does not say it refused eve as revoked"
  grep -qiE 'wrong CA|bad signature|bad mac1|CA is not our ca.crt' "$LAB_DIR/logs/coordinator.log" "$LAB_DIR/logs/mallory.log" ||
    fail "neither mallory's nor the coordinator's log names the CA mismatch"
  lab_log "eve: $(grep -iE -m1 'revoked' "$LAB_DIR/logs/eve.log")"
  lab_log "mallory: $(grep -iE -m1 'wrong CA|bad signature|refused|no answer from coordinator' "$LAB_DIR/logs/mallory.log")"

  local who vip state
  for who in mallory eve; do
    vip=$(p2p_vip "$who")
    state=$(p2p_status "$who" | jq -r .node.coordinator.state)
    [ "$state" != registered ] || fail "$who's status says she is registered"
    if p2p_ping "$who" 10.77.0.2 3; then fail "$who reached alice"; fi
    if p2p_ping alice "$vip" 3; then fail "alice reached $who"; fi
    [ -z "$(p2p_peer alice "$who" name)" ] || fail "alice has a session with $who"
  done
  [[ "$(p2p_status eve | jq -r .node.coordinator.state)" == refused*revoked* ]] ||
    fail "eve's status does not say the coordinator refused her as revoked"
  lab_log "mallory and eve refused, unreachable both ways"

  # A daemon holding a certificate its own CA did not sign does not start at all.
  p2p_configure trudy alice 10.77.0.6 "" evil
  cp "$LAB_DIR/pki/ca/ca.crt" "$LAB_DIR/nodes/trudy/ca.crt"
  sed -i "s|name: p2p0|name: p2p1|" "$LAB_DIR/nodes/trudy/mesh.yaml"
  local status=0
  lab_exec alice timeout 10 "$P2P_DAEMON" -c "$LAB_DIR/nodes/trudy/mesh.yaml" \
    >"$LAB_DIR/logs/trudy.log" 2>&1 || status=$?
  [ "$status" -eq 1 ] || fail "p2pvpnd with a foreign certificate exited $status, not 1"
  grep -qiE 'wrong CA|bad signature' "$LAB_DIR/logs/trudy.log" ||
    fail "p2pvpnd with a foreign certificate does not say why it refuses to start"
  ! lab_exec alice ip link show p2p1 >/dev/null 2>&1 || fail "a refused daemon left p2p1 behind"
  lab_log "trudy: $(head -n1 "$LAB_DIR/logs/trudy.log")"
}

main "$@"
