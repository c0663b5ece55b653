#!/usr/bin/env bash
# e2e-timeout: 600
# Every pair of {none, full, restricted, port-restricted, symmetric} NATs: each node finds its
# own NAT type (discovery against the coordinator's RFC 5780 second address), the pair pings
# both ways and moves 2 MiB intact, and the path is direct except for symmetric x symmetric and
# symmetric x port-restricted, which stay relayed with a reason. Reports, per pair, the time
# from the first ping to the first reply and to the direct path (as `p2pvpnctl status` first
# shows it, polled every 0.1 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

TYPES=(none full restricted port-restricted symmetric)
# Issue 4's rule, without the birthday punch (test_birthday_punch.sh runs that pair with it).
P2P_NODE_YAML="punch: { birthday: { enabled: false } }"
PAIRS=()          # "T1 T2" for each pair k: node a<k> behind T1, b<k> behind T2
FAILURES=()

pair_failed() {  # K MESSAGE
  lab_log "pair $1 (${PAIRS[$1]}): $2"
  FAILURES+=("${PAIRS[$1]}: $2")
}

# Builds every pair's hosts and starts their nodes; a<k> at LAN/index 2k+1, b<k> at 2k+2.
setup() {
  local i j k=0 t1 t2 n
  for ((i = 0; i < ${#TYPES[@]}; i++)); do
    for ((j = i; j < ${#TYPES[@]}; j++)); do PAIRS+=("${TYPES[$i]} ${TYPES[$j]}"); done
  done
  for k in "${!PAIRS[@]}"; do
    read -r t1 t2 <<<"${PAIRS[$k]}"
    n=$((2 * k + 1))
    lab_host "a$k" "$t1" "$n"
    lab_host "b$k" "$t2" "$((n + 1))"
    p2p_node "a$k" "a$k" "10.77.0.$((10 + n))"
    p2p_node "b$k" "b$k" "10.77.0.$((11 + n))"
  done
}

check_nat_types() {
  local k t1 t2 node type
  for k in "${!PAIRS[@]}"; do
    read -r t1 t2 <<<"${PAIRS[$k]}"
    for node in "a$k:$t1" "b$k:$t2"; do
      type=$(p2p_nat_name "${node#*:}")
      wait_for 30 "${node%%:*} to find it is behind '$type'" p2p_nat_is "${node%%:*}" "$type" ||
        pair_failed "$k" "${node%%:*} says its NAT is '$(p2p_status "${node%%:*}" |
          jq -r .node.nat.type)', not '$type'"
    done
  done
}

run_pair() {  # K
  local k=$1 t1 t2 a b va vb want t0 first direct="-" reason=""
  read -r t1 t2 <<<"${PAIRS[$k]}"
  a=a$k b=b$k va=$(p2p_vip "a$k") vb=$(p2p_vip "b$k")
  want=$(p2p_expected_path "$t1" "$t2")
  t0=$(now_ms)
  if ! lab_exec "$a" ping -n -q -c 1 -i 0.05 -w 20 "$vb" >/dev/null; then
    pair_failed "$k" "no reply within 20 s"
    return 0
  fi
  first=$(($(now_ms) - t0))
  if [ "$want" = direct ]; then
    if wait_for 30 "$a -> $b direct" p2p_path_is "$a" "$b" direct; then
      direct=$(($(now_ms) - t0))
      wait_for 10 "$b -> $a direct" p2p_path_is "$b" "$a" direct ||
        pair_failed "$k" "$b does not see $a on a direct path"
      direct=$(ms_to_s "$direct")
    else
      pair_failed "$k" "not direct after 30 s: path $(p2p_peer "$a" "$b" path)" \
        "($(p2p_peer "$a" "$b" relay_reason))"
    fi
  else
    if ! wait_for 30 "$a -> $b relayed, settled" p2p_relay_settled "$a" "$b" ||
      ! wait_for 10 "$b -> $a relayed, settled" p2p_relay_settled "$b" "$a"; then
      pair_failed "$k" "not settled on the relay: $(p2p_peer "$a" "$b" path)" \
        "($(p2p_peer "$a" "$b" relay_reason))"
    fi
    reason=$(p2p_peer "$a" "$b" relay_reason)
  fi
  p2p_ping "$b" "$va" 3 || pair_failed "$k" "$b cannot ping $a"
  p2p_transfer "$a" "$b" "$vb" "$((6000 + k))" 2 30 || pair_failed "$k" "2 MiB transfer failed"
  lab_report "$(printf '%-34s %-7s first reply %5s s   direct after %5s s   %s' \
    "${t1} x ${t2}" "$(p2p_peer "$a" "$b" path)" "$(ms_to_s "$first")" "$direct" "$reason")"
}

main() {
  p2p_lab 203.0.113.11
  setup
  check_nat_types
  local k
  for k in "${!PAIRS[@]}"; do run_pair "$k"; done
  if ((${#FAILURES[@]})); then
    printf '  %s\n' "${FAILURES[@]}" >&2
    fail "${#FAILURES[@]} pair checks failed"
  fi
}

main "$@"
