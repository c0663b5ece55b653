#!/usr/bin/env bash
# e2e-timeout: 180
# Our daemon's NAT discovery judged against a STUN server nobody here wrote: coturn's
# turnserver as a plain RFC 5780 server (two addresses). One node behind each lab NAT type,
# its mesh.yaml pointing discovery at turnserver (discovery.server): each node must find its own
# type (`p2pvpnctl status`, and the daemon's log names turnserver as the server asked). Then
# `p2pvpnctl netcheck --server` against our coordinator (RFC 5780 too, not the node's discovery
# server) must give the same mapping, filtering and public address, and leave the node's NAT
# state as turnserver's run set it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

TYPES=(none full restricted port-restricted symmetric)
STUN1=203.0.113.12
STUN2=203.0.113.13
COORD=203.0.113.10:7400

# The behaviours RFC 5780 discovery must find behind each lab type, "MAPPING FILTERING" in
# p2pvpnd's spelling: coturn's verdict ("Address and Port Dependent|...") in lower case with
# hyphens.
expected_behaviour() {  # TYPE
  nat_expected_verdict "$1" | tr 'A-Z |' 'a-z- '
}

netcheck() {  # NAME SERVER
  lab_exec "$(p2p_host "$1")" timeout 40 "$P2P_CTL" netcheck --json --server "$2" \
    --socket "$LAB_DIR/nodes/$1/ctl.sock"
}

main() {
  local i type name want seen report failed=0 mapping filtering got before logged
  p2p_lab 203.0.113.11
  lab_public_host stun "$STUN1" "$STUN2"
  lab_spawn stun "$LAB_DIR/logs/turnserver.log" turnserver -n --stun-only --no-cli \
    -L "$STUN1" -L "$STUN2" --log-file stdout --simple-log
  wait_for 10 "turnserver on $STUN2:3479" \
    sh -c "ip netns exec '$(lab_ns stun)' ss -Hnlu | grep -q '$STUN2:3479'" ||
    fail "turnserver did not start"

  for i in "${!TYPES[@]}"; do
    lab_host "h$i" "${TYPES[$i]}" "$((i + 1))"
    p2p_node "n$i" "h$i" "10.77.0.$((10 + i))" "discovery: { server: \"$STUN1:3478\" }"
  done

  for i in "${!TYPES[@]}"; do
    type=${TYPES[$i]} name=n$i
    want=$(p2p_nat_name "$type")
    seen=$(lab_addr "h$i")
    [ "$type" != none ] && seen=$(lab_addr "r-h$i")
    if ! wait_for 30 "$name to find it is behind '$want'" p2p_nat_is "$name" "$want"; then
      lab_log "$type: status says '$(p2p_status "$name" | jq -r .node.nat.type)', not '$want'"
      failed=1
      continue
    fi
    logged=$want
    [[ $want == *" "* ]] && logged="\"$want\""  # log values with spaces are quoted
    if ! grep -q "nat type=$logged server=$STUN1:3478 public=$seen:" "$LAB_DIR/logs/$name.log"; then
      lab_log "$type: no log line: $STUN1:3478 found '$want', public address $seen"
      failed=1
      continue
    fi
    before=$(p2p_status "$name" | jq -c .node.nat)

    read -r mapping filtering <<<"$(expected_behaviour "$type")"
    if ! report=$(netcheck "$name" "$COORD"); then
      lab_log "$type: netcheck --server $COORD failed: $report"
      failed=1
      continue
    fi
    got=$(jq -r '[.server, .type, .mapping, .filtering, .server_rfc5780] | join(" ")' <<<"$report")
    if [ "$got" != "$COORD $want $mapping $filtering true" ]; then
      lab_log "$type: netcheck against the coordinator says '$got'"
      lab_log "$(jq -r .description <<<"$report")"
      failed=1
    elif [[ "$(jq -r .public_endpoint <<<"$report")" != "$seen":* ]]; then
      lab_log "$type: public endpoint $(jq -r .public_endpoint <<<"$report"), expected $seen"
      failed=1
    elif [ "$(p2p_status "$name" | jq -c .node.nat)" != "$before" ]; then
      lab_log "$type: netcheck --server changed the node's NAT state"
      failed=1
    else
      lab_report "$(printf '%-16s %-22s mapping %s, filtering %s' "$type" "$want" "$mapping" \
        "$filtering")"
    fi
  done
  ((failed == 0)) || fail "p2pvpnd misjudges a NAT against coturn's turnserver"
}

main "$@"
