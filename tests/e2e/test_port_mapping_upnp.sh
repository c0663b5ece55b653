#!/usr/bin/env bash
# e2e-timeout: 300
# Router port mapping by upnp (tests/e2e/port_mapping.sh): Debian's miniupnpd grants a mapping, status shows it, and port-restricted x symmetric and symmetric x symmetric pairs go direct over it (path kind "mapped"); a clean stop deletes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/p2p.sh
source "$here/p2p.sh"
# shellcheck source=tests/e2e/port_mapping.sh
source "$here/port_mapping.sh"

pm_run upnp
