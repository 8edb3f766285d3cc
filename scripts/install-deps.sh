#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages drvdom needs, only those missing. Runs as root
# (CI does); as another user it uses sudo if present. Usage:
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh bench    also the benchmark baselines
set -euo pipefail

pkgs=(
  build-essential pkg-config   # compiler, make, pkg-config
  check                        # unit and integration tests
  liburcu-dev                  # RCU tables: hv and xenstored
  libseccomp-dev               # domain sandbox
  libxen-dev                   # reference headers for the layout tests only
  liburing-dev                 # blkback disk I/O (io_uring)
  xenstore-utils               # interoperability tests: Xen's own tools
  qemu-utils                   # qemu-io / qemu-img: block tests through NBD
  iproute2 iputils-ping        # network namespaces, veth, ping
  iperf3                       # network tests and benchmark
)
bench_pkgs=(
  dpdk-dev libdpdk-dev         # rte_ring baseline for `drvdom bench ring`
  nbdkit                       # baseline for `drvdom bench blk`
  gnuplot-nox                  # plots for the benchmarks
)
if [ "${1:-}" = bench ]; then pkgs+=("${bench_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
