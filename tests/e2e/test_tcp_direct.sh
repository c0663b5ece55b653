#!/usr/bin/env bash
# Direct TCP paths (issue 10) between two port-restricted cones (nftables masquerade, which
# drops an unsolicited inbound SYN) whose routers drop ALL UDP: the blocked nodes register
# over the coordinator's TCP main port, the pair punches a TCP path by simultaneous open
# through the coordinator's assist port and carries 50 MiB over it intact (SHA-256 both
# ends); then UDP is unblocked mid-transfer and the pair moves to UDP without breaking the
# transfer.
#   case 1: UDP dropped in alice's router only (a UDP-blocked node and a normal one);
#   case 2: in both routers (carol and dave).
# Prints the time from the first ping to the TCP path for each case, and the 50 MiB time.
# e2e-timeout: 400
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

NODE_YAML="punch: { timeout: 3s, tcp_assist: 7402 }"

unblock_udp() {  # ROUTER: undoes p2p_block_udp
  lab_exec "$1" nft delete table ip p2p_udpblock
}

expect_coord_transport() {  # NAME TRANSPORT
  p2p_coordinator_over "$1" "$2" ||
    fail "$1 is not registered over $2: $(p2p_status "$1" | jq -c .node.coordinator)"
}

registered_both() {  # NAME NAME
  local n
  for n in "$@"; do
    [ "$(p2p_status "$n" 2>/dev/null | jq -r .node.coordinator.state 2>/dev/null)" = registered ] ||
      return 1
  done
}


# Brings up NAME1 and NAME2 (behind routers that already drop UDP), waits for the TCP path
# both ways and reports the time from the first ping to it.
tcp_case() {  # CASE A A_VIP B B_VIP
  local label=$1 a=$2 avip=$3 b=$4 bvip=$5 t0 ms
  p2p_node "$a" "$a" "$avip" "$NODE_YAML"
  p2p_node "$b" "$b" "$bvip" "$NODE_YAML"
  # A node whose network drops all UDP registers over TCP after two unanswered UDP handshakes.
  wait_for 40 "$a and $b registered" registered_both "$a" "$b" ||
    fail "$label: not registered: $(p2p_status "$a" | jq -c .node.coordinator)" \
      "$(p2p_status "$b" | jq -c .node.coordinator)"
  p2p_wait_ping "$a" "$bvip" 20 || fail "$label: $a cannot ping $b (relay)"
  t0=$(now_ms)
  lab_exec "$a" ping -q -n -i 0.2 -c 100 "$bvip" >/dev/null 2>&1 &
  wait_for 60 "$a -> $b direct tcp" p2p_on_direct "$a" "$b" tcp ||
    fail "$label: $a -> $b never got a TCP path ($(p2p_peer "$a" "$b" relay_reason))"
  ms=$(($(now_ms) - t0))
  wait_for 10 "$b -> $a direct tcp" p2p_on_direct "$b" "$a" tcp ||
    fail "$label: $b -> $a not on the TCP path"
  lab_report "$label: direct tcp path $(ms_to_s "$ms") s after the first ping" \
    "(remote $(p2p_peer "$a" "$b" endpoint))"
}

# 50 MiB from A to B over their TCP path, intact, still on it afterwards; reports the time.
tcp_transfer() {  # CASE A B B_VIP PORT
  local t0 ms
  t0=$(now_ms)
  p2p_transfer "$2" "$3" "$4" "$5" 50 120 || fail "$1: 50 MiB over the TCP path: corrupt or short"
  ms=$(($(now_ms) - t0))
  p2p_on_direct "$2" "$3" tcp || fail "$1: $2 left the TCP path during the transfer"
  lab_report "$1: 50 MiB intact over the TCP path in $(ms_to_s "$ms") s"
}

main() {
  local t0 ms transfer status=0
  p2p_lab 203.0.113.11 "tcp: { main: 203.0.113.10:7401, assist: 203.0.113.10:7402 }"
  P2P_COORD_TCP=7401
  wait_for 10 "assist port" sh -c \
    "ip netns exec '$(lab_ns coord)' ss -Hntl | awk '{print \$4}' | grep -qx 203.0.113.10:7402" ||
    fail "the coordinator does not listen on its assist port"

  # Case 1: one side drops UDP.
  lab_host alice port-restricted 1
  lab_host bob port-restricted 2
  p2p_block_udp r-alice
  tcp_case "one side blocks UDP" alice 10.77.0.2 bob 10.77.0.3
  expect_coord_transport alice tcp
  expect_coord_transport bob udp
  tcp_transfer "one side blocks UDP" alice bob 10.77.0.3 5001

  # Case 2: both sides drop UDP; then UDP comes back mid-transfer.
  lab_host carol port-restricted 3
  lab_host dave port-restricted 4
  p2p_block_udp r-carol
  p2p_block_udp r-dave
  tcp_case "both sides block UDP" carol 10.77.0.4 dave 10.77.0.5
  expect_coord_transport carol tcp
  expect_coord_transport dave tcp
  tcp_transfer "both sides block UDP" carol dave 10.77.0.5 5002

  # Slow the sender so that the transfer (50 MiB at 8 Mbit/s: 52 s) outlasts the move: the
  # node probes its coordinator over UDP every 30 s, and UDP there again re-punches at once.
  lab_exec carol tc qdisc add dev eth0 root tbf rate 8mbit burst 64kb latency 100ms
  p2p_transfer carol dave 10.77.0.5 5003 50 150 &
  transfer=$!
  sleep 2
  kill -0 "$transfer" 2>/dev/null || fail "the transfer ended before UDP came back"
  unblock_udp r-carol
  unblock_udp r-dave
  t0=$(now_ms)
  wait_for 90 "carol -> dave direct udp" p2p_on_direct carol dave udp ||
    fail "carol never moved to UDP ($(p2p_peer carol dave path) $(p2p_peer carol dave transport))"
  ms=$(($(now_ms) - t0))
  kill -0 "$transfer" 2>/dev/null || fail "the transfer ended before the move: nothing proven"
  lab_report "UDP unblocked: moved to direct udp $(ms_to_s "$ms") s later, mid-transfer"
  wait "$transfer" || status=$?
  [ "$status" -eq 0 ] || fail "the transfer broke when the pair moved to UDP"
  lab_exec carol tc qdisc del dev eth0 root
  lab_report "50 MiB intact across the move from TCP to UDP"
}

main "$@"
