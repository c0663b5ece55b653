#!/usr/bin/env bash
# The README as written: its admin commands (ca init, issue) run as they stand, every ```yaml
# block is loaded by the program it belongs to (`--check`), and then the coordinator and two
# nodes run from those very blocks, on the README's documentation addresses (203.0.113.10 and
# .11 for the coordinator, in this lab's own namespaces), each with a private /run so the
# README's default socket paths (/run/p2pvpnd.sock, /run/p2pvpn-coordinator.sock) are used
# as written. The README's commands then work: ping by virtual IP, p2pvpnctl status, ping
# NAME, and status on the coordinator's control socket.
# e2e-timeout: 120
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

README=$(cd "$here/../.." && pwd)/README.md
declare -A PID   # program NAME -> pid

# Runs CMD in HOST with a private, empty /run; the pid is the command's own (every step
# execs in place).
spawn_private_run() {  # HOST NAME CMD...
  local host=$1 name=$2; shift 2
  lab_spawn "$host" "$LAB_DIR/logs/$name.log" unshare --mount --propagation private \
    sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh "$@"
  PID[$name]=$LAB_LAST_PID
}

# p2pvpnctl ARGS... in the namespaces (network and mount) of program NAME.
ctl_in() {  # NAME ARGS...
  local pid=${PID[$1]}; shift
  timeout 20 nsenter -t "$pid" -m -n "$P2P_CTL" "$@"
}

extract_yaml() {  # DIR: DIR/block-N.yaml for every ```yaml block, in order
  awk -v dir="$1" '
    /^```yaml[ \t]*$/ { n++; inside = 1; file = sprintf("%s/block-%d.yaml", dir, n); next }
    /^```/ { inside = 0; next }
    inside { print > file }' "$README"
}

main() {
  lab_init
  p2p_init "$E2E_BUILD"
  local work=$LAB_DIR/readme block kind mesh="" coordinator="" line
  mkdir -p "$work"

  # The admin's commands, as the README writes them (in $work, comments cut off).
  local commands=0
  while IFS= read -r line; do
    line=${line%%#*}
    # shellcheck disable=SC2086  # the README's words, split as a shell would
    (cd "$work" && "$P2P_CTL" ${line#p2pvpnctl }) >>"$LAB_DIR/logs/admin.log" 2>&1 ||
      fail "README command failed: $line"
    commands=$((commands + 1))
  done < <(grep -E '^p2pvpnctl (ca init|issue) ' "$README")
  ((commands >= 4)) || fail "found only $commands admin commands in the README"
  lab_log "README admin commands: $commands ran"
  # The laptop's line again, into another directory: the name is taken; and another name on
  # the laptop's address: the address is taken. Nothing is written.
  line=$(grep -E '^p2pvpnctl issue .*--name laptop' "$README" | sed 's/ *#.*//; s/--out [^ ]*/--out again/')
  local again
  for again in "$line" "${line/--name laptop/--name tablet}"; do
    # shellcheck disable=SC2086
    if (cd "$work" && "$P2P_CTL" ${again#p2pvpnctl } >"$LAB_DIR/logs/dup.log" 2>&1); then
      fail "p2pvpnctl issued twice: $again"
    fi
    grep -q "already issued" "$LAB_DIR/logs/dup.log" || fail "$again: $(cat "$LAB_DIR/logs/dup.log")"
  done
  [ ! -e "$work/again" ] || fail "a refused issue wrote $(ls "$work/again")"

  # Every yaml block, classified by what it holds.
  local fragments=()
  extract_yaml "$work"
  for block in "$work"/block-*.yaml; do
    if grep -q '^coordinators:' "$block"; then
      kind=mesh mesh=$block
    elif grep -q '^listen:' "$block" && grep -q '^key:' "$block"; then
      kind=coordinator coordinator=$block
    else
      kind=fragment fragments+=("$block")  # some keys of one of the two, checked below
    fi
    lab_log "README ${block##*/}: $kind"
  done
  if [ -z "$mesh" ] || [ -z "$coordinator" ]; then
    fail "the README lacks a mesh.yaml or coordinator.yaml"
  fi

  # Files next to each config, as the README says; the blocks verbatim (laptop: its names).
  mkdir -p "$work/vps" "$work/home-pc" "$work/laptop"
  cp "$work/coord/coord.key" "$work/coord/coord.crt" "$work/ca/ca.crt" "$work/vps/"
  cp "$coordinator" "$work/vps/coordinator.yaml"
  local n
  for n in home-pc laptop; do
    cp "$work/nodes/$n.key" "$work/nodes/$n.crt" "$work/ca/ca.crt" "$work/$n/"
    sed "s/home-pc/$n/g" "$mesh" >"$work/$n/mesh.yaml"
  done
  "$P2P_COORDINATOR" -c "$work/vps/coordinator.yaml" --check ||
    fail "p2pvpn-coordinator --check refuses the README's coordinator.yaml"
  "$P2P_DAEMON" -c "$work/home-pc/mesh.yaml" --check ||
    fail "p2pvpnd --check refuses the README's mesh.yaml"
  # A block of some keys only: added to the full file of the program it belongs to.
  local f
  for f in "${fragments[@]}"; do
    cat "$work/vps/coordinator.yaml" "$f" >"$work/vps/fragment.yaml"
    cat "$work/home-pc/mesh.yaml" "$f" >"$work/home-pc/fragment.yaml"
    if "$P2P_COORDINATOR" -c "$work/vps/fragment.yaml" --check >/dev/null 2>&1; then
      lab_log "README ${f##*/}: coordinator.yaml keys, accepted"
    elif "$P2P_DAEMON" -c "$work/home-pc/fragment.yaml" --check >/dev/null 2>&1; then
      lab_log "README ${f##*/}: mesh.yaml keys, accepted"
    else
      "$P2P_COORDINATOR" -c "$work/vps/fragment.yaml" --check || true
      fail "README yaml block ${f##*/} is accepted by neither program"
    fi
  done

  # The VPS of the README (203.0.113.10 and .11) and two public nodes.
  lab_internet
  lab_public_host vps 203.0.113.10 203.0.113.11
  lab_public_host home-pc 203.0.113.101
  lab_public_host laptop 203.0.113.102
  spawn_private_run vps coordinator "$P2P_COORDINATOR" -c "$work/vps/coordinator.yaml"
  local ep
  for ep in 203.0.113.10:7400 203.0.113.10:7401 203.0.113.11:7400 203.0.113.11:7401; do
    wait_for 10 "the coordinator on $ep" p2p_listening vps "$ep" ||
      fail "the README's coordinator does not serve $ep"
  done
  for n in home-pc laptop; do
    spawn_private_run "$n" "$n" "$P2P_DAEMON" -c "$work/$n/mesh.yaml"
    wait_for 10 "$n's TUN p2p0 up" p2p_tun_up "$n" || fail "$n: p2pvpnd did not bring up p2p0"
  done

  # The README's commands on the node.
  p2p_wait_ping home-pc 10.77.0.3 20 || fail "README: ping 10.77.0.3 from home-pc fails"
  ctl_in home-pc status >"$LAB_DIR/logs/status.txt" || fail "README: p2pvpnctl status fails"
  grep -q laptop "$LAB_DIR/logs/status.txt" || fail "home-pc's status lacks laptop"
  ctl_in home-pc ping -n 2 -i 0.2 laptop >>"$LAB_DIR/logs/status.txt" ||
    fail "README: p2pvpnctl ping laptop fails"
  wait_for 15 "home-pc's NAT type: open internet" \
    sh -c "timeout 5 nsenter -t ${PID[home-pc]} -m -n '$P2P_CTL' status --json |
           jq -e '.node.nat.type == \"open internet\"'" ||
    fail "home-pc's NAT type is not 'open internet' against the README's coordinator"
  # No IPv6 chatter from the kernel into the tunnel (it showed as "dropped: 4 no_route").
  local no_route
  no_route=$(ctl_in home-pc status --json | jq .drops.no_route)
  [ "$no_route" = 0 ] || fail "home-pc dropped $no_route packets: $(ctl_in home-pc status --json | jq -c .drops)"

  # The coordinator's control socket, at the README's default path.
  ctl_in coordinator status --socket /run/p2pvpn-coordinator.sock >"$LAB_DIR/logs/coord-status.txt" ||
    fail "p2pvpnctl status on the coordinator's socket fails"
  local want
  for want in '^coordinator coord, listening on udp 203.0.113.10:7400' '^home-pc ' '^laptop '; do
    grep -q "$want" "$LAB_DIR/logs/coord-status.txt" ||
      fail "coordinator status view lacks $want: $(cat "$LAB_DIR/logs/coord-status.txt")"
  done
  # The logger is named as the README's log vocabulary says.
  grep -q 'coordinator\]' "$LAB_DIR/logs/coordinator.log" ||
    fail "no [coordinator] logger in the coordinator's log"
  lab_log "README: every block loads and runs; ping, status, ping NAME, coordinator status ok"
}

main "$@"
