#!/usr/bin/env bash
# The lab's NAT routers behave as their names say, as coturn's RFC 5780 client classifies them
# against coturn's own STUN server (two addresses): one host behind each type, plus a public one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

main() {
  local types=(none full restricted port-restricted symmetric) i type want got log seen failed=0 jobs_running=()
  lab_init
  lab_internet
  lab_public_host stun 203.0.113.10 203.0.113.11
  lab_spawn stun "$LAB_DIR/logs/turnserver.log" turnserver -n --stun-only --no-cli \
    -L 203.0.113.10 -L 203.0.113.11 --log-file stdout --simple-log
  wait_for 10 "turnserver on 203.0.113.11:3479" \
    sh -c "ip netns exec '$(lab_ns stun)' ss -Hnlu | grep -q '203.0.113.11:3479'" ||
    fail "turnserver did not start"

  # One host per type; the discoveries run at once (each waits out its own timeouts).
  for i in "${!types[@]}"; do lab_host "h$i" "${types[$i]}" "$((i + 1))"; done
  for i in "${!types[@]}"; do
    nat_discover "h$i" 203.0.113.10 3478 "$LAB_DIR/logs/natdiscovery-${types[$i]}.log" \
      >"$LAB_DIR/verdict-$i" &
    jobs_running+=("$!")
  done
  wait "${jobs_running[@]}"

  for i in "${!types[@]}"; do
    type=${types[$i]}
    log="$LAB_DIR/logs/natdiscovery-$type.log"
    want=$(nat_expected_verdict "$type")
    got=$(cat "$LAB_DIR/verdict-$i")
    if [ "$got" != "$want" ]; then
      lab_log "$type: expected '$want', turnutils_natdiscovery says '$got'"
      failed=1
      continue
    fi
    # Behind no NAT the server must see the host's own address; behind a NAT, the router's.
    seen=$(lab_addr "h$i")
    [ "$type" != none ] && seen=$(lab_addr "r-h$i")
    case $(nat_reflexive "$log") in
      "$seen":*) lab_log "$type: mapping|filtering = $want, public address $seen" ;;
      *) lab_log "$type: reflexive address $(nat_reflexive "$log"), expected $seen"; failed=1 ;;
    esac
  done
  ((failed == 0)) || fail "a NAT router does not behave as its type"
}

main "$@"
