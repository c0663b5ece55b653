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
  p2p_lab 203.0.113.11
  wait_for 10 "the alternate address 203.0.113.11:7401" \
    p2p_listening coord 203.0.113.11:7401 || fail "the coordinator does not serve 203.0.113.11:7401"
  nat_check_types 203.0.113.10 7400 ||
    fail "turnutils_natdiscovery misjudges a NAT against our coordinator"
}

main "$@"
