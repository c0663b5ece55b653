#!/usr/bin/env bash
# e2e-timeout: 300
# The coordinator link's TCP carrier: nodes on networks whose routers drop all UDP (nftables)
# register over the coordinator's TCP main port (coordinator.yaml tcp.main, mesh.yaml
# coordinators: [{ endpoint, tcp }]) and reach their peers through the relay over it.
#   (a) a node behind a UDP-blocking port-restricted NAT and a normal public node;
#   (b) two nodes behind symmetric NATs that both drop all UDP (TCP relay on both sides).
# Each case: status says coordinator.transport "tcp" and relay_reason "UDP blocked", 50 MiB
# cross the tunnel intact (SHA-256 at both ends). Reports the time from the blocked node's
# start to its first answered ping through the tunnel, and the transfer time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

MB=50

transport() {  # NAME
  p2p_status "$1" 2>/dev/null | jq -r '.node.coordinator.transport // empty' 2>/dev/null || true
}

registered() {  # NAME
  [ "$(p2p_status "$1" 2>/dev/null | jq -r .node.coordinator.state)" = registered ]
}

on_tcp() {  # NAME
  [ "$(transport "$1")" = tcp ] && registered "$1"
}

# Starts NAME (configured), pings PEER_VIP from it until answered; reports the time.
start_and_reach() {  # CASE NAME PEER_VIP
  local t0 t
  t0=$(now_ms)
  p2p_start "$2"
  wait_for 40 "$2 registered over TCP" on_tcp "$2" ||
    fail "$2 is not registered over TCP: $(p2p_status "$2" | jq -c .node.coordinator)"
  wait_for 30 "$2 reaches $3" lab_exec "$2" ping -q -n -c 1 -W 1 "$3" ||
    fail "$2 gets no answer from $3 through the tunnel"
  t=$(($(now_ms) - t0))
  lab_report "$1: time from start to the first working path (TCP relay): $(ms_to_s "$t") s"
}

transfer() {  # CASE FROM TO TO_VIP PORT
  local t0
  t0=$(now_ms)
  p2p_transfer "$2" "$3" "$4" "$5" "$MB" 120 || fail "$1: $MB MiB did not arrive intact"
  lab_report "$1: $MB MiB over the TCP relay, intact, in $(ms_to_s $(($(now_ms) - t0))) s"
}

expect_relay_reason() {  # NAME PEER
  local reason
  wait_for 20 "$1 -> $2 relayed, settled" p2p_relay_settled "$1" "$2" ||
    fail "$1 -> $2: path $(p2p_peer "$1" "$2" path) ($(p2p_peer "$1" "$2" relay_reason))"
  reason=$(p2p_peer "$1" "$2" relay_reason)
  [ "$reason" = "UDP blocked" ] || fail "$1 -> $2: relay_reason '$reason', not 'UDP blocked'"
}

p2p_lab "" "tcp: { main: 203.0.113.10:443 }"
P2P_COORD_TCP=443
wait_for 10 "coordinator tcp 443" sh -c \
  "ip netns exec '$(lab_ns coord)' ss -Hntl | awk '{print \$4}' | grep -qx 203.0.113.10:443" ||
  fail "the coordinator does not listen on TCP 443"

# (a) a UDP-blocked node behind a port-restricted NAT, and a normal public node.
lab_host normal none 1
lab_host blocked port-restricted 2
p2p_block_udp r-blocked
p2p_node normal normal 10.77.0.2
wait_for 20 "normal registered" registered normal || fail "normal did not register"
[ "$(transport normal)" = udp ] || fail "normal is on $(transport normal), not udp"
p2p_configure blocked blocked 10.77.0.3
start_and_reach a blocked 10.77.0.2
expect_relay_reason blocked normal
lab_exec blocked "$P2P_CTL" status --socket "$LAB_DIR/nodes/blocked/ctl.sock" | head -n 3 >&2
transfer a blocked normal 10.77.0.2 5001
transfer a normal blocked 10.77.0.3 5002

# (b) two symmetric NATs, both dropping all UDP: relayed over TCP on both sides.
lab_host sa symmetric 3
lab_host sb symmetric 4
p2p_block_udp r-sa
p2p_block_udp r-sb
p2p_configure sa sa 10.77.0.4
p2p_configure sb sb 10.77.0.5
p2p_start sb
start_and_reach b sa 10.77.0.5
wait_for 40 "sb registered over TCP" on_tcp sb || fail "sb is not registered over TCP"
expect_relay_reason sa sb
expect_relay_reason sb sa
transfer b sa sb 10.77.0.5 5003

lab_log "PASS"
