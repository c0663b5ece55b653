#!/usr/bin/env bash
# Two coordinators (c1 203.0.113.10, c2 203.0.113.20) that share nothing; every node lists both
# and registers with both. alice and bob are forced onto the relay; carol and dave are direct.
#   1. alice -> bob, 4 MiB through the relay (rate-limited to 16 Mbit/s so it lasts seconds):
#      the coordinator alice relays through is killed mid-transfer; the relay moves to the
#      other one and the transfer completes intact (SHA-256). The longest gap of a 10/s ping
#      over the relay is the failover time.
#   2. a new node, erin, starts while that coordinator is down: it registers with the other
#      and reaches alice.
#   3. the killed coordinator returns: every node registers with it again.
#   4. carol -> dave, 4 MiB direct (carol's uplink shaped to 16 Mbit/s): BOTH coordinators
#      are killed mid-transfer; it completes intact, and the tunnel still carries pings with
#      no coordinator at all; one returns and the nodes register with it again.
# e2e-timeout: 180
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

declare -A COORD_PID  # c1/c2 -> pid
NODES=0

coord_start() {  # NAME (its host has the same name)
  local name=$1 dir=$LAB_DIR/$1 addr
  addr=$(lab_addr "$name")
  if [ ! -f "$dir/coordinator.yaml" ]; then
    mkdir -p "$dir"
    # Each coordinator its own virtual IP (the CA issues an address once).
    p2p_issue "$name" "10.77.0.$([ "$name" = c1 ] && echo 1 || echo 254)" coordinator
    cp "$LAB_DIR/pki/$name.key" "$LAB_DIR/pki/$name.crt" "$LAB_DIR/pki/ca/ca.crt" "$dir/"
    cat >"$dir/coordinator.yaml" <<EOF
key: $name.key
cert: $name.crt
ca: ca.crt
listen: $addr:7400
control_socket: $dir/ctl.sock
log: { level: $P2P_LOG_LEVEL }
relay: { enabled: true, rate_limit: 16mbit }
EOF
  fi
  echo "---- start $(date -u +%T.%N)" >>"$LAB_DIR/logs/$name.log"  # UTC, as the log lines
  lab_spawn "$name" "$LAB_DIR/logs/$name.log" "$P2P_COORDINATOR" -c "$dir/coordinator.yaml"
  COORD_PID[$name]=$LAB_LAST_PID
  wait_for 10 "$name listening" p2p_listening "$name" "$addr:7400" || fail "$name did not start"
}

coord_kill() {  # NAME
  kill -KILL "${COORD_PID[$1]}"
  wait "${COORD_PID[$1]}" 2>/dev/null || true
}

node_start() {  # NAME VIP [YAML]
  local name=$1
  NODES=$((NODES + 1))
  lab_public_host "$name" "203.0.113.$((100 + NODES))"
  p2p_configure "$name" "$name" "$2" "${3:-}"
  sed -i 's/^coordinators: .*/coordinators: [ "203.0.113.10:7400", "203.0.113.20:7400" ]/' \
    "$LAB_DIR/nodes/$name/mesh.yaml"
  p2p_start "$name"
}

registered_with() {  # NAME COUNT: registered with exactly COUNT coordinators
  [ "$(p2p_status "$1" | jq '[.node.coordinators[] | select(.state == "registered")] | length')" \
    = "$2" ]
}

relay_of() {  # NAME: the coordinator endpoint it relays through
  p2p_status "$1" | jq -r '.node.coordinators[] | select(.relay) | .endpoint'
}

# The longest gap, in ms, between consecutive answers in a `ping -D` output.
longest_gap_ms() {  # FILE
  awk -F'[][]' '/bytes from/ { t = $2 * 1000; if (last) { g = t - last; if (g > max) max = g }
    last = t } END { printf "%d\n", max }' "$1"
}

main() {
  lab_init
  p2p_init "$E2E_BUILD"
  lab_internet
  lab_public_host c1 203.0.113.10
  lab_public_host c2 203.0.113.20
  coord_start c1
  coord_start c2
  node_start alice 10.77.0.2 "peers: [{ name: bob, force: relay }]"
  node_start bob 10.77.0.3 "peers: [{ name: alice, force: relay }]"
  node_start carol 10.77.0.4
  node_start dave 10.77.0.5
  local n
  for n in alice bob carol dave; do
    wait_for 20 "$n registered with both" registered_with "$n" 2 || fail "$n: not registered with both"
  done
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob"
  p2p_wait_path alice bob relay 10 || fail "alice -> bob is not relayed"
  p2p_wait_ping carol 10.77.0.5 20 || fail "carol cannot ping dave"
  p2p_wait_path carol dave direct 20 || fail "carol -> dave is not direct"
  p2p_status alice | jq -c .node.coordinators >&2

  # 1. The relay's coordinator dies mid-transfer.
  local relay victim other pid ping_log gap start
  relay=$(relay_of alice)
  case $relay in
    203.0.113.10:7400) victim=c1 other=203.0.113.20:7400 ;;
    203.0.113.20:7400) victim=c2 other=203.0.113.10:7400 ;;
    *) fail "alice has no relay coordinator ($relay)" ;;
  esac
  ping_log=$LAB_DIR/ping-relay.log
  lab_exec alice ping -D -n -i 0.1 -w 14 10.77.0.3 >"$ping_log" 2>&1 &
  local ping_pid=$!
  p2p_transfer alice bob 10.77.0.3 5001 4 60 >"$LAB_DIR/transfer-relay.out" 2>&1 &
  pid=$!
  sleep 1.2
  lab_log "killing $victim, alice's relay ($relay), mid-transfer"
  coord_kill "$victim"
  wait "$pid" || { cat "$LAB_DIR/transfer-relay.out" >&2; fail "relayed transfer broken"; }
  cat "$LAB_DIR/transfer-relay.out" >&2
  wait "$ping_pid" || true
  gap=$(longest_gap_ms "$ping_log")
  [ "$(relay_of alice)" = "$other" ] || fail "alice does not relay through $other"
  lab_report "relay failover: longest gap in relayed pings $(ms_to_s "$gap") s after killing $victim"
  ((gap <= 8000)) || fail "relayed traffic stopped for $gap ms"

  # 2. A new peer connects through the surviving coordinator.
  node_start erin 10.77.0.6
  wait_for 20 "erin registered" registered_with erin 1 || fail "erin did not register"
  p2p_wait_ping erin 10.77.0.2 20 || fail "erin cannot reach alice"

  # 3. The killed coordinator returns: everyone registers with it again.
  start=$(now_ms)
  coord_start "$victim"
  for n in alice bob carol dave erin; do
    wait_for 20 "$n registered with both again" registered_with "$n" 2 ||
      fail "$n did not register with $victim again"
  done
  lab_report "all nodes registered again $(ms_to_s $(($(now_ms) - start))) s after $victim returned"

  # 4. A direct transfer while every coordinator dies.
  local dev
  dev=$(lab_exec carol ip -o route get 203.0.113.105 | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  lab_exec carol tc qdisc add dev "$dev" root tbf rate 16mbit burst 32kb latency 400ms
  p2p_transfer carol dave 10.77.0.5 5002 4 60 >"$LAB_DIR/transfer-direct.out" 2>&1 &
  pid=$!
  sleep 1.2
  lab_log "killing both coordinators mid-transfer"
  coord_kill c1
  coord_kill c2
  wait "$pid" || { cat "$LAB_DIR/transfer-direct.out" >&2; fail "direct transfer broken"; }
  cat "$LAB_DIR/transfer-direct.out" >&2
  sleep 8  # every coordinator lost, by the nodes' Pings
  registered_with carol 0 || fail "carol still says registered with no coordinator up"
  p2p_ping carol 10.77.0.5 3 || fail "carol -> dave stopped without coordinators"
  p2p_path_is carol dave direct || fail "carol -> dave no longer direct"
  start=$(now_ms)
  coord_start c1
  wait_for 20 "carol registered again" registered_with carol 1 || fail "carol did not re-register"
  lab_report "re-registered $(ms_to_s $(($(now_ms) - start))) s after a coordinator returned"
}

main "$@"
