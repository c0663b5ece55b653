#!/usr/bin/env bash
# Installs every Debian 12 package p2pvpn needs to build, test, fuzz, run the namespace lab
# and the benchmark. Idempotent: packages already present are skipped, and apt is not touched
# at all when nothing is missing. Needs root (or sudo) only when something must be installed.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries
  libsodium-dev libboost-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev libmnl-dev
  libminiupnpc-dev libnatpmp-dev  # router port mappings (UPnP IGD, NAT-PMP)
  # fuzzing (libFuzzer ships with clang's runtime)
  clang libclang-rt-14-dev
  # namespace lab, end-to-end tests, demo
  iproute2 nftables conntrack iputils-ping iperf3 procps coturn
  netcat-openbsd jq  # e2e: checksummed TCP transfers, reading `p2pvpnctl status --json`
  # packaging and its test: dpkg-shlibdeps (dpkg-dev), systemd-analyze and systemd-sysusers,
  # man to render the pages, curl to scrape /metrics
  dpkg-dev systemd man-db curl
  # benchmark references
  wireguard-go wireguard-tools fastd
  # e2e: a real UPnP IGD / NAT-PMP / PCP router (tests/e2e/test_port_mapping.sh). This variant
  # ships no service; policy-rc.d below keeps any package from starting one anyway.
  miniupnpd-nftables
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# No service may start while installing (miniupnpd, coturn): a policy-rc.d that says "no" for
# the duration, unless the machine already has one (containers usually do).
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo_cmd[@]}" chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if ((own_policy)); then "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d; fi
# coturn's package enables a system service; the lab starts its own turnserver instead.
if command -v systemctl >/dev/null && systemctl is-active -q coturn 2>/dev/null; then
  "${sudo_cmd[@]}" systemctl disable --now coturn >/dev/null 2>&1 || true
fi
echo "install-deps: done"
