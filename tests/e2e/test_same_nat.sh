#!/usr/bin/env bash
# Two nodes behind one NAT (which does not hairpin) reach each other over the LAN: a direct
# path whose endpoint is the peer's LAN address. Once behind a port-restricted cone, once
# behind a symmetric NAT (where no public path can exist).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

lan_pair() {  # TYPE N: router r<N> of TYPE, nodes x<N> and y<N> on its LAN 192.168.N.0/24
  local type=$1 n=$2 x=x$2 y=y$2 ep
  lab_nat_router "r$n" "$type" "203.0.113.$((20 + n))" "$n"
  lab_private_host "$x" "r$n" "192.168.$n.10"
  lab_private_host "$y" "r$n" "192.168.$n.11"
  p2p_node "$x" "$x" "10.77.0.$((10 * n))"
  p2p_node "$y" "$y" "10.77.0.$((10 * n + 1))"
  p2p_wait_ping "$x" "$(p2p_vip "$y")" 20 || fail "$type: $x cannot ping $y"
  p2p_ping "$y" "$(p2p_vip "$x")" 3 || fail "$type: $y cannot ping $x"
  p2p_wait_path "$x" "$y" direct 30 ||
    fail "$type: $x -> $y is $(p2p_peer "$x" "$y" path) ($(p2p_peer "$x" "$y" relay_reason))"
  p2p_wait_path "$y" "$x" direct 10 || fail "$type: $y -> $x is not direct"
  ep=$(p2p_peer "$x" "$y" endpoint)
  [[ "$ep" == "192.168.$n.11:"* ]] || fail "$type: $x reaches $y at $ep, not on the LAN"
  ep=$(p2p_peer "$y" "$x" endpoint)
  [[ "$ep" == "192.168.$n.10:"* ]] || fail "$type: $y reaches $x at $ep, not on the LAN"
  lab_report "behind one $type NAT: direct over the LAN ($ep)"
}

main() {
  p2p_lab 203.0.113.11
  lan_pair port-restricted 1
  lan_pair symmetric 2
}

main "$@"
