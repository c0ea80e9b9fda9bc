#!/usr/bin/env bash
# Inspection at scale on the rados catalog, alone (the full bench/run.sh
# measures it too, after its copies): one cluster (central) for the
# catalog, file stores, N image records; times `xargs mkdir` of them,
# `ls -l /images` twice and `getfattr -d` of every image (one process)
# twice, and, for the floor, the cost of one getxattr that reads no
# catalog (user.imagefs.inodes on the root), beside the same call against
# the least a FUSE server can be (bench/fuse_floor.c: a constant answer).
#
#   bench/inspect_scale.sh [N]      N defaults to 10000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
W=$(mktemp -d /tmp/imagefs-inspect-XXXXXX); mkdir -p $W/mnt
scripts/ceph-cluster.sh start $W/clusters central > /dev/null
cat > $W/imagefs.conf <<CONF
[DEFAULT]
enabled_backends = central:file, dcn0:file, dcn1:file
[glance_store]
default_backend = central
[central]
filesystem_store_datadir = $W/stores/central
[dcn0]
filesystem_store_datadir = $W/stores/dcn0
[dcn1]
filesystem_store_datadir = $W/stores/dcn1
[catalog]
backend = rados
rados_ceph_conf = $W/clusters/central/ceph.conf
CONF
build/fs/imagefs --config=$W/imagefs.conf --state-dir=$W/state --log-file=$W/log $W/mnt
seq "$N" | while read -r _; do cat /proc/sys/kernel/random/uuid; done > $W/ids
s=$EPOCHREALTIME; (cd $W/mnt/images && xargs mkdir < $W/ids); echo "mkdir $N: $(awk -v a=$s -v b=$EPOCHREALTIME 'BEGIN{print b-a}') s"
for i in 1 2; do s=$EPOCHREALTIME; ls -l $W/mnt/images > /dev/null; echo "ls -l: $(awk -v a=$s -v b=$EPOCHREALTIME 'BEGIN{print b-a}') s"; done
sleep 2
for i in 1 2; do s=$EPOCHREALTIME; (cd $W/mnt/images && xargs getfattr -d < $W/ids > /dev/null 2>&1); echo "getfattr -d of every image: $(awk -v a=$s -v b=$EPOCHREALTIME 'BEGIN{print b-a}') s"; sleep 2; done
gcc -O2 -o $W/fuse_floor bench/fuse_floor.c $(pkg-config --cflags --libs fuse3)
mkdir $W/floor
$W/fuse_floor -f $W/floor & sleep 1
python3 - "$W/mnt" "$W/floor" <<'PY'
import os, sys, time
def per_call(path, name):
    n = 20000
    started = time.perf_counter()
    for _ in range(n): os.getxattr(path, name)
    return (time.perf_counter() - started) / n * 1e6
imagefs = per_call(sys.argv[1], "user.imagefs.inodes")
floor = per_call(sys.argv[2], "user.x")
print(f"one getxattr without the catalog, imagefs: {imagefs:.1f} us; a FUSE server that answers a constant: {floor:.1f} us")
print(f"300,000 calls (getfattr -d of 10,000 images) at the constant server's cost: {floor * 0.3:.1f} s")
PY
fusermount3 -u $W/floor
fusermount3 -u $W/mnt; sleep 1
scripts/ceph-cluster.sh stop $W/clusters; rm -rf $W
