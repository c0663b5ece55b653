#!/usr/bin/env bash
# Checks that dependencies run one way (contrib/doc/architecture.md) by reading every
# #include "..." in the tree. Prints each violation and exits 1 if there is any.
#
#   net/            includes only net/                       (the bottom: value types, wire, Asio helpers)
#   crypto/         net/ (not net/asio/), crypto/
#   config/         net/ (not net/asio/), crypto/, config/
#   tun/            net/ (not net/asio/), tun/
#   daemon/         never coordinator/;  coordinator/ never daemon/
#   the I/O-free parts (net/ but net/asio/, crypto/, config/, daemon/core/, daemon/nat/,
#   daemon/status/, coordinator/core/) include no Asio, no net/asio/, no tun/
#   daemon/ctl/     never the node core (daemon/core/) or the shell (daemon/shell/)
#   core sources (daemon/core/, daemon/nat/, coordinator/core/) stay under 600 lines
set -uo pipefail
cd "$(dirname "$0")/.."
bad=0
say() { printf 'check-layers: %s\n' "$*"; bad=1; }

# forbid DIR REGEX WHY [GREP-OPTION...]: no file under DIR may include a path matching REGEX.
forbid() {
  local dir=$1 re=$2 why=$3 hits
  shift 3
  hits=$(grep -rnE "#include [\"<]($re)" "$dir" --include='*.hpp' --include='*.cpp' "$@" 2>/dev/null)
  [ -z "$hits" ] && return
  while IFS= read -r h; do say "$h  ($why)"; done <<< "$hits"
}

forbid net "crypto/|config/|tun/|daemon/|coordinator/|net/asio/|boost/" \
  "net/ is the bottom layer; its Asio lives in net/asio/" --exclude-dir=asio
forbid net/asio "crypto/|config/|tun/|daemon/|coordinator/" "net/ is the bottom layer"
forbid crypto "config/|tun/|daemon/|coordinator/|net/asio/|boost/" "crypto/ sits on net/ only"
forbid config "tun/|daemon/|coordinator/|net/asio/|boost/" "config/ sits on crypto/ and net/"
forbid tun "crypto/|config/|daemon/|coordinator/|net/asio/|boost/" "tun/ sits on net/ only"
forbid daemon "coordinator/" "the two programs never include each other"
forbid coordinator "daemon/" "the two programs never include each other"
for d in daemon/core daemon/nat daemon/status coordinator/core; do
  forbid "$d" "boost/|net/asio/|tun/|config/" "the cores are I/O-free"
done
forbid daemon/ctl "daemon/core/|daemon/shell/" "p2pvpnctl links only what it needs"

while IFS= read -r f; do
  n=$(wc -l < "$f")
  [ "$n" -gt 600 ] && say "$f has $n lines (cores stay under 600: one concern per class and file)"
done < <(find daemon/core daemon/nat coordinator/core -name '*.cpp' -o -name '*.hpp')

[ $bad = 0 ] && echo "check-layers: dependencies run one way"
exit $bad
