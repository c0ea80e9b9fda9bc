#!/usr/bin/env bash
# Installs every Debian 12 package imagefs needs to build, run and test.
# Quick when they are already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libfuse3-dev fuse3 libsystemd-dev systemd scdoc man-db
  libsqlite3-dev libssl-dev libxxhash-dev nlohmann-json3-dev libfmt-dev libboost-dev libcurl4-openssl-dev
  libyaml-cpp-dev
  libgtest-dev googletest
  librados-dev libradospp-dev librbd-dev
  ceph-mon ceph-osd ceph-mgr ceph-common
  rsync attr util-linux openssl iproute2
  qemu-utils genisoimage curl wget
  clang-19 libclang-rt-19-dev llvm
  keystone glance-api python3-glanceclient python3-keystoneclient python3-yaml python3-rbd
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
