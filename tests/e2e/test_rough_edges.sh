#!/usr/bin/env bash
# The rough edges a newcomer met following the README, each driven as they met it:
#   --version of every program; options before p2pvpnctl's command; ping of this node itself
#   or of an address outside the mesh (a precise refusal, no status row); netcheck --server at
#   a host that does not answer ("no answer from", exit 1, not "UDP blocked"); a node whose
#   coordinator address is wrong (a warning naming it, status NAT "no answer"); a second
#   p2pvpnd on a taken control socket (exits before it raises its TUN).
# e2e-timeout: 90
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

main() {
  local b out
  p2p_public_pair
  for b in "$P2P_CTL" "$P2P_DAEMON" "$P2P_COORDINATOR"; do
    out=$("$b" --version) || fail "${b##*/} --version fails"
    [[ $out == "${b##*/} "[0-9]* ]] || fail "${b##*/} --version printed '$out'"
  done

  local sock=$LAB_DIR/nodes/alice/ctl.sock mesh=$LAB_DIR/nodes/alice/mesh.yaml
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  lab_exec alice timeout 20 "$P2P_CTL" -c "$mesh" ping -n 1 bob >/dev/null ||
    fail "p2pvpnctl -c mesh.yaml ping bob (options before the command) fails"

  # Ping of this node, and of an address outside the mesh: refused with the reason.
  out=$(lab_exec alice timeout 20 "$P2P_CTL" ping -n 1 --socket "$sock" alice 2>&1) &&
    fail "ping of alice itself succeeded: $out"
  grep -q "alice is this node (10.77.0.2)" <<<"$out" || fail "ping alice on alice: $out"
  out=$(lab_exec alice timeout 20 "$P2P_CTL" ping -n 1 --socket "$sock" 10.78.0.1 2>&1) &&
    fail "ping outside the mesh succeeded: $out"
  grep -q "10.78.0.1 is outside the mesh 10.77.0.0/24" <<<"$out" || fail "ping 10.78.0.1: $out"
  [ "$(p2p_status alice | jq '[.peers[].name] | sort | join(",")' -r)" = bob ] ||
    fail "the refused pings left rows: $(p2p_status alice | jq -c '[.peers[].name]')"

  # netcheck --server at an address where nobody answers.
  local err=$LAB_DIR/logs/netcheck.err rc=0
  out=$(lab_exec alice timeout 30 "$P2P_CTL" netcheck --socket "$sock" \
    --server 203.0.113.99:3478 2>"$err") || rc=$?
  [ "$rc" = 1 ] || fail "netcheck against a silent server exits $rc: $out $(cat "$err")"
  grep -q "no answer from 203.0.113.99:3478" <<<"$out" || fail "netcheck said: $out"
  grep -q "UDP blocked" <<<"$out" && fail "netcheck still says UDP blocked: $out"
  grep -q "^running NAT discovery against 203.0.113.99:3478" "$err" ||
    fail "netcheck printed no progress: $(cat "$err")"

  # A node whose mesh.yaml names a coordinator address where nobody answers.
  lab_public_host carol 203.0.113.103
  p2p_configure carol carol 10.77.0.4
  sed -i 's/203.0.113.10:7400/203.0.113.98:7400/' "$LAB_DIR/nodes/carol/mesh.yaml"
  p2p_start carol
  wait_for 20 "carol's warning about 203.0.113.98:7400" \
    grep -q "warn.*no answer from server=203.0.113.98:7400" "$LAB_DIR/logs/carol.log" ||
    fail "carol logged no warning naming the silent coordinator"
  # Log lines carry UTC with its zone.
  grep -Eq '^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\] \[[a-z]+\] \[warning\] .*no answer' \
    "$LAB_DIR/logs/carol.log" || fail "carol's log lines are not stamped in UTC: $(head -3 "$LAB_DIR/logs/carol.log")"
  lab_exec carol timeout 10 "$P2P_CTL" status --socket "$LAB_DIR/nodes/carol/ctl.sock" |
    grep -q "NAT unknown (no answer to NAT discovery)" ||
    fail "carol's status: $(lab_exec carol "$P2P_CTL" status --socket "$LAB_DIR/nodes/carol/ctl.sock")"

  # A second p2pvpnd on alice's control socket exits before raising its TUN (p2p9).
  sed 's/name: p2p0/name: p2p9/' "$mesh" >"$LAB_DIR/nodes/alice/second.yaml"
  rc=0
  lab_exec alice timeout 10 "$P2P_DAEMON" -c "$LAB_DIR/nodes/alice/second.yaml" \
    >"$LAB_DIR/logs/second.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "a second p2pvpnd on a taken control socket exits $rc"
  grep -q "$sock" "$LAB_DIR/logs/second.log" || fail "second p2pvpnd: $(cat "$LAB_DIR/logs/second.log")"
  grep -q "interface=p2p9" "$LAB_DIR/logs/second.log" &&
    fail "the second p2pvpnd raised its TUN first: $(cat "$LAB_DIR/logs/second.log")"
  p2p_ping alice 10.77.0.3 2 || fail "alice's tunnel broke when the second daemon was refused"
  lab_log "rough edges: all as documented"
}

main "$@"
