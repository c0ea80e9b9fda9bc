#!/usr/bin/env bash
# imagefs over a real Glance against Glance's own data path (issue 24's
# rows), on one cloud in one run: Keystone and glance-api from Debian
# (scripts/openstack-cloud.sh, rbd stores on three clusters, each on its
# own loopback address), and a mount at central whose catalog is that
# Glance (`[catalog] backend = glance`, the stores from glance-api.conf).
#
# - Upload of a local file: mkdir + cp into the mount's central store
#   (imagefs writes, verifies and adds the location; Glance makes it
#   active) against Glance's POST /v2/images + PUT /v2/images/<id>/file
#   (curl), the page cache dropped before each.
# - Copy to 2 edges: the import xattr's copy-image through the mount
#   (imagefs copies and registers both) against Glance's copy-image of an
#   image of the same data (POST /v2/images/<id>/import), unshaped, then
#   with each edge's link shaped to MBIT Mbit/s each way.
#
#   bench/glance_catalog.sh [--runs N] [--size-mib M] [--wan-mbit MBIT]
#
# Prints a markdown table of medians and ratios, for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3
SIZE_MIB=256
WAN_MBIT=400
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --wan-mbit) WAN_MBIT=$2; shift ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done

source bench/prepare.sh
source bench/glance.sh
W=$(mktemp -d /tmp/imagefs-bench-glance-XXXXXX)
MNT=$W/mnt
cleanup() {
  scripts/wan-links.sh down
  mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
  scripts/openstack-cloud.sh stop "$W/cloud" || true
  scripts/ceph-cluster.sh stop "$W/clusters" || true
  rm -rf "$W"
}
trap cleanup EXIT

say "starting three clusters and the cloud"
scripts/ceph-cluster.sh start "$W/clusters" central dcn0@127.0.0.2 dcn1@127.0.0.3 \
  --memstore-bytes $((SIZE_MIB * 8 << 20)) > /dev/null
conf() { echo "$W/clusters/$1/ceph.conf"; }
for site in central dcn0 dcn1; do
  ceph -c "$(conf "$site")" osd pool create images 8 8 > /dev/null 2>&1
  ceph -c "$(conf "$site")" osd pool application enable images rbd > /dev/null
done
scripts/openstack-cloud.sh start "$W/cloud" --ceph "$W/clusters" images > /dev/null
set -a
source "$W/cloud/env"
set +a
GLANCE_HEADERS=(-H "X-Auth-Token: $(/usr/bin/python3 "$W/cloud/glance.py" token)")

printf '[catalog]\nbackend = glance\nos_cloud = imagefs-test\n' > "$W/imagefs-glance.conf"
mkdir -p "$MNT"
build/fs/imagefs --state-dir="$W/state" --log-file="$W/imagefs.log" \
  --config="$W/cloud/glance-api.conf" --config="$W/imagefs-glance.conf" "$MNT" -f &
for _ in $(seq 100); do [ -d "$MNT/images" ] && break; sleep 0.1; done
[ -d "$MNT/images" ] || { say "the mount did not start"; tail "$W/imagefs.log" >&2; exit 1; }

xattr() { getfattr --only-values -n "user.glance.$2" "$MNT/images/$1" 2>/dev/null; }
# wait_imported IMAGE: until its import list is empty (one process polling,
# as bench/run.sh does, not a getfattr per poll).
wait_imported() {
  python3 - "$MNT/images/$1" <<'PY'
import os, sys, time
while os.getxattr(sys.argv[1], "user.glance.os_glance_importing_to_stores"):
    time.sleep(0.005)
PY
}
fan_out() {  # IMAGE: the import xattr's copy-image to dcn0 and dcn1, until done
  setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0","dcn1"]}' \
    "$MNT/images/$1"
  wait_imported "$1"
  [ "$(xattr "$1" stores)" == central,dcn0,dcn1 ] || { say "fan-out failed"; exit 1; }
}
upload() {  # ID FILE: a new image through the mount
  mkdir "$MNT/images/$1"
  cp "$2" "$MNT/images/$1/stores/central/disk.raw"
  [ "$(xattr "$1" status)" == active ] || { say "upload through the mount failed"; exit 1; }
}

say "writing a ${SIZE_MIB} MiB image; warming up the OSDs"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/dense.img"
for site in central dcn0 dcn1; do
  rbd -c "$(conf "$site")" --no-progress import "$W/dense.img" images/warm-up
  rbd -c "$(conf "$site")" rm --no-progress images/warm-up
done
ours_id=$(cat /proc/sys/kernel/random/uuid)
upload "$ours_id" "$W/dense.img"
glance_id=$(glance_upload "$W/dense.img")

declare -A ours theirs
for run in $(seq "$RUNS"); do
  say "run $run of $RUNS"
  settle
  drop_caches
  id=$(cat /proc/sys/kernel/random/uuid)
  ours[upload]+=" $(seconds upload "$id" "$W/dense.img")"
  rmdir "$MNT/images/$id"
  settle
  drop_caches
  started=$(now)
  cpu=$(busy)
  id=$(glance_upload "$W/dense.img")
  theirs[upload]+=" $(since "$started" "$cpu")"
  glance_api DELETE "/v2/images/$id" > /dev/null
  for link in unshaped shaped; do
    if [ "$link" = shaped ]; then
      scripts/wan-links.sh up "$WAN_MBIT" 127.0.0.2 127.0.0.3
    fi
    settle
    ours[$link]+=" $(seconds fan_out "$ours_id")"
    rm "$MNT/images/$ours_id/stores/dcn0/disk.raw" "$MNT/images/$ours_id/stores/dcn1/disk.raw"
    settle
    theirs[$link]+=" $(seconds glance_copy "$glance_id" dcn0 dcn1)"
    glance_delete_from "$glance_id" dcn0 dcn1
    scripts/wan-links.sh down
  done
done

cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "# imagefs over Glance against Glance's own data path"
echo
echo "Made by \`bench/glance_catalog.sh --runs $RUNS --size-mib $SIZE_MIB --wan-mbit $WAN_MBIT\` on $(date -u +%Y-%m-%d)."
echo "Machine: $(nproc) cores ($cpu_model), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM."
echo "$(dpkg-query -W -f '${Package} ${Version}' glance-api), $(dpkg-query -W -f '${Package} ${Version}' keystone), $(ceph --version | cut -d' ' -f1-3); three clusters of one memstore OSD each."
echo "A ${SIZE_MIB} MiB image of random data; medians of $RUNS runs, every column in the same run on the same cloud."
echo
echo "| what | imagefs over Glance | Glance | ratio | target | met | CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
compare "upload: mkdir + cp into the mount, vs POST + PUT /file" "${ours[upload]}" \
  "${theirs[upload]}" "<=" 0.6
compare "copy to 2 edges, no shaping: the import xattr, vs Glance's copy-image" \
  "${ours[unshaped]}" "${theirs[unshaped]}" "<=" 0.3
compare "copy to 2 edges, $WAN_MBIT Mbit/s links: the import xattr, vs Glance's copy-image" \
  "${ours[shaped]}" "${theirs[shaped]}" "<=" 0.35
