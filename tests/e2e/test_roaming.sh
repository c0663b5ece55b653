#!/usr/bin/env bash
# e2e-timeout: 240
# A laptop changes networks mid-transfer, from a port-restricted café NAT to a symmetric one:
# its interface disappears and a new one comes up with another address and default route.
# Home follows laptop to its new address on a direct path (an authenticated probe from an
# unknown endpoint makes it check its paths at once); laptop's p2pvpnd hears of the change
# from the kernel (netlink), re-runs NAT discovery and finds the symmetric NAT, registers from
# its new public address, and the TCP stream inside the tunnel survives: 30 MiB arrive intact. Afterwards the pair pings both ways and is direct again (home sits
# behind a full cone). The laptop's uplink is shaped to 40 Mbit/s before the move so the
# transfer is still running when it happens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

# Moves HOST's only link from its router's LAN to ROUTER's (LAN index N): the old interface
# is deleted, the new one gets 192.168.N.10 and a default route, as a Wi-Fi switch would.
move() {  # HOST ROUTER N
  local host=$1 router=$2 n=$3
  ip -n "$(lab_ns "$host")" link del eth0
  lab_link "$host" eth0 "$router" lan0
  ip -n "$(lab_ns "$host")" addr add "192.168.$n.10/24" dev eth0
  ip -n "$(lab_ns "$host")" route add default via "192.168.$n.1"
}

home_sees_laptop_at() {  # ADDRESS
  p2p_path_is home laptop direct && [[ "$(p2p_peer home laptop endpoint)" == "$1":* ]]
}

public_address_is() {  # NAME ADDRESS
  [[ "$(p2p_status "$1" | jq -r .node.public_endpoint)" == "$2":* ]]
}

main() {
  local t0 transfer status=0 mobile_wan=203.0.113.23
  p2p_lab 203.0.113.11
  lab_host home full 1
  lab_host laptop port-restricted 2
  lab_nat_router r-mobile symmetric "$mobile_wan" 3
  p2p_node home home 10.77.0.2
  p2p_node laptop laptop 10.77.0.3
  wait_for 30 "laptop behind a port-restricted cone" p2p_nat_is laptop "port-restricted cone" ||
    fail "laptop did not find its café NAT"
  p2p_wait_ping laptop 10.77.0.2 20 || fail "laptop cannot ping home"
  p2p_wait_path laptop home direct 30 || fail "laptop -> home never went direct"
  lab_exec laptop tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 100ms

  p2p_transfer laptop home 10.77.0.2 5001 30 120 &
  transfer=$!
  sleep 2
  kill -0 "$transfer" 2>/dev/null || fail "the transfer ended before the move"
  t0=$(now_ms)
  move laptop r-mobile 3
  lab_log "laptop moved to the symmetric NAT (path now $(p2p_peer laptop home path))"
  wait_for 15 "home reaches laptop directly at $mobile_wan" home_sees_laptop_at "$mobile_wan" ||
    fail "home still reaches laptop $(p2p_peer home laptop path) at" \
      "$(p2p_peer home laptop endpoint) 15 s after the move"
  lab_report "home on a direct path to laptop's new address $(ms_to_s $(($(now_ms) - t0))) s" \
    "after the move"
  wait_for 15 "laptop finds it is behind a symmetric NAT" p2p_nat_is laptop symmetric ||
    fail "laptop still says '$(p2p_status laptop | jq -r .node.nat.type)' 15 s after the move"
  lab_report "new NAT type known $(ms_to_s $(($(now_ms) - t0))) s after the move"
  wait_for 30 "the coordinator sees laptop at $mobile_wan" public_address_is laptop "$mobile_wan" ||
    fail "laptop's public endpoint is still $(p2p_status laptop | jq -r .node.public_endpoint)"
  wait "$transfer" || status=$?
  [ "$status" -eq 0 ] || fail "the transfer did not survive the move"
  lab_report "30 MiB intact across the move (done $(ms_to_s $(($(now_ms) - t0))) s after it)"

  p2p_ping laptop 10.77.0.2 3 || fail "laptop cannot ping home after the move"
  p2p_ping home 10.77.0.3 3 || fail "home cannot ping laptop after the move"
  p2p_wait_path laptop home direct 60 || fail "laptop -> home not direct again within 60 s"
  p2p_wait_path home laptop direct 10 || fail "home -> laptop not direct again"
  lab_report "direct again $(ms_to_s $(($(now_ms) - t0))) s after the move," \
    "endpoint $(p2p_peer home laptop endpoint)"
}

main "$@"
