#!/usr/bin/env bash
# e2e-timeout: 300
# Router port mapping by none (tests/e2e/port_mapping.sh): a router that speaks no mapping protocol: the daemons say why in status and both hard pairs stay relayed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"
# shellcheck source=tests/e2e/port_mapping.sh
source "$here/port_mapping.sh"

pm_run none
