#!/usr/bin/env bash
# Installs dependencies, builds, and mounts imagefs on the embedded default
# (three directory stores central, dcn0, dcn1 and an SQLite catalog under
# the state directory).
#
#   scripts/mount.sh [MOUNTPOINT]         default MOUNTPOINT: /mnt/imagefs
#   IMAGEFS_STATE_DIR=/path scripts/mount.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
mountpoint_dir=${1:-/mnt/imagefs}
state_dir=${IMAGEFS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/imagefs}

scripts/install-deps.sh
scripts/build.sh imagefs  # the daemon is all a mount needs

# A daemon that crashed leaves its mount behind, answering "Transport
# endpoint is not connected": imagefs clears it itself before mounting.
if stat "$mountpoint_dir" > /dev/null 2>&1 && mountpoint -q "$mountpoint_dir"; then
  echo "$mountpoint_dir is already a mount point; unmount it first: fusermount3 -u $mountpoint_dir" >&2
  exit 1
fi
mkdir -p "$state_dir"
mkdir -p "$mountpoint_dir" 2> /dev/null || true  # fails on a stale mount, which imagefs clears
build/fs/imagefs --state-dir="$state_dir" --log-file="$state_dir/imagefs.log" "$mountpoint_dir"
echo "imagefs is mounted on $mountpoint_dir (state: $state_dir, log: $state_dir/imagefs.log)"
echo "try:  ls $mountpoint_dir/sites    unmount: fusermount3 -u $mountpoint_dir"
