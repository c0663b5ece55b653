#!/usr/bin/env bash
# A daemon's TUN goes away when it stops (SIGTERM, SIGINT, or SIGKILL), and a restarted
# daemon reconnects: pings flow both ways again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

tun_gone() {  # HOST
  ! lab_exec "$1" ip link show dev p2p0 >/dev/null 2>&1
}

main() {
  p2p_public_pair
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"

  local sig start
  for sig in TERM INT KILL; do
    p2p_kill bob "$sig"
    wait_for 5 "bob's p2p0 to disappear after SIG$sig" tun_gone bob ||
      fail "bob's TUN survived SIG$sig"
    if p2p_ping alice 10.77.0.3 2; then fail "bob answers while stopped"; fi
    start=$SECONDS
    p2p_start bob
    p2p_wait_ping bob 10.77.0.2 30 || fail "bob, restarted after SIG$sig, cannot reach alice"
    p2p_wait_ping alice 10.77.0.3 30 || fail "alice cannot reach bob restarted after SIG$sig"
    lab_log "SIG$sig: TUN removed; restarted and reconnected in $((SECONDS - start)) s"
  done
  p2p_wait_path alice bob direct 10 || fail "alice -> bob not direct after the restarts"
}

main "$@"
