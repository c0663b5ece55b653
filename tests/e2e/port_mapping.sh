# shellcheck shell=bash
# Router port mappings in the namespace lab (sources lib.sh and p2p.sh), shared by
# test_port_mapping_{pcp,natpmp,upnp,none}.sh.
#
# Two pairs, each node behind its own router:
#   a (port-restricted cone, 11.250.42.21) x b (symmetric, 203.0.113.22)
#   c (symmetric,            11.250.42.23) x d (symmetric, 203.0.113.24)
# Both pairs are relayed without help (tests/e2e/test_nat_matrix.sh). With PROTO, the routers
# of a and c run Debian's miniupnpd speaking only that protocol family, the nodes ask for it
# first, and b and d must reach a and c on a direct path of kind "mapped".
#
# Why 11.250.42.0/24: miniupnpd refuses to map on a router whose WAN address is private or
# reserved (TEST-NET-3 included), and p2pvpnd refuses such an external address too. The
# addresses exist only on the lab's bridge; on-link routes join them to 203.0.113.0/24.
#
#   pm_run PROTO     pcp | natpmp | upnp | none; fails the test on any failed check

PM_FAILURES=()
PM_NET=11.250.42
# The pairs must be relayed without a mapping: no birthday punch (test_birthday_punch.sh).
P2P_NODE_YAML="punch: { birthday: { enabled: false } }"

pm_failed() {
  lab_log "$*"
  PM_FAILURES+=("$*")
}

# A NAT router whose WAN address is in $PM_NET.
pm_router() {  # NAME TYPE N
  lab_nat_router "$1" "$2" "$PM_NET.$((20 + $3))" "$3"
  ip -n "$(lab_ns "$1")" route add 203.0.113.0/24 dev eth0
}

# miniupnpd inside ROUTER, for its LAN 192.168.N.0/24, speaking PROTO's family only (miniupnpd
# has one switch for NAT-PMP and PCP). Its nftables chains are its own table, hooked before
# the lab's NAT; the lab's forward chain accepts what it DNATs.
pm_miniupnpd() {  # ROUTER N PROTO
  local router=$1 n=$2 proto=$3 conf=$LAB_DIR/miniupnpd-$1.conf natpmp=no upnp=no
  case $proto in
    pcp | natpmp) natpmp=yes ;;
    upnp) upnp=yes ;;
  esac
  lab_exec "$router" nft -f - <<NFT
table inet miniupnpd {
  chain forward { type filter hook forward priority -1; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -101; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 99; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
NFT
  cat >"$conf" <<CONF
ext_ifname=eth0
listening_ip=lan0
port=0
enable_natpmp=$natpmp
enable_upnp=$upnp
secure_mode=yes
system_uptime=yes
lease_file=$LAB_DIR/miniupnpd-$router.leases
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
uuid=3d3cec3a-8cf0-11e0-98ee-0000000000$(printf %02d "$n")
allow 1024-65535 192.168.$n.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
  lab_spawn "$router" "$LAB_DIR/logs/miniupnpd-$router.log" /usr/sbin/miniupnpd -d -f "$conf" \
    -P "$LAB_DIR/miniupnpd-$router.pid"
  wait_for 10 "miniupnpd in $router" grep -q "Listening for NAT-PMP\|HTTP listening" \
    "$LAB_DIR/logs/miniupnpd-$router.log" || fail "miniupnpd did not start in $router"
}

pm_mapping() {  # NAME FIELD
  p2p_status "$1" 2>/dev/null | jq -r --arg f "$2" '.node.port_mapping[$f] // empty'
}

pm_has_mapping() {  # NAME PROTO
  [ "$(pm_mapping "$1" protocol)" = "$2" ]
}

pm_path_kind_is() {  # NAME PEER KIND
  p2p_path_is "$1" "$2" direct && [ "$(p2p_peer "$1" "$2" path_kind)" = "$3" ]
}

pm_pair() {  # MAPPED OTHER PROTO LABEL
  local m=$1 o=$2 proto=$3 label=$4 t0 direct
  t0=$(now_ms)
  lab_exec "$o" ping -n -q -c 1 -w 20 "$(p2p_vip "$m")" >/dev/null ||
    { pm_failed "$label: no reply through the tunnel within 20 s"; return 0; }
  if [ "$proto" = none ]; then
    wait_for 30 "$o -> $m relayed, settled" p2p_relay_settled "$o" "$m" ||
      pm_failed "$label: not settled on the relay: $(p2p_peer "$o" "$m" path)"
    lab_report "$(printf '%-40s %s (%s)' "$label" "$(p2p_peer "$o" "$m" path)" \
      "$(p2p_peer "$o" "$m" relay_reason)")"
    return 0
  fi
  if wait_for 30 "$o -> $m direct (mapped)" pm_path_kind_is "$o" "$m" mapped; then
    direct=$(ms_to_s $(($(now_ms) - t0)))
    wait_for 10 "$m -> $o direct" p2p_path_is "$m" "$o" direct ||
      pm_failed "$label: $m does not see $o on a direct path"
  else
    pm_failed "$label: $o -> $m not direct over the mapping after 30 s:" \
      "$(p2p_peer "$o" "$m" path) $(p2p_peer "$o" "$m" path_kind) ($(p2p_peer "$o" "$m" relay_reason))"
    return 0
  fi
  p2p_ping "$m" "$(p2p_vip "$o")" 3 || pm_failed "$label: $m cannot ping $o"
  lab_report "$(printf '%-40s direct, kind %s, after %s s' "$label" \
    "$(p2p_peer "$o" "$m" path_kind)" "$direct")"
}

pm_run() {  # PROTO
  local proto=$1 yaml=""
  case $proto in
    natpmp) yaml="port_mapping: { protocols: [natpmp] }" ;;
    upnp) yaml="port_mapping: { protocols: [upnp, pcp, natpmp] }" ;;
  esac
  p2p_lab 203.0.113.11
  ip -n "$(lab_ns coord)" route add "$PM_NET.0/24" dev eth0
  pm_router r-a port-restricted 1
  pm_router r-c symmetric 3
  lab_nat_router r-b symmetric 203.0.113.22 2
  lab_nat_router r-d symmetric 203.0.113.24 4
  local r
  for r in r-b r-d; do ip -n "$(lab_ns "$r")" route add "$PM_NET.0/24" dev eth0; done
  if [ "$proto" != none ]; then
    pm_miniupnpd r-a 1 "$proto"
    pm_miniupnpd r-c 3 "$proto"
  fi
  lab_private_host a r-a 192.168.1.10
  lab_private_host b r-b 192.168.2.10
  lab_private_host c r-c 192.168.3.10
  lab_private_host d r-d 192.168.4.10
  p2p_node a a 10.77.0.11 "$yaml"
  p2p_node b b 10.77.0.12
  p2p_node c c 10.77.0.13 "$yaml"
  p2p_node d d 10.77.0.14
  local t0 n
  t0=$(now_ms)
  for n in a c; do
    if [ "$proto" = none ]; then
      if wait_for 20 "$n to give up on a mapping" pm_mapping_failed "$n"; then
        lab_report "$n: no mapping: $(pm_mapping "$n" error)"
      else
        pm_failed "$n: no port mapping error in status"
      fi
    elif wait_for 30 "$n mapped by $proto" pm_has_mapping "$n" "$proto"; then
      lab_report "$(printf '%s: %s mapping %s lease %ss, %s s after start' "$n" "$proto" \
        "$(pm_mapping "$n" external)" "$(pm_mapping "$n" lease_seconds | cut -d. -f1)" \
        "$(ms_to_s $(($(now_ms) - t0)))")"
      case "$(pm_mapping "$n" external)" in
        "$PM_NET".*) ;;
        *) pm_failed "$n: external endpoint $(pm_mapping "$n" external) is not its router's" ;;
      esac
    else
      pm_failed "$n: no $proto mapping after 30 s (status: $(pm_mapping "$n" error))"
    fi
  done
  pm_pair a b "$proto" "port-restricted+$proto x symmetric"
  pm_pair c d "$proto" "symmetric+$proto x symmetric"
  if [ "$proto" != none ]; then
    # A clean shutdown deletes the mapping at the gateway.
    p2p_kill a
    wait_for 10 "a's mapping deleted" pm_router_forgot r-a 1 ||
      pm_failed "a: the mapping is still in r-a's miniupnpd chains after a clean stop"
  fi
  if ((${#PM_FAILURES[@]})); then
    printf '  %s\n' "${PM_FAILURES[@]}" >&2
    fail "${#PM_FAILURES[@]} port mapping checks failed"
  fi
}

pm_mapping_failed() {  # NAME
  [ -n "$(pm_mapping "$1" error)" ]
}

# No DNAT rule for host N's address left in the router's miniupnpd chain.
pm_router_forgot() {  # ROUTER N
  ! lab_exec "$1" nft list chain inet miniupnpd prerouting_miniupnpd | grep -q "192.168.$2.10"
}
