#!/usr/bin/env bash
# A NAT forgets its mappings mid-transfer (conntrack -F, twice, in both routers): the TCP
# stream inside the tunnel survives and 30 MiB arrive intact; afterwards the pair still pings
# both ways and finds its direct path again. alice sits behind a symmetric NAT (a flush gives
# her a new public port), bob behind a full cone. alice's uplink is shaped to 40 Mbit/s so the
# transfer lasts long enough to be interrupted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

flush() {
  local r
  for r in r-alice r-bob; do
    lab_exec "$r" conntrack -F >/dev/null 2>&1 || fail "conntrack -F failed in $r"
  done
}

main() {
  local t0 transfer status=0 round
  p2p_lab 203.0.113.11
  lab_host alice symmetric 1
  lab_host bob full 2
  p2p_node alice alice 10.77.0.2
  p2p_node bob bob 10.77.0.3
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_wait_path alice bob direct 30 || fail "alice -> bob never went direct"
  lab_exec alice tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 100ms

  p2p_transfer alice bob 10.77.0.3 5001 30 90 &
  transfer=$!
  for round in 1 2; do
    sleep 2
    kill -0 "$transfer" 2>/dev/null || fail "the transfer ended before flush $round"
    flush
    lab_log "flush $round: mappings gone mid-transfer (path now $(p2p_peer alice bob path))"
  done
  t0=$SECONDS
  wait "$transfer" || status=$?
  [ "$status" -eq 0 ] || fail "the transfer did not survive the flushes"
  lab_report "30 MiB intact across two conntrack flushes (done $((SECONDS - t0)) s after)"

  lab_exec alice tc qdisc del dev eth0 root
  p2p_ping alice 10.77.0.3 3 || fail "alice cannot ping bob after the flushes"
  p2p_ping bob 10.77.0.2 3 || fail "bob cannot ping alice after the flushes"
  t0=$SECONDS
  p2p_wait_path alice bob direct 60 || fail "alice -> bob not direct again within 60 s"
  lab_report "direct path again $((SECONDS - t0)) s after the transfer"
}

main "$@"
