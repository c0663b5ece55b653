#!/usr/bin/env bash
# Two public nodes (no NAT) and a coordinator: ping by virtual IP both ways, the status shows
# the peer on a direct path, and 50 MiB of TCP through the tunnel arrive with the same SHA-256.
# The status names the offloads in use: none off ($P2P_EXPECT_OFFLOADS, when set, says exactly
# which: "TUN_OFFLOAD UDP_GSO UDP_GRO").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

main() {
  p2p_public_pair

  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob by virtual IP"
  p2p_ping bob 10.77.0.2 3 || fail "bob cannot ping alice by virtual IP"
  p2p_ping alice 10.77.0.3 3 || fail "alice -> bob lost pings once up"
  lab_log "ping both ways: ok"

  p2p_wait_path alice bob direct 10 || fail "alice's status does not show bob on a direct path"
  p2p_wait_path bob alice direct 10 || fail "bob's status does not show alice on a direct path"
  [ "$(p2p_peer alice bob vip)" = 10.77.0.3 ] || fail "alice's status: bob's vip is wrong"
  [ "$(p2p_peer alice bob endpoint)" = "203.0.113.102:$(p2p_port bob)" ] ||
    fail "alice's status: bob's endpoint $(p2p_peer alice bob endpoint) is not his socket"
  lab_log "status: direct both ways, endpoint $(p2p_peer alice bob endpoint)"
  local offloads
  offloads=$(p2p_status alice | jq -r '.node.performance | "\(.tun_offload) \(.udp_gso) \(.udp_gro)"')
  if [ -n "${P2P_EXPECT_OFFLOADS:-}" ]; then
    [ "$offloads" = "$P2P_EXPECT_OFFLOADS" ] ||
      fail "alice's offloads are '$offloads', not '$P2P_EXPECT_OFFLOADS'"
  else
    [[ " $offloads " != *" off "* ]] || fail "alice's offloads '$offloads': one is off by default"
  fi
  lab_log "offloads (tun_offload udp_gso udp_gro): $offloads"

  p2p_transfer alice bob 10.77.0.3 5001 50 60 || fail "50 MiB alice -> bob corrupted or lost"
  p2p_transfer bob alice 10.77.0.2 5002 50 60 || fail "50 MiB bob -> alice corrupted or lost"
  local out
  out=$(p2p_peer alice bob bytes_out)
  ((out > 50 * 1024 * 1024)) || fail "alice's status counts only $out bytes out to bob"
}

main "$@"
