#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs a live p2pvpn demo in
# network namespaces on this machine (as root; nothing outside the namespaces is touched):
#
#   act 1  a coordinator on the "internet" (203.0.113.10, and .11 for NAT discovery);
#          alice behind a port-restricted cone NAT, bob behind a restricted cone NAT.
#          alice pings bob by virtual IP: the two NATs are punched and the path is direct;
#          both nodes' `p2pvpnctl status`.
#   act 2  the home PC behind a symmetric NAT whose router speaks UPnP IGD (Debian's
#          miniupnpd), the laptop behind a hotel's symmetric NAT: two symmetric NATs, yet the
#          home router maps a port for the PC, and the laptop reaches it directly over it.
#   act 3  erin's laptop in a hotel whose network drops all UDP (behind a port-restricted cone
#          NAT): UDP gets no answer, so it registers over the coordinator's TCP port 443, and
#          reaches alice over a TCP connection punched through both NATs by simultaneous open
#          (the coordinator's assist port, 7402, tells each side the other's public endpoint).
#   act 4  carol and dave behind symmetric NATs without any port mapping: no direct path can
#          exist; the status says the path is the coordinator's relay, and why.
#
#   contrib/demo.sh [--keep] [--no-build] [--build DIR] [--help]
# --keep leaves the lab up until Ctrl-C and prints how to get a shell in a node. Everything is
# torn down at the end, on Ctrl-C and on failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$top/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$top/tests/e2e/p2p.sh"
# shellcheck source=tests/e2e/port_mapping.sh
source "$top/tests/e2e/port_mapping.sh"

keep=0
do_build=1
build_dir=$top/build
P2P_LOG_LEVEL=info
LAB_PREFIX=p2pdemo-
# Every node knows the coordinator's TCP assist port (act 3) and, as in the port mapping tests,
# does no birthday punch (act 4's pair must stay relayed).
P2P_NODE_YAML="punch: { birthday: { enabled: false }, tcp_assist: 7402 }"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1; shift ;;
    --no-build) do_build=0; shift ;;
    --build) build_dir=$(realpath -m "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'demo.sh: unknown option %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Until NAME's view of PEER stops changing: a direct path, or the relay with a final reason.
settled() {  # NAME PEER
  p2p_path_is "$1" "$2" direct || p2p_relay_settled "$1" "$2"
}

# Act 3's: a relayed peer's reason is "UDP blocked" at once; the TCP punch comes after.
settled_tcp() {  # NAME PEER
  p2p_direct_now "$1" "$2" tcp
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
  if [ "$path" = direct ] && [ "$(p2p_peer "$1" "$2" transport)" = tcp ]; then
    echo "$1 -> $2: direct over TCP, peer to peer at $(p2p_peer "$1" "$2" endpoint):" \
      "one TCP connection punched through both NATs by simultaneous open"
  elif [ "$path" = direct ]; then
    echo "$1 -> $2: direct, peer to peer at $(p2p_peer "$1" "$2" endpoint)" \
      "(candidate kind $(p2p_peer "$1" "$2" path_kind), punch $(p2p_peer "$1" "$2" punch_method))"
  else
    echo "$1 -> $2: through the coordinator's relay (reason: ${reason:-unknown});" \
      "the relay forwards only ciphertext: the tunnel stays end-to-end encrypted"
  fi
}

# A node behind a NAT of TYPE at LAN/index N, virtual IP 10.77.0.(N+1); waits (bounded) for
# its NAT discovery so the status shows the type.
add_node() {  # NAME TYPE N
  local name=$1 type=$2 n=$3
  lab_host "$name" "$type" "$n"
  p2p_node "$name" "$name" "10.77.0.$((n + 1))"
  printf '%-12s 10.77.0.%-3s LAN 192.168.%s.10, %s NAT 203.0.113.%s\n' "$name" "$((n + 1))" \
    "$n" "$type" "$((20 + n))"
  wait_for 20 "$name's NAT discovery" p2p_nat_is "$name" "$(p2p_nat_name "$type")" || true
}

# A pings B, both statuses once the path has settled (SETTLED A B), and what the path is and
# why.
show_pair() {  # A B SETTLED WHY...
  local a=$1 b=$2 settled=$3 t0 ms; shift 3
  t0=$(now_ms)
  ping_peer "$a" "$b"
  wait_for 40 "$a's path to $b to settle" "$settled" "$a" "$b" || true
  ms=$(($(now_ms) - t0))
  show_status "$a" "$b"
  say "the path"
  explain "$a" "$b"
  echo "($*)"
  echo "$(ms_to_s "$ms") s from the first ping to this path"
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

  say "act 1: a coordinator, alice behind a port-restricted cone NAT, bob behind a restricted cone NAT"
  lab_internet
  lab_public_host coord 203.0.113.10 203.0.113.11
  ip -n "$(lab_ns coord)" route add "$PM_NET.0/24" dev eth0
  p2p_coordinator coord 203.0.113.11 "tcp: { main: 203.0.113.10:443, assist: 203.0.113.10:7402 }"
  echo "coordinator  203.0.113.10:7400 (RFC 5780 second address 203.0.113.11), TCP main port" \
    "443 and assist port 7402"
  add_node alice port-restricted 1
  add_node bob restricted 2
  show_pair alice bob settled "both NATs keep one public port per socket: each side sends to the" \
    "other's public endpoint, which opens its own NAT for the answer, and the path is direct"

  say "act 2: the home PC behind a symmetric NAT whose router maps ports (UPnP IGD), the laptop behind a hotel's symmetric NAT"
  pm_router r-home symmetric 5
  pm_miniupnpd r-home 5 upnp
  lab_private_host home r-home 192.168.5.10
  p2p_node home home 10.77.0.6
  echo "home         10.77.0.6   LAN 192.168.5.10, symmetric NAT $PM_NET.25, miniupnpd (UPnP IGD)"
  add_node laptop symmetric 7
  ip -n "$(lab_ns r-laptop)" route add "$PM_NET.0/24" dev eth0
  wait_for 30 "home's port mapping" pm_has_mapping home upnp || true
  echo "home's router mapped $(pm_mapping home external) to it (lease $(pm_mapping home lease_seconds | cut -d. -f1) s)"
  show_pair laptop home settled "two symmetric NATs could not be punched, but the home router forwards" \
    "the mapped port to the PC, so the laptop's packets get in (candidate kind \"mapped\")"

  say "act 3: erin's laptop in a hotel whose network drops all UDP (port-restricted cone NAT)"
  local t0
  lab_host erin port-restricted 6
  p2p_block_udp r-erin
  t0=$(now_ms)
  P2P_COORD_TCP=443 p2p_node erin erin 10.77.0.7
  echo "erin         10.77.0.7   LAN 192.168.6.10, port-restricted cone NAT 203.0.113.26," \
    "no UDP gets out; mesh.yaml: coordinators: [ { endpoint: $P2P_COORD_ENDPOINT, tcp: 443 } ]"
  wait_for 40 "erin registered over TCP" p2p_coordinator_over erin tcp ||
    fail "erin did not register over the coordinator's TCP port"
  echo "erin's UDP handshakes got no answer: registered over TCP 443 after" \
    "$(ms_to_s $(($(now_ms) - t0))) s"
  show_pair erin alice settled_tcp "UDP is blocked, but both NATs keep one public port per TCP" \
    "socket: each side connects from its punch port to the other's public endpoint at the same" \
    "time, which opens its own NAT for the other's SYN; without it, the TCP relay"
  ping_peer erin alice

  say "act 4: carol and dave behind symmetric NATs, neither with a port mapping"
  add_node carol symmetric 3
  add_node dave symmetric 4
  show_pair carol dave settled "two symmetric NATs give every destination a new random port, so" \
    "neither side can learn an endpoint the other's NAT would let in"

  if ((keep)); then
    say "the lab stays up until Ctrl-C"
    echo "a shell in a node:   ip netns exec ${LAB_PREFIX}alice bash   (also bob, home, laptop, erin, carol, dave, coord)"
    echo "status on a node:    ip netns exec ${LAB_PREFIX}alice $P2P_CTL status --socket $LAB_DIR/nodes/alice/ctl.sock"
    echo "logs:                $LAB_DIR/logs/"
    trap 'keep=0' INT  # Ctrl-C: the normal way out of --keep
    while ((keep)); do sleep 1 || true; done
  fi
  say "tearing down"
}

main
