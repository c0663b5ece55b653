#!/usr/bin/env bash
# The lab's NAT routers behave as their names say, as coturn's RFC 5780 client classifies them
# against coturn's own STUN server (two addresses): one host behind each type, plus a public one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"

main() {
  lab_init
  lab_internet
  lab_public_host stun 203.0.113.10 203.0.113.11
  lab_spawn stun "$LAB_DIR/logs/turnserver.log" turnserver -n --stun-only --no-cli \
    -L 203.0.113.10 -L 203.0.113.11 --log-file stdout --simple-log
  wait_for 10 "turnserver on 203.0.113.11:3479" \
    sh -c "ip netns exec '$(lab_ns stun)' ss -Hnlu | grep -q '203.0.113.11:3479'" ||
    fail "turnserver did not start"
  nat_check_types 203.0.113.10 3478 || fail "a NAT router does not behave as its type"
}

main "$@"
