# shellcheck shell=bash
# p2pvpn in the namespace lab (sources lib.sh): certificates, a coordinator, nodes, status.
#
#   p2p_lab [ALT_IP [YAML]]           the usual start: lab_init, p2p_init $E2E_BUILD, the
#                                     internet, host coord (203.0.113.10 [+ALT_IP]) running
#                                     the coordinator (p2p_coordinator's ALT_IP and YAML)
#   p2p_public_pair                   p2p_lab plus public nodes alice 10.77.0.2, bob 10.77.0.3
#   p2p_init BUILD_DIR                binaries from BUILD_DIR; a CA in $LAB_DIR/pki
#   p2p_issue NAME VIP [ROLE [CA]]    $LAB_DIR/pki/NAME.{key,crt} signed by CA (default "ca")
#   p2p_fingerprint CERT              its fingerprint, as coordinator.yaml's revoked: wants it
#   p2p_coordinator HOST [ALT_IP [YAML]]
#                                     coordinator on HOST's address, port 7400 (RFC 5780 with
#                                     ALT_IP, port 7401); YAML: extra lines for the config
#   p2p_configure NAME HOST VIP [YAML [CA]]
#                                     a node's certificate and mesh.yaml, not started
#   p2p_node NAME HOST VIP [YAML]     the same, then p2pvpnd started in HOST and waited for
#                                     (TUN p2p0 up)
#   p2p_start NAME / p2p_kill NAME [SIGNAL]
#   p2p_status NAME                   `p2pvpnctl status --json` of NAME's daemon
#   p2p_peer NAME PEER FIELD          one field of PEER's entry in NAME's status ("" if absent)
#   p2p_wait_path NAME PEER PATH SECS until NAME's status shows PEER on PATH (direct|relay)
#   p2p_ping HOST VIP [COUNT]         ping through the tunnel, quietly
#   p2p_block_udp ROUTER              the router drops every UDP packet it would forward
#   p2p_on_direct NAME PEER TRANSPORT NAME's status shows PEER direct over TRANSPORT (udp|tcp)
#   p2p_direct_now NAME PEER TRANSPORT
#                                     one ping to PEER (traffic to punch for), then p2p_on_direct
#   p2p_coordinator_over NAME TRANSPORT
#                                     NAME is registered with the coordinator over TRANSPORT
#
#   p2p_build TOP BUILD_DIR           install the dependencies, configure and build
#
# Node NAME lives in $LAB_DIR/nodes/NAME (mesh.yaml, its key and certificate, ctl.sock); its
# log is $LAB_DIR/logs/NAME.log. The coordinator's is $LAB_DIR/logs/coordinator.log.

P2P_LOG_LEVEL=${P2P_LOG_LEVEL:-debug}   # of every daemon the lab starts
P2P_CTL=""
P2P_DAEMON=""
P2P_COORDINATOR=""
P2P_COORD_ENDPOINT=""
P2P_COORD_PID=""
P2P_COORD_TCP=""       # set: every mesh.yaml gives the coordinator this TCP main port
declare -A P2P_HOST   # node NAME -> the lab host it runs in
declare -A P2P_PID    # node NAME -> pid of its p2pvpnd
declare -A P2P_VIP    # node NAME -> its virtual IP

p2p_init() {  # BUILD_DIR
  local build=$1
  P2P_CTL=$build/daemon/p2pvpnctl
  P2P_DAEMON=$build/daemon/p2pvpnd
  P2P_COORDINATOR=$build/coordinator/p2pvpn-coordinator
  local b
  for b in "$P2P_CTL" "$P2P_DAEMON" "$P2P_COORDINATOR"; do
    [ -x "$b" ] || fail "missing binary $b (build first)"
  done
  command -v jq >/dev/null || fail "jq is missing (contrib/install-deps.sh installs it)"
  mkdir -p "$LAB_DIR/pki" "$LAB_DIR/nodes"
  p2p_ca ca
}

p2p_lab() {  # [ALT_IP [YAML]]
  local alt=${1:-} extra=${2:-}
  lab_init
  p2p_init "$E2E_BUILD"
  lab_internet
  # shellcheck disable=SC2086  # no second address when ALT_IP is empty
  lab_public_host coord 203.0.113.10 $alt
  p2p_coordinator coord "$alt" "$extra"
}

# p2p_lab, plus alice (203.0.113.101, vip 10.77.0.2) and bob (203.0.113.102, vip 10.77.0.3):
# public hosts, no NAT, nodes running.
p2p_public_pair() {
  p2p_lab ""
  lab_public_host alice 203.0.113.101
  lab_public_host bob 203.0.113.102
  p2p_node alice alice 10.77.0.2
  p2p_node bob bob 10.77.0.3
}

p2p_ca() {  # NAME: a CA in $LAB_DIR/pki/NAME
  "$P2P_CTL" ca init --dir "$LAB_DIR/pki/$1" --name "lab-$1" >/dev/null
}

p2p_issue() {  # NAME VIP [ROLE [CA]]
  local name=$1 vip=$2 role=${3:-node} ca=${4:-ca}
  "$P2P_CTL" issue --ca "$LAB_DIR/pki/$ca" --name "$name" --ip "$vip/24" --role "$role" \
    --out "$LAB_DIR/pki" --force >/dev/null
}

p2p_fingerprint() {  # CERT
  "$P2P_CTL" cert show "$1" | sed -n 's/^ *fingerprint[^0-9a-f]*\([0-9a-f]\{64\}\).*/\1/Ip' | head -n1
}

p2p_coordinator() {  # HOST [ALT_IP [YAML]]
  local host=$1 alt=${2:-} extra=${3:-} dir=$LAB_DIR/coordinator addr
  addr=$(lab_addr "$host")
  mkdir -p "$dir"
  p2p_issue coordinator 10.77.0.1 coordinator
  cp "$LAB_DIR/pki/coordinator.key" "$LAB_DIR/pki/coordinator.crt" "$LAB_DIR/pki/ca/ca.crt" "$dir/"
  {
    echo "key: coordinator.key"
    echo "cert: coordinator.crt"
    echo "ca: ca.crt"
    echo "listen: $addr:7400"
    [ -n "$alt" ] && echo "alternate_address: $alt"
    echo "control_socket: $dir/ctl.sock"
    echo "log: { level: $P2P_LOG_LEVEL }"
    # The lab measures the relay; the per-node default (20 Mbit/s) would be the bottleneck.
    echo "relay: { enabled: true, rate_limit: 10gbit }"
    [ -n "$extra" ] && printf '%s\n' "$extra"
  } >"$dir/coordinator.yaml"
  P2P_COORD_ENDPOINT=$addr:7400
  lab_spawn "$host" "$LAB_DIR/logs/coordinator.log" "$P2P_COORDINATOR" -c "$dir/coordinator.yaml"
  P2P_COORD_PID=$LAB_LAST_PID
  wait_for 10 "coordinator listening on $P2P_COORD_ENDPOINT" \
    p2p_listening "$host" "$P2P_COORD_ENDPOINT" || fail "the coordinator did not start"
}

p2p_listening() {  # HOST ADDR:PORT  (UDP)
  lab_exec "$1" ss -Hnlu | awk '{print $4}' | grep -qx "$2"
}

# Writes NAME's mesh.yaml (not started); $P2P_PERFORMANCE, when set, is its performance:
# line. YAML: extra lines (e.g. peers:, punch:); with P2P_COORD_TCP set, the coordinator entry
# names that TCP main port. CA signs
# the node's certificate (unless $LAB_DIR/pki/NAME.crt was issued before) and is the CA the
# node trusts (default: the network's, "ca").
p2p_configure() {  # NAME HOST VIP [YAML [CA]]
  local name=$1 host=$2 vip=$3 extra=${4:-} ca=${5:-ca} dir=$LAB_DIR/nodes/$1
  mkdir -p "$dir"
  [ -f "$LAB_DIR/pki/$name.crt" ] || p2p_issue "$name" "$vip" node "$ca"
  cp "$LAB_DIR/pki/$name.key" "$LAB_DIR/pki/$name.crt" "$dir/"
  cp "$LAB_DIR/pki/$ca/ca.crt" "$dir/ca.crt"
  {
    echo "node: { key: $name.key, cert: $name.crt }"
    echo "ca: ca.crt"
    if [ -n "$P2P_COORD_TCP" ]; then
      echo "coordinators: [ { endpoint: \"$P2P_COORD_ENDPOINT\", tcp: $P2P_COORD_TCP } ]"
    else
      echo "coordinators: [ \"$P2P_COORD_ENDPOINT\" ]"
    fi
    echo "tun: { name: p2p0, mtu: 1400 }"
    echo "listen: { port: 0 }"
    echo "control_socket: $dir/ctl.sock"
    echo "log: { level: $P2P_LOG_LEVEL }"
    [ -n "${P2P_PERFORMANCE:-}" ] && echo "performance: $P2P_PERFORMANCE"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    # Lines every node of a test gets (a test's own settings, e.g. no birthday punch).
    [ -n "${P2P_NODE_YAML:-}" ] && printf '%s\n' "$P2P_NODE_YAML"
  } >"$dir/mesh.yaml"
  P2P_HOST[$name]=$host
  P2P_VIP[$name]=$vip
}

# Starts NAME's daemon (appending to its log) and waits until its TUN is up.
p2p_start() {  # NAME
  local name=$1 host=${P2P_HOST[$1]}
  echo "---- start $(date -u +%T.%N)" >>"$LAB_DIR/logs/$name.log"  # UTC, as the log lines
  lab_spawn "$host" "$LAB_DIR/logs/$name.log" "$P2P_DAEMON" -c "$LAB_DIR/nodes/$name/mesh.yaml"
  P2P_PID[$name]=$LAB_LAST_PID
  wait_for 10 "$name's TUN p2p0 up" p2p_tun_up "$host" ||
    fail "$name: p2pvpnd did not bring up p2p0"
}

p2p_node() {  # NAME HOST VIP [YAML]
  p2p_configure "$@"
  p2p_start "$1"
}

p2p_tun_up() {  # HOST
  lab_exec "$1" ip -o link show dev p2p0 2>/dev/null | grep -qE '[<,]UP[,>]'
}

p2p_kill() {  # NAME [SIGNAL]
  lab_stop "${P2P_PID[$1]}" "${2:-TERM}" 10 || fail "$1: p2pvpnd ignored SIG${2:-TERM} for 10 s"
}

p2p_status() {  # NAME
  lab_exec "${P2P_HOST[$1]}" timeout 10 "$P2P_CTL" status --json \
    --socket "$LAB_DIR/nodes/$1/ctl.sock"
}

p2p_peer() {  # NAME PEER FIELD
  p2p_status "$1" 2>/dev/null |
    jq -r --arg p "$2" --arg f "$3" '.peers[] | select(.name == $p) | .[$f] // empty' 2>/dev/null ||
    true
}

p2p_path_is() {  # NAME PEER PATH
  [ "$(p2p_peer "$1" "$2" path)" = "$3" ]
}

p2p_wait_path() {  # NAME PEER PATH SECONDS
  wait_for "$4" "$1 -> $2 path $3" p2p_path_is "$1" "$2" "$3"
}

p2p_ping() {  # HOST VIP [COUNT]
  lab_exec "$1" ping -q -n -c "${3:-3}" -i 0.2 -W 2 "$2" >/dev/null 2>&1
}

# Until a ping from HOST to VIP is answered (the first one may wait for a handshake).
p2p_wait_ping() {  # HOST VIP SECONDS
  wait_for "$3" "ping $1 -> $2" lab_exec "$1" ping -q -n -c 1 -W 1 "$2"
}

# Sends SIZE_MB random megabytes over TCP from host FROM to DST_IP:PORT (a listener in TO);
# succeeds when the received SHA-256 equals the sent one. Bounded by SECONDS.
p2p_transfer() {  # FROM TO DST_IP PORT SIZE_MB SECONDS
  local from=$1 to=$2 ip=$3 port=$4 mb=$5 limit=$6 src dst pid sent got
  src="$LAB_DIR/transfer-$port.src"
  dst="$LAB_DIR/transfer-$port.dst"
  head -c "$((mb * 1024 * 1024))" /dev/urandom >"$src"
  lab_spawn "$to" "$LAB_DIR/logs/nc-listen-$port.log" \
    timeout "$limit" sh -c "nc -l -N '$ip' '$port' >'$dst'"
  pid=$LAB_LAST_PID
  wait_for 5 "listener on $ip:$port" sh -c \
    "ip netns exec '$(lab_ns "$to")' ss -Hntl | awk '{print \$4}' | grep -qx '$ip:$port'" ||
    return 1
  lab_exec "$from" timeout "$limit" nc -N "$ip" "$port" <"$src" ||
    { lab_log "transfer: sender failed"; return 1; }
  wait "$pid" || { lab_log "transfer: receiver failed"; return 1; }
  sent=$(sha256sum <"$src" | cut -d' ' -f1)
  got=$(sha256sum <"$dst" | cut -d' ' -f1)
  lab_log "transfer: ${mb} MiB sent $sent, received $(stat -c %s "$dst") bytes $got"
  [ "$sent" = "$got" ]
}

# The UDP port NAME's p2pvpnd listens on (its one socket), from ss in its namespace.
# NAME's main UDP port, from its log's last start (ss would also list the port mapper's and
# the birthday punch's sockets).
p2p_port() {  # NAME
  sed -n 's/.*listening on udp=.*:\([0-9]*\) tun=.*/\1/p' "$LAB_DIR/logs/$1.log" | tail -n1
}

p2p_vip() { printf '%s' "${P2P_VIP[$1]}"; }  # NAME: its virtual IP
p2p_pid() { printf '%s' "${P2P_PID[$1]}"; }  # NAME: its p2pvpnd's pid
p2p_coordinator_pid() { printf '%s' "$P2P_COORD_PID"; }

# The name p2pvpnd gives the NAT type a lab router has (status .node.nat.type).
p2p_nat_name() {  # TYPE
  case $1 in
    none) echo "open internet" ;;
    full) echo "full cone" ;;
    restricted) echo "restricted cone" ;;
    port-restricted) echo "port-restricted cone" ;;
    symmetric) echo "symmetric" ;;
    *) return 1 ;;
  esac
}

# The path the lab expects between nodes behind NAT types T1 and T2 (the lab's symmetric NAT
# allocates random ports, so no prediction helps against a port-restricted cone).
p2p_expected_path() {  # T1 T2
  case "$1 $2" in
    "symmetric symmetric" | "symmetric port-restricted" | "port-restricted symmetric") echo relay ;;
    *) echo direct ;;
  esac
}

p2p_nat_is() {  # NAME NAT_NAME
  [ "$(p2p_status "$1" 2>/dev/null | jq -r .node.nat.type)" = "$2" ]
}

# A relayed peer's final reason (relay and not still punching).
p2p_relay_settled() {  # NAME PEER
  local reason
  reason=$(p2p_peer "$1" "$2" relay_reason)
  p2p_path_is "$1" "$2" relay && [ -n "$reason" ] && [ "$reason" != punching ]
}

# For the demo and the benchmark: what the README's first command needs on a fresh Debian.
p2p_build() {  # TOP BUILD_DIR
  bash "$1/contrib/install-deps.sh"
  cmake -S "$1" -B "$2" -G Ninja >/dev/null
  ninja -C "$2" -j "$(nproc)" p2pvpnd p2pvpnctl p2pvpn-coordinator
}
p2p_host() { printf '%s' "${P2P_HOST[$1]}"; }  # NAME: the lab host its daemon runs in

# A network that drops all UDP (a hotel's, an airport's): ROUTER forwards no UDP at all, so
# its nodes register over the coordinator's TCP main port (P2P_COORD_TCP).
p2p_block_udp() {  # ROUTER
  lab_exec "$1" nft -f - <<'NFT'
table ip p2p_udpblock {
  chain forward_udp {
    type filter hook forward priority -10; policy accept;
    meta l4proto udp drop
  }
}
NFT
}

p2p_on_direct() {  # NAME PEER TRANSPORT
  p2p_path_is "$1" "$2" direct && [ "$(p2p_peer "$1" "$2" transport)" = "$3" ]
}

# For wait_for: a punch starts from traffic, so each check sends some.
p2p_direct_now() {  # NAME PEER TRANSPORT
  p2p_ping "${P2P_HOST[$1]}" "${P2P_VIP[$2]}" 1 || true
  p2p_on_direct "$@"
}

p2p_coordinator_over() {  # NAME TRANSPORT
  [ "$(p2p_status "$1" 2>/dev/null |
    jq -r '"\(.node.coordinator.state) \(.node.coordinator.transport)"' 2>/dev/null)" = "registered $2" ]
}
