#!/usr/bin/env bash
# test_tunnel with every offload forced off (mesh.yaml performance: tun_offload, udp_gso and
# udp_gro false): the plain one-packet-per-read path, one datagram per send and per receive,
# still carries pings and 50 MiB both ways, byte for byte, and the status says they are off.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export P2P_PERFORMANCE="{ tun_offload: false, udp_gso: false, udp_gro: false }"
export P2P_EXPECT_OFFLOADS="off off off"
# shellcheck source=tests/e2e/test_tunnel.sh
source "$here/test_tunnel.sh"
