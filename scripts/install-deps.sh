#!/usr/bin/env bash
# Installs every Debian package drvm needs to build, test and benchmark.
# Idempotent and quiet when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  linux-libc-dev                 # <linux/kvm.h>
  libboost-dev                   # Boost.Asio for the gdb stub
  libfmt-dev
  googletest libgtest-dev libgmock-dev
  libbenchmark-dev
  libzydis-dev                   # instruction decoding
  libtomlplusplus-dev            # drvm test manifests
  libre2-dev                     # drvm test serial patterns (linear-time matching)
  libcli11-dev                   # command-line parsing (header-only)
  gdb qemu-system-x86            # end-to-end and peer tests
  python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
