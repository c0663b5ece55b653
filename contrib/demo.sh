#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs a live p2pvpn demo in
# network namespaces on this machine (as root; nothing outside the namespaces is touched):
#
#   act 1  a coordinator on the "internet" (203.0.113.10, and .11 for NAT discovery);
#          alice behind a port-restricted cone NAT, bob behind a symmetric NAT.
#          alice pings bob by virtual IP; both nodes' `p2pvpnctl status`.
#   act 2  carol behind another symmetric NAT: bob and carol are both symmetric, so no direct
#          path can exist; the status says the path is the coordinator's relay, and why.
#
#   contrib/demo.sh [--keep] [--no-build] [--build DIR]
# --keep leaves the lab up until Ctrl-C and prints how to get a shell in a node. Everything is
# torn down at the end, on Ctrl-C and on failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$top/tests/e2e/p2p.sh"

keep=0
do_build=1
build_dir=$top/build
P2P_LOG_LEVEL=info
LAB_PREFIX=p2pdemo-

while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1; shift ;;
    --no-build) do_build=0; shift ;;
    --build) build_dir=$(realpath -m "$2"); shift 2 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Until NAME's view of PEER stops changing: a direct path, or the relay with a final reason.
settled() {  # NAME PEER
  p2p_path_is "$1" "$2" direct || p2p_relay_settled "$1" "$2"
}

show_status() {  # NAME...
  local name
  for name in "$@"; do
    say "p2pvpnctl status   (on $name)"
    lab_exec "$(p2p_host "$name")" "$P2P_CTL" status --socket "$LAB_DIR/nodes/$name/ctl.sock"
  done
}

explain() {  # NAME PEER
  local path reason
  path=$(p2p_peer "$1" "$2" path)
  reason=$(p2p_peer "$1" "$2" relay_reason)
  if [ "$path" = direct ]; then
    echo "$1 -> $2: direct, peer to peer at $(p2p_peer "$1" "$2" endpoint)"
  else
    echo "$1 -> $2: through the coordinator's relay (reason: ${reason:-unknown});" \
      "the relay forwards only ciphertext: the tunnel stays end-to-end encrypted"
  fi
}

ping_peer() {  # NAME PEER
  say "$1 pings $2 by virtual IP: ping $(p2p_vip "$2")"
  p2p_wait_ping "$(p2p_host "$1")" "$(p2p_vip "$2")" 20 || fail "$1 cannot reach $2"
  lab_exec "$(p2p_host "$1")" ping -n -c 4 -i 0.5 "$(p2p_vip "$2")"
}

main() {
  [ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it builds network namespaces)" >&2; exit 2; }
  if ((do_build)); then
    say "installing dependencies and building into $build_dir"
    p2p_build "$top" "$build_dir"
  fi
  if ip netns list | grep -q "^$LAB_PREFIX"; then
    echo "demo.sh: namespaces $LAB_PREFIX* exist: is another demo running? (ip netns list)" >&2
    exit 1
  fi
  lab_init
  p2p_init "$build_dir"

  say "act 1: a coordinator, alice behind a port-restricted cone NAT, bob behind a symmetric NAT"
  lab_internet
  lab_public_host coord 203.0.113.10 203.0.113.11
  p2p_coordinator coord 203.0.113.11
  lab_host alice port-restricted 1
  lab_host bob symmetric 2
  p2p_node alice alice 10.77.0.2
  p2p_node bob bob 10.77.0.3
  echo "coordinator  203.0.113.10:7400 (RFC 5780 second address 203.0.113.11)"
  echo "alice        10.77.0.2   LAN 192.168.1.10, port-restricted NAT 203.0.113.21"
  echo "bob          10.77.0.3   LAN 192.168.2.10, symmetric NAT 203.0.113.22"
  wait_for 20 "NAT discovery" p2p_nat_is bob symmetric || true
  ping_peer alice bob
  wait_for 30 "alice's path to bob to settle" settled alice bob || true
  show_status alice bob
  say "the path"
  explain alice bob
  echo "(bob's symmetric NAT gives each destination a new random port, and alice's NAT lets in" \
    "only the exact address and port she sent to: unless punching finds a way, the relay carries it)"

  say "act 2: carol behind another symmetric NAT; bob and carol are both symmetric"
  lab_host carol symmetric 3
  p2p_node carol carol 10.77.0.4
  echo "carol        10.77.0.4   LAN 192.168.3.10, symmetric NAT 203.0.113.23"
  wait_for 20 "NAT discovery" p2p_nat_is carol symmetric || true
  ping_peer bob carol
  wait_for 30 "bob's path to carol to settle" settled bob carol || true
  show_status bob carol
  say "the path"
  explain bob carol
  echo "(two symmetric NATs give every destination a new random port, so neither side can" \
    "learn an endpoint the other's NAT would let in)"

  if ((keep)); then
    say "the lab stays up until Ctrl-C"
    echo "a shell in a node:   ip netns exec ${LAB_PREFIX}alice bash   (also bob, carol, coord)"
    echo "status on a node:    ip netns exec ${LAB_PREFIX}alice $P2P_CTL status --socket $LAB_DIR/nodes/alice/ctl.sock"
    echo "logs:                $LAB_DIR/logs/"
    trap 'keep=0' INT  # Ctrl-C: the normal way out of --keep
    while ((keep)); do sleep 1 || true; done
  fi
  say "tearing down"
}

main
