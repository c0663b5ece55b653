#!/bin/sh
# The man pages (contrib/man/*.md) agree with the programs: every option that --help of
# p2pvpnd, p2pvpn-coordinator and each p2pvpnctl command prints appears in that program's
# page, and every key the config schemas accept (config/*.cpp) appears in mesh.yaml(5) or
# coordinator.yaml(5). Usage: check-man.sh BUILD_DIR. Exits 1 naming what is missing.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
man=$top/contrib/man
missing=0

options() {  # the -x and --xxx names in a --help text on stdin
  grep -E '^ +-' | grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z0-9-]*' | tr -d ' ,' | sort -u
}

check() {  # PAGE WHAT WORD...
  page=$1 what=$2
  shift 2
  for w in "$@"; do
    if ! grep -qwF -- "$w" "$man/$page"; then
      echo "check-man: $what $w is not in contrib/man/$page" >&2
      missing=1
    fi
  done
}

# shellcheck disable=SC2046
check p2pvpnd.8.md "p2pvpnd option" $("$build/daemon/p2pvpnd" --help | options)
# shellcheck disable=SC2046
check p2pvpn-coordinator.8.md "p2pvpn-coordinator option" \
  $("$build/coordinator/p2pvpn-coordinator" --help | options)
for cmd in "ca init" issue "cert show" "cert verify" "key generate" "key public" revoke status ping \
  netcheck; do
  # shellcheck disable=SC2086,SC2046
  check p2pvpnctl.1.md "p2pvpnctl $cmd option" $("$build/daemon/p2pvpnctl" $cmd --help | options)
  check p2pvpnctl.1.md "p2pvpnctl command" "**${cmd% *}"
done

keys() {  # the "key" names of the schema rows in FILE...
  grep -hoE '\{"[a-z_]+", k(Optional|Required)' "$@" | cut -d'"' -f2 | sort -u
}
for k in $(keys "$top/config/mesh_config.cpp" "$top/config/common.cpp"); do
  check mesh.yaml.5.md "mesh.yaml key" "**$k**"
done
for k in $(keys "$top/config/coordinator_config.cpp" "$top/config/common.cpp"); do
  check coordinator.yaml.5.md "coordinator.yaml key" "**$k**"
done
[ $missing = 0 ] && echo "check-man: every option and config key is documented"
exit $missing
