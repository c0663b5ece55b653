# shellcheck shell=bash
# The namespace lab: a small Internet of Linux network namespaces for the end-to-end tests, the
# demo and the benchmark. Source it, call lab_init, build a topology, run things in it.
#
#   lab_init                        unique prefix (or $LAB_PREFIX if set), temp dir, cleanup
#                                   trap (EXIT/INT/TERM)
#   lab_internet                    the "internet" namespace: bridge br0 for public addresses
#   lab_public_host NAME IP...      a host on the internet with one or more public addresses
#   lab_nat_router NAME TYPE WAN_IP N
#                                   a NAT router: WAN_IP outside, 192.168.N.1/24 inside;
#                                   TYPE: full | restricted | port-restricted | symmetric
#   lab_private_host NAME ROUTER IP a host on ROUTER's LAN (default route via the router)
#   lab_host NAME NAT N             either of the two: NAT "none" is a public host at
#                                   203.0.113.(100+N), any other a host 192.168.N.10 behind a
#                                   router of that type at 203.0.113.(20+N)
#   lab_addr NAME                   a host's (first) address, a router's WAN address
#   lab_exec NAME CMD...            run CMD in a namespace
#   lab_spawn NAME LOG CMD...       start CMD in the background there (own session, output
#                                   appended to LOG); pid in LAB_LAST_PID
#   lab_stop PID [SIG [SECS]]       SIGTERM (or SIG), SIGKILL after SECS (5); 1 if it had to
#   wait_for SECONDS WHAT CMD...    poll CMD every 0.1 s until it succeeds; 1 on timeout
#   fail MSG                        print MSG and the logs' tails, exit 1
#
# Isolation contract: nothing is ever created in the root namespace. Every namespace is named
# LAB_PREFIX + NAME; links are created directly inside their namespaces (so short names such
# as eth0 never meet the host's), and vanish with them. Only TEST-NET-3 (203.0.113.0/24) and
# 192.168.0.0/16 are used, and only inside the lab. The cleanup kills every process running in
# a lab namespace (by pid, via `ip netns pids`), then deletes the namespaces; it runs on any
# exit, on Ctrl-C and on SIGTERM (which timeout(1) sends), and is idempotent.
set -euo pipefail

LAB_PREFIX=${LAB_PREFIX:-}
LAB_DIR=""
LAB_NAMESPACES=()
LAB_PIDS=()
LAB_LAST_PID=""
LAB_CLEANED=0
LAB_LINKS=0           # counter for the bridge-side names of links
LAB_INTERNET=""       # name of the internet namespace, once made
declare -A LAB_LAN    # router NAME -> its LAN index N
declare -A LAB_ADDR   # host NAME -> its first address

lab_log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }

lab_init() {
  [ -n "$LAB_PREFIX" ] || LAB_PREFIX=p2pe$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-
  LAB_DIR=$(mktemp -d "/tmp/${LAB_PREFIX}XXXXXX")
  mkdir -p "$LAB_DIR/logs"
  trap 'lab_cleanup' EXIT
  trap 'lab_log "interrupted"; exit 130' INT
  trap 'lab_log "terminated"; exit 143' TERM
}

lab_ns() { printf '%s%s' "$LAB_PREFIX" "$1"; }

lab_addr() { printf '%s' "${LAB_ADDR[$1]}"; }  # NAME: its (first) address

lab_exec() {  # NAME CMD...
  local ns; ns=$(lab_ns "$1"); shift
  ip netns exec "$ns" "$@"
}

# In its own session, so a Ctrl-C at the terminal reaches only the script (whose cleanup then
# stops everything in order), not the daemons in the middle of a measurement. Appends to LOG.
lab_spawn() {  # NAME LOG CMD...
  local ns log; ns=$(lab_ns "$1"); log=$2; shift 2
  # A background job of a script is no group leader, so setsid execs in place: $! stays the
  # command's pid.
  ip netns exec "$ns" setsid "$@" >>"$log" 2>&1 </dev/null &
  LAB_LAST_PID=$!
  LAB_PIDS+=("$LAB_LAST_PID")
}

# Sends SIGNAL (default TERM) and waits up to SECONDS (default 5) for PID to exit, then
# SIGKILLs it; returns 1 when it had to.
lab_stop() {  # PID [SIGNAL [SECONDS]]
  local pid=$1 sig=${2:-TERM} limit=${3:-5} i
  kill "-$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -KILL "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" 2>/dev/null || true
}

wait_for() {  # SECONDS WHAT CMD...
  local limit=$1 what=$2 deadline; shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      lab_log "timed out after ${limit}s waiting for: $what"
      return 1
    fi
    sleep 0.1
  done
}

# Prints the last lines of every log of this run (daemons, servers) to stderr.
lab_dump_logs() {
  local f
  for f in "$LAB_DIR"/logs/*; do
    [ -f "$f" ] || continue
    printf '\n----- %s (last 40 lines)\n' "${f##*/}" >&2
    tail -n 40 "$f" >&2
  done
}

fail() {
  lab_log "FAIL: $*"
  lab_dump_logs
  exit 1
}

lab_cleanup() {
  local status=$? ns pid pids i
  ((LAB_CLEANED)) && return 0
  LAB_CLEANED=1
  trap - INT TERM
  # Everything running inside a lab namespace was started by this run: SIGTERM first (the
  # daemons remove their TUNs), SIGKILL after 2 s.
  for ((i = 0; i < 30; i++)); do
    pids=""
    for ns in "${LAB_NAMESPACES[@]}"; do pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
    [ -z "${pids// /}" ] && break
    # shellcheck disable=SC2086  # one pid per word
    case $i in
      0) kill -TERM $pids 2>/dev/null || true ;;
      20) kill -KILL $pids 2>/dev/null || true ;;
    esac
    sleep 0.1
  done
  for pid in "${LAB_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${LAB_NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
    if [ "$status" -ne 0 ] || [ -n "${E2E_KEEP:-}" ]; then
      lab_log "logs kept in $LAB_DIR"
    else
      rm -rf "$LAB_DIR"
    fi
  fi
  return "$status"
}

# --- topology -------------------------------------------------------------------------------

lab_add_ns() {  # NAME
  local ns f
  ns=$(lab_ns "$1")
  ip netns add "$ns"
  LAB_NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  # Bridges are plain switches: where br_netfilter is loaded (e.g. by a container runtime),
  # bridged frames would otherwise cross the namespace's IP firewall and conntrack.
  for f in arptables iptables ip6tables; do
    if ip netns exec "$ns" test -e "/proc/sys/net/bridge/bridge-nf-call-$f"; then
      ip netns exec "$ns" sysctl -qw "net.bridge.bridge-nf-call-$f=0"
    fi
  done
}

# A veth pair from HOST's eth0-like name to a port enslaved to BRIDGE in namespace BR_NS.
lab_link() {  # HOST IFNAME BR_NS BRIDGE
  local host=$1 ifname=$2 br_ns=$3 bridge=$4 port
  LAB_LINKS=$((LAB_LINKS + 1))
  port="port$LAB_LINKS"
  ip link add "$ifname" netns "$(lab_ns "$host")" type veth peer name "$port" netns "$(lab_ns "$br_ns")"
  ip -n "$(lab_ns "$br_ns")" link set "$port" master "$bridge" up
  ip -n "$(lab_ns "$host")" link set "$ifname" up
}

lab_internet() {
  LAB_INTERNET=internet
  lab_add_ns "$LAB_INTERNET"
  ip -n "$(lab_ns "$LAB_INTERNET")" link add br0 type bridge
  ip -n "$(lab_ns "$LAB_INTERNET")" link set br0 up
}

lab_public_host() {  # NAME IP...
  local name=$1 addr; shift
  lab_add_ns "$name"
  lab_link "$name" eth0 "$LAB_INTERNET" br0
  for addr in "$@"; do ip -n "$(lab_ns "$name")" addr add "$addr/24" dev eth0; done
  LAB_ADDR[$name]=$1
}

lab_nat_router() {  # NAME TYPE WAN_IP N
  local name=$1 type=$2 wan=$3 n=$4
  lab_add_ns "$name"
  lab_link "$name" eth0 "$LAB_INTERNET" br0
  ip -n "$(lab_ns "$name")" addr add "$wan/24" dev eth0
  ip -n "$(lab_ns "$name")" link add lan0 type bridge
  ip -n "$(lab_ns "$name")" addr add "192.168.$n.1/24" dev lan0
  ip -n "$(lab_ns "$name")" link set lan0 up
  lab_exec "$name" sysctl -qw net.ipv4.ip_forward=1
  LAB_LAN[$name]=$n
  LAB_ADDR[$name]=$wan
  case $type in
    full) nat_full_cone "$name" ;;
    restricted) nat_restricted_cone "$name" ;;
    port-restricted) nat_port_restricted "$name" ;;
    symmetric) nat_symmetric "$name" ;;
    *) fail "unknown NAT type: $type" ;;
  esac
}

lab_private_host() {  # NAME ROUTER IP
  local name=$1 router=$2 addr=$3
  lab_add_ns "$name"
  lab_link "$name" eth0 "$router" lan0
  ip -n "$(lab_ns "$name")" addr add "$addr/24" dev eth0
  ip -n "$(lab_ns "$name")" route add default via "192.168.${LAB_LAN[$router]}.1"
  LAB_ADDR[$name]=$addr
}

lab_host() {  # NAME NAT N
  local name=$1 nat=$2 n=$3
  if [ "$nat" = none ]; then
    lab_public_host "$name" "203.0.113.$((100 + n))"
  else
    lab_nat_router "r-$name" "$nat" "203.0.113.$((20 + n))" "$n"
    lab_private_host "$name" "r-$name" "192.168.$n.10"
  fi
}

# --- NAT routers (nftables, in the router's namespace) ---------------------------------------
# Every type shares one skeleton: the LAN may go out; from the WAN only replies
# (established/related) and, for the cone types, packets the inbound DNAT accepted are
# forwarded; and nothing unsolicited addressed to the router itself is accepted. That last
# drop matters: without it conntrack would confirm the unsolicited packet's entry, and the
# inside host's next packet to that sender would be remapped to another port (a cone NAT
# would then look symmetric). A dropped packet's entry is never confirmed.
#
# The cone types keep the inside port (plain masquerade preserves it when it is free) and
# learn, from every outbound UDP packet, which inside host owns that port (map `owner`);
# inbound UDP to a learnt port is DNATed back to its owner:
#   full cone        from anyone                         (endpoint-independent filtering)
#   restricted cone  only from addresses the owner sent to (set `contacted`: address dependent)
# port-restricted is plain masquerade (conntrack: address and port dependent filtering);
# symmetric is masquerade with a fresh random port per destination (address and port
# dependent mapping).

nat_apply() {  # ROUTER MASQUERADE_FLAGS INBOUND_RULE
  local router=$1 flags=$2 inbound=$3
  lab_exec "$router" nft -f - <<EOF
table ip lab {
  map owner { type inet_service : ipv4_addr; flags dynamic, timeout; timeout 3m; }
  set contacted { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 3m; }
  chain nat_in {
    type nat hook prerouting priority dstnat;
    $inbound
  }
  chain nat_out {
    type nat hook postrouting priority srcnat;
    oifname "eth0" masquerade $flags
  }
  chain filter_fwd {
    type filter hook forward priority filter; policy drop;
    iifname "lan0" oifname "eth0" meta l4proto udp update @owner { udp sport : ip saddr }
    iifname "lan0" oifname "eth0" meta l4proto udp update @contacted { ip daddr . udp sport }
    iifname "lan0" oifname "eth0" accept
    iifname "lan0" oifname "lan0" accept
    iifname "eth0" ct state established,related accept
    iifname "eth0" ct status dnat accept
  }
  chain filter_in {
    type filter hook input priority filter; policy accept;
    iifname "eth0" ct state established,related accept
    iifname "eth0" drop
  }
}
EOF
}

nat_full_cone() {  # ROUTER
  nat_apply "$1" "" 'iifname "eth0" meta l4proto udp dnat to udp dport map @owner'
}

nat_restricted_cone() {  # ROUTER
  nat_apply "$1" "" \
    'iifname "eth0" ip saddr . udp dport @contacted dnat to udp dport map @owner'
}

nat_port_restricted() {  # ROUTER
  nat_apply "$1" "" ""
}

nat_symmetric() {  # ROUTER
  nat_apply "$1" "random,fully-random" ""
}

# --- NAT behaviour as a real STUN client sees it (coturn's turnutils_natdiscovery) ------------

# The verdicts turnutils_natdiscovery prints for each lab NAT type: "MAPPING|FILTERING".
nat_expected_verdict() {  # TYPE
  case $1 in
    none | full) echo "Endpoint Independent|Endpoint Independent" ;;
    restricted) echo "Endpoint Independent|Address Dependent" ;;
    port-restricted) echo "Endpoint Independent|Address and Port Dependent" ;;
    symmetric) echo "Address and Port Dependent|Address and Port Dependent" ;;
    *) return 1 ;;
  esac
}

# Runs RFC 5780 discovery from HOST against SERVER[:PORT]; prints "MAPPING|FILTERING" (the
# words between "NAT with " and " Mapping!"/" Filtering!"), the full output going to LOG.
nat_discover() {  # HOST SERVER PORT LOG
  local host=$1 server=$2 port=$3 log=$4 mapping filtering
  lab_exec "$host" timeout 30 turnutils_natdiscovery -m -f -p "$port" "$server" >"$log" 2>&1 || true
  mapping=$(sed -n 's/^NAT with \(.*\) Mapping!$/\1/p' "$log" | head -n1)
  filtering=$(sed -n 's/^NAT with \(.*\) Filtering!$/\1/p' "$log" | head -n1)
  echo "${mapping:-none}|${filtering:-none}"
}

# The public address:port a STUN server reported in LOG (turnutils' "UDP reflexive addr").
nat_reflexive() {  # LOG
  sed -n 's/.*UDP reflexive addr: \([0-9.:]*\).*/\1/p' "$1" | head -n1
}

# Puts a host h<i> behind each lab NAT type (and one public, index i+1), runs the discovery
# from all of them at once against SERVER:PORT (an RFC 5780 server), and checks every verdict
# and that the server saw the right public address. Reports a line per type; 1 on a misjudged
# type.
nat_check_types() {  # SERVER PORT
  local types=(none full restricted port-restricted symmetric) i type want got seen log
  local failed=0 jobs_running=()
  for i in "${!types[@]}"; do lab_host "h$i" "${types[$i]}" "$((i + 1))"; done
  for i in "${!types[@]}"; do
    nat_discover "h$i" "$1" "$2" "$LAB_DIR/logs/natdiscovery-${types[$i]}.log" \
      >"$LAB_DIR/verdict-$i" &
    jobs_running+=("$!")
  done
  wait "${jobs_running[@]}"

  for i in "${!types[@]}"; do
    type=${types[$i]}
    log="$LAB_DIR/logs/natdiscovery-$type.log"
    want=$(nat_expected_verdict "$type")
    got=$(cat "$LAB_DIR/verdict-$i")
    # Behind no NAT the server must see the host's own address; behind a NAT, the router's.
    seen=$(lab_addr "h$i")
    [ "$type" != none ] && seen=$(lab_addr "r-h$i")
    if [ "$got" != "$want" ]; then
      lab_log "$type: expected '$want', turnutils_natdiscovery says '$got'"
      failed=1
    elif [[ "$(nat_reflexive "$log")" != "$seen":* ]]; then
      lab_log "$type: reflexive address $(nat_reflexive "$log"), expected $seen"
      failed=1
    else
      lab_report "$(printf '%-16s mapping|filtering: %s (public %s)' "$type" "$want" "$seen")"
    fi
  done
  return "$failed"
}

# A line for the run's report: run.sh prints these even when the test passes.
lab_report() { printf 'report: %s\n' "$*"; }

now_ms() { date +%s%3N; }

# MS milliseconds as seconds with two decimals ("1.25").
ms_to_s() { printf '%d.%02d' "$(($1 / 1000))" "$((($1 % 1000) / 10))"; }

# --- floods: an attacker in the lab (tests/e2e/test_flood_*.sh) -------------------------------
# The attacker is tests/tools/p2p_flood (built into $E2E_BUILD/tests/): it sends at a bounded
# rate, count and time, from its own address or from spoofed ones, and counts what comes back.
#
#   lab_attacker NAME IP PREFIX     a public host that sends from PREFIX (spoofed sources) and
#                                   receives what comes back to PREFIX (a local route); the
#                                   ICMP errors it would send for those replies are dropped
#   lab_route_via NAME PREFIX VIA   in NAME, route PREFIX via VIA: what NAME sends to spoofed
#                                   sources goes back to the attacker, and rp_filter lets the
#                                   spoofed datagrams in
#   lab_flood_tool                  the path of p2p_flood (fails when it was not built)
#   lab_flood_ready NAME LOG WHAT   wait until p2p_flood in LOG says WHAT (listening, capturing)
#   flood_field LOG KEY             KEY's value in the last "p2p_flood:" line of LOG
#   flood_fields LOG KEY...         the values of KEY... on one line ("?" for a missing one)
#   lab_rss_kb PID                  its resident set size in kB (empty when it is gone)
#   lab_cpu_ms PID                  the CPU time it has used (user + system), in ms
#   lab_cpu_pct MS0 MS1 WALL_MS     CPU use between two lab_cpu_ms readings, in percent
#   lab_ctl SOCKET JSON             one request to a control socket; its answer line on stdout
#   lab_ping_stats HOST VIP SECONDS OUT
#                                   pings 10 ms apart for SECONDS; writes "SENT RECEIVED
#                                   MEDIAN_MS" to OUT (ping's output in OUT.ping)
#   lab_loss_pct SENT RECEIVED      the loss in percent, two decimals
#   lab_mb BYTES / lab_mb_kb KB     figures for the report: lab_mb 2048 -> 2.0 kB, lab_mb_kb
#                                   6144 -> 6.0 MB

# The spoofed prefix of the flood tests: 32k addresses of 192.168.0.0/16 that no lab LAN uses
# (their 192.168.N.0/24 have small N).
# shellcheck disable=SC2034  # used by the tests that source this file
LAB_SPOOF_PREFIX=192.168.128.0/17

lab_attacker() {  # NAME IP PREFIX
  local name=$1 ip=$2 prefix=$3
  lab_public_host "$name" "$ip"
  ip -n "$(lab_ns "$name")" route add local "$prefix" dev lo
  lab_exec "$name" nft -f - <<NFT
table ip flood {
  chain out {
    type filter hook output priority filter; policy accept;
    icmp type destination-unreachable drop
  }
}
NFT
}

lab_route_via() {  # NAME PREFIX VIA
  ip -n "$(lab_ns "$1")" route add "$2" via "$3"
}

lab_flood_tool() {
  local tool=$E2E_BUILD/tests/p2p_flood
  [ -x "$tool" ] || fail "missing $tool (ninja -C BUILD p2p_flood)"
  printf '%s' "$tool"
}

lab_flood_ready() {  # NAME LOG WHAT
  wait_for 5 "p2p_flood $3 in $1" grep -q "^p2p_flood: $3\$" "$2"
}

flood_field() {  # LOG KEY
  grep '^p2p_flood: ' "$1" 2>/dev/null | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

flood_fields() {  # LOG KEY...
  local log=$1 key value values=()
  shift
  for key in "$@"; do
    value=$(flood_field "$log" "$key")
    values+=("${value:-?}")
  done
  echo "${values[*]}"
}

lab_rss_kb() {  # PID
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true
}

lab_cpu_ms() {  # PID
  # Fields 14 and 15 of /proc/PID/stat, after the command name (which may hold spaces).
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk -v hz="$(getconf CLK_TCK)" '{printf "%d\n", ($12 + $13) * 1000 / hz}' <<<"$stat"
}

lab_cpu_pct() {  # MS0 MS1 WALL_MS
  awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN {printf "%d", (w > 0 ? (b - a) * 100 / w : 0)}'
}

lab_ctl() {  # SOCKET JSON
  printf '%s\n' "$2" | timeout 3 nc -U -N "$1" 2>/dev/null | head -n1
}

lab_ping_stats() {  # HOST VIP SECONDS OUT
  local host=$1 vip=$2 secs=$3 out=$4 log sent received
  log="$out.ping"
  # ping's deadline (-w) ends it with its summary even when replies stop coming; the one or
  # two pings still in flight then count as lost.
  lab_exec "$host" timeout $((secs + 5)) ping -n -i 0.01 -W 1 -w "$secs" "$vip" >"$log" 2>&1 ||
    true
  sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$log" | head -n1)
  received=$(grep -c ' bytes from .* time=' "$log" || true)
  {
    # Without a summary (ping killed), the highest sequence number seen.
    [ -n "$sent" ] || sent=$(sed -n 's/.*icmp_seq=\([0-9]*\).*/\1/p' "$log" | sort -n | tail -n1)
    printf '%s %s ' "${sent:-0}" "$received"
    sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$log" | sort -n |
      awk '{v[NR] = $1} END {if (NR == 0) print "none"; else printf "%.3f\n", v[int((NR + 1) / 2)]}'
  } >"$out"
}

lab_loss_pct() {  # SENT RECEIVED
  awk -v s="$1" -v r="$2" 'BEGIN {if (s > 0) printf "%.2f", (s - r) * 100 / s; else print "100.00"}'
}

lab_mb_kb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
lab_mb() {  # BYTES
  awk -v b="$1" 'BEGIN {
    if (b >= 1048576) printf "%.2f MB", b / 1048576
    else if (b >= 1024) printf "%.1f kB", b / 1024
    else printf "%d B", b }'
}
