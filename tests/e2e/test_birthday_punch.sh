#!/usr/bin/env bash
# e2e-timeout: 150
# The birthday punch (issue 13): a behind a port-restricted cone (r-a), b behind a symmetric NAT
# whose ports are random (r-b: nftables masquerade random,fully-random). Both find their NAT
# (b: random allocation), a pings b through the relay, and the pair runs one bounded birthday
# punch: b opens up to 256 extra sockets, a probes up to 1024 random ports of r-b. Either
# outcome is legal (the chance of a hit is ~98 % in theory): a direct path both ways, or the
# relay once the attempt has ended. What must hold in both: punch_method "birthday" on both
# sides, the probes within the caps (<= 1024 per side and attempt), every extra socket but an
# adopted one closed once the attempt ends, and traffic flowing both ways.
# Prints "report: birthday outcome=direct|relay direct_s=S probes_a=N probes_b=N
# sockets_peak_b=N" for contrib/birthday-rate.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

MAX_PROBES=1024
SOCKETS=256
# No router speaks a mapping protocol here; and the mapper's own sockets would blur the count.
P2P_NODE_YAML="port_mapping: { enabled: false }"

bd_json() {  # NAME JQ
  p2p_status "$1" 2>/dev/null | jq -r "$2" 2>/dev/null || true
}

bd_random_symmetric() {  # NAME
  [ "$(bd_json "$1" .node.nat.type)" = symmetric ] &&
    [ "$(bd_json "$1" .node.nat.allocation)" = random ]
}

# UDP sockets b's p2pvpnd holds (its own, and the extra ones of a birthday punch).
bd_sockets() {  # NAME
  lab_exec "$(p2p_host "$1")" ss -Hnuap 2>/dev/null | grep -c "pid=$(p2p_pid "$1")," || true
}

bd_attempt_over() {  # NAME PEER: its attempt ended (a hit, or every probe sent and waited for)
  [ "$(bd_json "$1" .node.birthday_punch.attempts)" -ge 1 ] 2>/dev/null &&
    [ "$(bd_sockets "$1")" -le 2 ] &&
    { p2p_path_is "$1" "$2" direct || p2p_relay_settled "$1" "$2"; }
}

main() {
  p2p_lab 203.0.113.11
  lab_host a port-restricted 1
  lab_host b symmetric 2
  p2p_node a a 10.77.0.11
  p2p_node b b 10.77.0.12
  wait_for 30 "a behind a port-restricted cone" p2p_nat_is a "port-restricted cone" ||
    fail "a: NAT $(bd_json a .node.nat.type)"
  wait_for 30 "b behind a symmetric NAT with random ports" bd_random_symmetric b ||
    fail "b: NAT $(bd_json b .node.nat.type), $(bd_json b .node.nat.allocation)"

  local t0 direct_s=- outcome peak=0 n
  t0=$(now_ms)
  lab_exec a ping -n -q -c 1 -w 20 "$(p2p_vip b)" >/dev/null || fail "no reply a -> b in 20 s"
  # The attempt takes ~7 s (1024 probes at 200/s, then 2 s for answers).
  local deadline=$(($(now_ms) + 30000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    n=$(bd_sockets b)
    [ "$n" -gt "$peak" ] && peak=$n
    if [ "$direct_s" = - ] && p2p_path_is a b direct; then
      direct_s=$(ms_to_s $(($(now_ms) - t0)))
    fi
    if bd_attempt_over a b && bd_attempt_over b a; then
      [ "$direct_s" = - ] && p2p_path_is a b direct && direct_s=$(ms_to_s $(($(now_ms) - t0)))
      break
    fi
    sleep 0.2
  done
  wait_for 20 "b's attempt over" bd_attempt_over b a || fail "b: the attempt did not end"
  wait_for 20 "a's attempt over" bd_attempt_over a b || fail "a: the attempt did not end"
  if p2p_path_is a b direct; then
    outcome=direct
    wait_for 10 "b -> a direct" p2p_path_is b a direct || fail "b does not see a as direct"
  else
    outcome=relay
  fi

  local m
  for m in a b; do
    [ "$(p2p_peer "$m" "$([ $m = a ] && echo b || echo a)" punch_method)" = birthday ] ||
      fail "$m: punch_method $(p2p_peer "$m" "$([ $m = a ] && echo b || echo a)" punch_method)"
  done
  local attempts_a attempts_b probes_a probes_b
  attempts_a=$(bd_json a .node.birthday_punch.attempts)
  attempts_b=$(bd_json b .node.birthday_punch.attempts)
  probes_a=$(bd_json a .node.birthday_punch.probes)
  probes_b=$(bd_json b .node.birthday_punch.probes)
  [ "$probes_a" -ge 1 ] && [ "$probes_b" -ge 1 ] || fail "no probes: a=$probes_a b=$probes_b"
  [ "$probes_a" -le $((attempts_a * MAX_PROBES)) ] ||
    fail "a sent $probes_a probes in $attempts_a attempts (cap $MAX_PROBES each)"
  [ "$probes_b" -le $((attempts_b * MAX_PROBES)) ] ||
    fail "b sent $probes_b probes in $attempts_b attempts (cap $MAX_PROBES each)"
  [ "$peak" -le $((SOCKETS + 2)) ] || fail "b held $peak UDP sockets (cap $SOCKETS extra)"
  n=$(bd_sockets b)
  [ "$n" -le 2 ] || fail "b still holds $n UDP sockets after the attempt"
  [ "$(bd_sockets a)" -le 1 ] || fail "a opened extra sockets: $(bd_sockets a)"

  # Traffic flows on whichever path it is.
  p2p_ping a "$(p2p_vip b)" 5 || fail "a cannot ping b ($outcome)"
  p2p_ping b "$(p2p_vip a)" 5 || fail "b cannot ping a ($outcome)"
  lab_report "birthday outcome=$outcome direct_s=$direct_s probes_a=$probes_a" \
    "probes_b=$probes_b sockets_peak_b=$peak attempts_a=$attempts_a attempts_b=$attempts_b"
  lab_log "PASS: birthday punch $outcome"
}

main "$@"
