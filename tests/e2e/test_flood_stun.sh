#!/usr/bin/env bash
# e2e-timeout: 90
# The coordinator's STUN server (RFC 5780: listen + alternate_address) as a reflector. Binding
# requests, plain and with RESPONSE-PORT and/or CHANGE-REQUEST (change IP and port), 3,000 a
# second for 4 s, twice:
#   A. from the attacker's own address: what comes back to it is counted;
#   B. spoofed from a victim's address, RESPONSE-PORT naming a port of the victim's: every
#      UDP byte that reaches the victim (any port, from either coordinator address) is counted.
# Issue 9's targets: a per-source rate limit, so
#   - A: reply bytes at most request bytes (no amplification), yet some answers (STUN works);
#   - B: the victim receives at most the spoofed request bytes and at most VICTIM_LIMIT_BYTES;
#   - afterwards a host that took no part still gets its Binding request answered, and the
#     coordinator keeps running.
# Prints one summary line (report:) with the figures, also when a target is missed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

RATE=3000
SECONDS_OF_FLOOD=4
VICTIM_PORT=9999
# A handful of answers a second for the few seconds a flood from one source lasts (~120 B
# each): anything a per-source limit lets through, nothing a reflector is worth using for.
VICTIM_LIMIT_BYTES=$((64 * 1024))
ATTACKER_IP=203.0.113.50
VICTIM_IP=203.0.113.60
KINDS=stun,stun-rp,stun-cr,stun-rpcr
BYSTANDER_PREFIX=192.168.200.0/24

flood() {  # LOG EXTRA_ARGS...
  local log=$1; shift
  lab_spawn attacker "$log" "$(lab_flood_tool)" send --to "$P2P_COORD_ENDPOINT" --kind "$KINDS" \
    --response-port "$VICTIM_PORT" --rate "$RATE" --count $((RATE * SECONDS_OF_FLOOD)) \
    --seconds "$SECONDS_OF_FLOOD" --linger 1 "$@"
  local pid=$LAB_LAST_PID deadline=$((SECONDS + SECONDS_OF_FLOOD + 5))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  wait "$pid" 2>/dev/null || true
  [ -n "$(flood_field "$log" sent)" ] || fail "the attacker printed no figures: $(tail -n3 "$log")"
}

main() {
  P2P_LOG_LEVEL=info
  p2p_lab 203.0.113.11
  wait_for 10 "the alternate address 203.0.113.11:7401" \
    p2p_listening coord 203.0.113.11:7401 || fail "the coordinator does not serve 203.0.113.11:7401"
  local tool coord_pid misses=()
  tool=$(lab_flood_tool)
  coord_pid=$(p2p_coordinator_pid)
  lab_attacker attacker "$ATTACKER_IP" "$LAB_SPOOF_PREFIX"
  lab_public_host victim "$VICTIM_IP"
  # The bystander sends from another /24 than the attacker's and the victim's (a limit may
  # be per prefix too): an address of its own prefix, routed to it.
  lab_attacker bystander 203.0.113.70 "$BYSTANDER_PREFIX"
  lab_route_via coord "$BYSTANDER_PREFIX" 203.0.113.70

  local victim_log=$LAB_DIR/logs/victim.log
  lab_spawn victim "$victim_log" "$tool" listen --seconds 30
  local victim_pid=$LAB_LAST_PID
  lab_flood_ready victim "$victim_log" listening || fail "the victim's listener did not start"

  local own_log=$LAB_DIR/logs/flood-own.log spoof_log=$LAB_DIR/logs/flood-spoofed.log
  flood "$own_log"
  flood "$spoof_log" --spoof "$VICTIM_IP/32"
  lab_stop "$victim_pid" TERM 5 || true
  local victim_bytes victim_packets
  read -r victim_bytes victim_packets < <(flood_fields "$victim_log" bytes packets)
  [ "$victim_bytes" != "?" ] || fail "the victim's listener printed no figures"

  # A bystander's Binding request, after the flood: the limit is per source.
  local by_log=$LAB_DIR/logs/bystander.log by_replies
  lab_exec bystander timeout 10 "$tool" send --to "$P2P_COORD_ENDPOINT" --kind stun --rate 5 \
    --count 3 --seconds 2 --linger 1 --spoof 192.168.200.70/32 >"$by_log" 2>&1 || true
  by_replies=$(flood_field "$by_log" replies)
  local alive=1
  kill -0 "$coord_pid" 2>/dev/null || alive=0

  local a_sent a_bytes a_secs a_replies a_reply_bytes a_amp b_sent b_bytes b_amp
  read -r a_sent a_bytes a_secs a_replies a_reply_bytes a_amp < <(flood_fields "$own_log" sent \
    sent_bytes seconds replies reply_bytes amplification)
  read -r b_sent b_bytes < <(flood_fields "$spoof_log" sent sent_bytes)
  b_amp=$(awk -v v="$victim_bytes" -v s="$b_bytes" 'BEGIN {printf "%.3f", s ? v / s : 0}')

  lab_report "$(printf 'flood_stun: %s requests (%s) in %s s from one source: replies %s pkts %s (x%s); %s spoofed as the victim (%s): victim got %s pkts %s (x%s); bystander answered %s/3; coordinator %s' \
    "$a_sent" "$(lab_mb "$a_bytes")" "$a_secs" \
    "$a_replies" "$(lab_mb "$a_reply_bytes")" "$a_amp" "$b_sent" "$(lab_mb "$b_bytes")" \
    "$victim_packets" "$(lab_mb "$victim_bytes")" "$b_amp" "${by_replies:-0}" \
    "$( ((alive)) && echo alive || echo DEAD)")"

  ((a_sent >= RATE * SECONDS_OF_FLOOD * 9 / 10 && b_sent >= RATE * SECONDS_OF_FLOOD * 9 / 10)) ||
    misses+=("the attacker sent only $a_sent and $b_sent of $((RATE * SECONDS_OF_FLOOD)) requests")
  ((alive)) || misses+=("the coordinator died under the flood")
  ((a_replies > 0)) || misses+=("no Binding request of the attacker's was answered at all")
  ((a_reply_bytes <= a_bytes)) ||
    misses+=("amplification: $a_reply_bytes bytes of answers for $a_bytes bytes of requests")
  ((victim_bytes <= b_bytes)) ||
    misses+=("reflection amplifies: the victim got $victim_bytes bytes for $b_bytes spoofed")
  ((victim_bytes <= VICTIM_LIMIT_BYTES)) ||
    misses+=("the victim got $victim_bytes bytes (limit $VICTIM_LIMIT_BYTES)")
  ((${by_replies:-0} > 0)) || misses+=("a bystander's Binding request went unanswered after the flood")
  ((${#misses[@]} == 0)) || fail "$(printf '%s; ' "${misses[@]}")"
}

main "$@"
