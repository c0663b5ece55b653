#!/usr/bin/env bash
# e2e-timeout: 300
# The Debian packages as an admin gets them: `cpack -G DEB` builds p2pvpn and
# p2pvpn-coordinator; dpkg installs both into a scratch root (--root, maintainer scripts run
# chrootless with DPKG_ROOT, so the coordinator's system user is made in the scratch root's
# /etc/passwd); the files, conffiles, man pages and user are checked; `systemd-analyze verify`
# accepts both units; then the coordinator and two nodes start exactly as the units'
# ExecStart lines say (paths inside the scratch root), with the units' user and capability
# sets (setpriv), in the namespace lab, and alice pings bob through the tunnel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"

# The ExecStart command line of UNIT (in the scratch root) for instance INSTANCE, its absolute
# paths moved into the scratch root.
exec_start() {  # UNIT INSTANCE
  local line
  line=$(sed -n 's/^ExecStart=//p' "$root/usr/lib/systemd/system/$1")
  line=${line//%i/$2}
  # shellcheck disable=SC2001  # a path prefix on every absolute word
  sed -e "s| /| $root/|g" -e "s|^/|$root/|" <<<"$line"
}

unit_value() {  # UNIT KEY
  sed -n "s/^$2=//p" "$root/usr/lib/systemd/system/$1" | tail -n1
}

main() {
  lab_init
  p2p_init "$E2E_BUILD"
  chmod 755 "$LAB_DIR"
  root=$LAB_DIR/root
  local pkg=$LAB_DIR/pkg
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$pkg"
  touch "$root/var/lib/dpkg/status"

  # Packages for /usr (a configure-only change of the build directory: nothing recompiles).
  cmake -S "$here/../.." -B "$E2E_BUILD" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  (cd "$pkg" && timeout 240 cpack -G DEB --config "$E2E_BUILD/CPackConfig.cmake" \
    >"$LAB_DIR/logs/cpack.log" 2>&1) || fail "cpack -G DEB failed"
  local deb_node deb_coord
  deb_node=$(ls "$pkg"/p2pvpn_*.deb)
  deb_coord=$(ls "$pkg"/p2pvpn-coordinator_*.deb)
  dpkg-deb -f "$deb_node" Depends | grep -q 'libsodium23' || fail "p2pvpn: no computed Depends"
  dpkg-deb -f "$deb_coord" Depends | grep -q 'adduser' || fail "p2pvpn-coordinator: no adduser"

  dpkg --root="$root" --force-script-chrootless --force-depends --no-triggers -i \
    "$deb_node" "$deb_coord" >"$LAB_DIR/logs/dpkg.log" 2>&1 || fail "dpkg -i failed"
  local f
  for f in usr/bin/p2pvpnd usr/bin/p2pvpnctl usr/bin/p2pvpn-coordinator \
    usr/lib/systemd/system/p2pvpnd@.service usr/lib/systemd/system/p2pvpn-coordinator.service \
    etc/p2pvpn/mesh.yaml.example etc/p2pvpn/coordinator.yaml.example \
    usr/share/man/man8/p2pvpnd.8.gz usr/share/man/man8/p2pvpn-coordinator.8.gz \
    usr/share/man/man1/p2pvpnctl.1.gz usr/share/man/man5/mesh.yaml.5.gz \
    usr/share/man/man5/coordinator.yaml.5.gz; do
    [ -e "$root/$f" ] || fail "not installed: /$f"
  done
  grep -q '^ /etc/p2pvpn/mesh.yaml.example ' "$root/var/lib/dpkg/status" ||
    fail "mesh.yaml.example is no conffile"
  grep -q '^ /etc/p2pvpn/coordinator.yaml.example ' "$root/var/lib/dpkg/status" ||
    fail "coordinator.yaml.example is no conffile"
  man -l "$root/usr/share/man/man8/p2pvpnd.8.gz" 2>/dev/null | grep -q -- '--log-format' ||
    fail "man p2pvpnd does not render"
  local uid gid
  uid=$(awk -F: '$1 == "p2pvpn-coordinator" { print $3 }' "$root/etc/passwd")
  gid=$(awk -F: '$1 == "p2pvpn-coordinator" { print $4 }' "$root/etc/passwd")
  [ -n "$uid" ] && [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "no system user p2pvpn-coordinator"
  ! getent passwd p2pvpn-coordinator >/dev/null 2>&1 || lab_log "(the host has the user too)"
  [ "$(stat -c %g:%a "$root/etc/p2pvpn/coordinator")" = "$gid:750" ] ||
    fail "/etc/p2pvpn/coordinator is not root:p2pvpn-coordinator 0750"
  lab_log "installed; p2pvpn-coordinator is uid $uid"

  # The units verified against the host's systemd units (targets, slices), copied beside ours;
  # their man: references are the pages checked above (man(1) would look on the host).
  cp -rn /lib/systemd/system/. "$root/usr/lib/systemd/system/"
  # ExecReload runs /bin/kill (procps, priority important: on every Debian install, not in
  # this scratch root), taken from the host the same way.
  mkdir -p "$root/bin" && cp -n /bin/kill "$root/bin/kill"
  systemd-analyze verify --man=no --root="$root" p2pvpn-coordinator.service p2pvpnd@alice.service \
    >"$LAB_DIR/logs/verify.log" 2>&1 || { cat "$LAB_DIR/logs/verify.log" >&2; fail "systemd-analyze verify"; }
  [ "$(unit_value p2pvpnd@.service CapabilityBoundingSet)" = CAP_NET_ADMIN ] || fail "daemon caps"
  [ "$(unit_value p2pvpnd@.service AmbientCapabilities)" = CAP_NET_ADMIN ] || fail "daemon caps"
  [ -z "$(unit_value p2pvpn-coordinator.service CapabilityBoundingSet)" ] || fail "coordinator caps"
  [ "$(unit_value p2pvpn-coordinator.service User)" = p2pvpn-coordinator ] || fail "coordinator user"

  # The coordinator as the unit runs it: its user, no capability, no new privileges.
  lab_internet
  lab_public_host coord 203.0.113.10
  lab_public_host alice 203.0.113.101
  lab_public_host bob 203.0.113.102
  p2p_issue coord 10.77.0.1 coordinator
  local cdir=$root/etc/p2pvpn/coordinator rundir=$LAB_DIR/run
  install -m 0600 -o "$uid" -g "$gid" "$LAB_DIR/pki/coord.key" "$cdir/coord.key"
  install -m 0644 "$LAB_DIR/pki/coord.crt" "$LAB_DIR/pki/ca/ca.crt" "$cdir/"
  mkdir -p "$rundir/p2pvpnd" && install -d -o "$uid" -g "$gid" "$rundir/p2pvpn-coordinator"
  sed -e 's/^listen: .*/listen: 203.0.113.10:7400/' \
    -e "s|^control_socket: /run/|control_socket: $rundir/|" \
    -e 's/^# metrics:/metrics:/' \
    "$root/etc/p2pvpn/coordinator.yaml.example" >"$root/etc/p2pvpn/coordinator.yaml"
  local cmd
  read -r -a cmd <<<"$(exec_start p2pvpn-coordinator.service "")"
  lab_spawn coord "$LAB_DIR/logs/coordinator.log" setpriv --reuid="$uid" --regid="$gid" \
    --clear-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs \
    "${cmd[@]}"
  P2P_COORD_PID=$LAB_LAST_PID
  P2P_COORD_ENDPOINT=203.0.113.10:7400
  wait_for 10 "the coordinator listening" p2p_listening coord "$P2P_COORD_ENDPOINT" ||
    fail "the installed coordinator did not start as its unit says"
  [ "$(awk '/^Uid:/ { print $2 }' "/proc/$P2P_COORD_PID/status")" = "$uid" ] ||
    fail "the coordinator does not run as p2pvpn-coordinator"
  [ "$(awk '/^CapEff:/ { print $2 }' "/proc/$P2P_COORD_PID/status")" = 0000000000000000 ] ||
    fail "the coordinator has capabilities"

  # Two nodes, instances alice and bob: only CAP_NET_ADMIN, as p2pvpnd@.service gives.
  local name vip
  for name in alice bob; do
    [ $name = alice ] && vip=10.77.0.2 || vip=10.77.0.3
    p2p_issue "$name" "$vip"
    mkdir -p "$root/etc/p2pvpn/$name"
    install -m 0600 "$LAB_DIR/pki/$name.key" "$root/etc/p2pvpn/$name/node.key"
    install -m 0644 "$LAB_DIR/pki/$name.crt" "$root/etc/p2pvpn/$name/node.crt"
    install -m 0644 "$LAB_DIR/pki/ca/ca.crt" "$root/etc/p2pvpn/$name/ca.crt"
    sed -e "s|mesh/|$name/|g" -e "s/203.0.113.10:7400/$P2P_COORD_ENDPOINT/" \
      -e "s|^control_socket: /run/p2pvpnd/mesh.sock|control_socket: $rundir/p2pvpnd/$name.sock|" \
      -e 's/^# metrics:/metrics:/' \
      "$root/etc/p2pvpn/mesh.yaml.example" >"$root/etc/p2pvpn/$name.yaml"
    read -r -a cmd <<<"$(exec_start p2pvpnd@.service "$name")"
    lab_spawn "$name" "$LAB_DIR/logs/$name.log" setpriv --inh-caps=-all,+net_admin \
      --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin --no-new-privs "${cmd[@]}"
    P2P_PID[$name]=$LAB_LAST_PID
    P2P_HOST[$name]=$name
    wait_for 10 "$name's p2p0 up" p2p_tun_up "$name" || fail "$name: p2pvpnd did not start"
    [ "$(awk '/^CapEff:/ { print $2 }' "/proc/$LAB_LAST_PID/status")" = 0000000000001000 ] ||
      fail "$name's p2pvpnd has capabilities other than CAP_NET_ADMIN"
  done
  p2p_wait_ping alice 10.77.0.3 20 || fail "alice cannot ping bob through the tunnel"
  p2p_ping alice 10.77.0.3 3 || fail "pings from alice to bob lost"
  local state
  state=$(lab_exec alice "$root/usr/bin/p2pvpnctl" status --json -c "$root/etc/p2pvpn/alice.yaml" |
    jq -r '.node.coordinator.state')
  [ "$state" = registered ] || fail "p2pvpnctl status -c alice.yaml: $state"
  lab_log "installed coordinator and nodes (unit users and capabilities): tunnel up"
}

main "$@"
