#!/usr/bin/env bash
# Our coordinator as an RFC 5780 STUN server (listen + alternate_address), judged by a client
# nobody here wrote: coturn's turnutils_natdiscovery, from a host behind each lab NAT type,
# must classify the NAT exactly as it does against coturn's own server (test_nat_types).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

main() {
  local types=(none full restricted port-restricted symmetric) i type want got seen log
  local failed=0 jobs_running=()
  lab_init
  p2p_init "$E2E_BUILD"
  lab_internet
  lab_public_host coord 203.0.113.10 203.0.113.11
  p2p_coordinator coord 203.0.113.11
  wait_for 10 "the alternate address 203.0.113.11:7401" \
    p2p_listening coord 203.0.113.11:7401 || fail "the coordinator does not serve 203.0.113.11:7401"

  for i in "${!types[@]}"; do lab_host "h$i" "${types[$i]}" "$((i + 1))"; done
  for i in "${!types[@]}"; do
    nat_discover "h$i" 203.0.113.10 7400 "$LAB_DIR/logs/natdiscovery-${types[$i]}.log" \
      >"$LAB_DIR/verdict-$i" &
    jobs_running+=("$!")
  done
  wait "${jobs_running[@]}"

  for i in "${!types[@]}"; do
    type=${types[$i]}
    log="$LAB_DIR/logs/natdiscovery-$type.log"
    want=$(nat_expected_verdict "$type")
    got=$(cat "$LAB_DIR/verdict-$i")
    seen=$(lab_addr "h$i")
    [ "$type" != none ] && seen=$(lab_addr "r-h$i")
    if [ "$got" != "$want" ]; then
      lab_log "$type: expected '$want', turnutils_natdiscovery says '$got'"
      failed=1
    elif [[ "$(nat_reflexive "$log")" != "$seen":* ]]; then
      lab_log "$type: reflexive address $(nat_reflexive "$log"), expected $seen"
      failed=1
    else
      lab_report "$(printf '%-16s mapping/filtering: %s' "$type" "$want")"
    fi
  done
  ((failed == 0)) || fail "turnutils_natdiscovery misjudges a NAT against our coordinator"
}

main "$@"
