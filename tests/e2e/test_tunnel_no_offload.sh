#!/usr/bin/env bash
# test_tunnel with the TUN offloads forced off (mesh.yaml performance: { tun_offload: false }):
# the plain one-packet-per-read path still carries pings and 50 MiB both ways, byte for byte.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export P2P_PERFORMANCE="{ tun_offload: false }"
# shellcheck source=tests/e2e/test_tunnel.sh
source "$here/test_tunnel.sh"
