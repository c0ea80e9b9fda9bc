#!/usr/bin/env bash
# The benchmark: imagefs against what an operator scripts with rbd, side by
# side in one run on the same three throwaway clusters (central, dcn0, dcn1;
# scripts/ceph-cluster.sh). Builds imagefs, measures, prints a markdown
# table of medians and ratios to stdout (progress goes to stderr).
#
#   bench/run.sh [--runs N] [--size-mib M] [--images N]
#
# Needs root and /dev/fuse (it mounts), and RAM for the images (memstore
# keeps every copy in memory: about 8 x size-mib).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5
SIZE_MIB=1024
IMAGES=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --images) IMAGES=$2; shift ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done

say() { echo "bench: $*" >&2; }
scripts/install-deps.sh >&2
scripts/build.sh >&2
IMAGEFS=$PWD/build/fs/imagefs
WORK=$(mktemp -d /tmp/imagefs-bench-XXXXXX)
MNT=$WORK/mnt
DAEMON=
cleanup() {
  mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
  [ -z "$DAEMON" ] || kill -9 "$DAEMON" 2>/dev/null || true
  scripts/ceph-cluster.sh stop "$WORK/clusters" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "starting three clusters"
scripts/ceph-cluster.sh start "$WORK/clusters" central dcn0 dcn1 \
  --memstore-bytes $((SIZE_MIB * 8 << 20)) > /dev/null
conf() { echo "$WORK/clusters/$1/ceph.conf"; }
rbd_at() {
  local site=$1
  shift
  rbd -c "$(conf "$site")" --no-progress "$@"
}
cat > "$WORK/imagefs.conf" <<CONF
[DEFAULT]
enabled_backends = central:rbd, dcn0:rbd, dcn1:rbd
[glance_store]
default_backend = central
[central]
rbd_store_ceph_conf = $(conf central)
[dcn0]
rbd_store_ceph_conf = $(conf dcn0)
[dcn1]
rbd_store_ceph_conf = $(conf dcn1)
[catalog]
backend = rados
CONF
mkdir -p "$MNT"
"$IMAGEFS" --config="$WORK/imagefs.conf" --state-dir="$WORK/state" --log-file="$WORK/imagefs.log" \
  "$MNT" -f &
DAEMON=$!
for _ in $(seq 100); do [ -d "$MNT/images" ] && break; sleep 0.1; done

now() { date +%s.%N; }
# The machine's busy CPU seconds so far (every process: imagefs, the OSDs,
# rbd, cp; /proc/stat counts in USER_HZ = 100ths).
busy() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat; }
# since START-TIME START-BUSY: "wall:cpu" seconds from then to now.
since() {
  awk -v a="$1" -v b="$(now)" -v c="$2" -v d="$(busy)" 'BEGIN { printf "%.3f:%.2f", b - a, d - c }'
}
# seconds COMMAND...: runs it, prints "wall:cpu" seconds it took.
seconds() {
  local start cpu
  start=$(now)
  cpu=$(busy)
  "$@" > /dev/null
  since "$start" "$cpu"
}
# median FIELD WALL:CPU...: the median of field 1 (wall) or 2 (cpu).
median() {
  local field=$1
  shift
  printf '%s\n' "$@" | cut -d: -f"$field" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Lets the OSDs finish what the last step left them (deletes, trims), so
# that it is not counted against the next measurement.
settle() { sync; sleep 1; }
xattr() { getfattr --only-values -n "user.glance.$2" "$MNT/images/$1" 2>/dev/null; }
# wait_imported IMAGE: until its import list is empty. One process polling
# every 5 ms (python3 comes with ceph-common): a getfattr process per poll
# would cost CPU the measured copy competes for on 2 cores.
wait_imported() {
  python3 - "$MNT/images/$1" <<'PY'
import os, sys, time
while os.getxattr(sys.argv[1], "user.glance.os_glance_importing_to_stores"):
    time.sleep(0.005)
PY
}
export_import() {  # SOURCE-SITE IMAGE TARGET-SITE NAME
  rbd_at "$1" export "images/$2@snap" - | rbd_at "$3" import - "images/$4"
}

say "writing the test images (${SIZE_MIB} MiB dense, and sparse with 10% data)"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/dense.img"
truncate -s $((SIZE_MIB << 20)) "$WORK/sparse.img"
for chunk in $(seq 0 10 $((SIZE_MIB / 4 - 1))); do
  dd if=/dev/urandom of="$WORK/sparse.img" bs=4M count=1 seek="$chunk" conv=notrunc status=none
done
dense=$(cat /proc/sys/kernel/random/uuid)
sparse=$(cat /proc/sys/kernel/random/uuid)
mkdir "$MNT/images/$dense" "$MNT/images/$sparse"
cp "$WORK/dense.img" "$MNT/sites/central/$dense"
cp --sparse=always "$WORK/sparse.img" "$MNT/sites/central/$sparse"

declare -A ours base
hashes=
for run in $(seq "$RUNS"); do
  say "run $run of $RUNS"
  # 1, 2. cp to an edge, dense and sparse, vs rbd export | rbd import.
  for kind in dense sparse; do
    id=${!kind}
    settle
    ours[$kind]+=" $(seconds cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id")"
    rm "$MNT/sites/dcn0/$id"
    settle
    base[$kind]+=" $(seconds export_import central "$id" dcn0 baseline)"
    rbd_at dcn0 rm images/baseline
  done
  # 3. Two edges at once (one Glance import) vs two export | import in a row.
  settle
  start=$(now)
  cpu=$(busy)
  setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0","dcn1"]}' \
    "$MNT/images/$dense"
  wait_imported "$dense"
  ours[fanout]+=" $(since "$start" "$cpu")"
  [ "$(xattr "$dense" stores)" == central,dcn0,dcn1 ] || { say "fan-out failed"; exit 1; }
  rm "$MNT/sites/dcn0/$dense" "$MNT/sites/dcn1/$dense"
  settle
  start=$(now)
  cpu=$(busy)
  export_import central "$dense" dcn0 baseline
  export_import central "$dense" dcn1 baseline
  base[fanout]+=" $(since "$start" "$cpu")"
  rbd_at dcn0 rm images/baseline
  rbd_at dcn1 rm images/baseline
  # 4. cat through the mount vs rbd export, both to /dev/null, caches dropped.
  drop_caches
  ours[cat]+=" $(seconds cat "$MNT/sites/central/$dense")"
  drop_caches
  base[cat]+=" $(seconds rbd_at central export "images/$dense@snap" -)"
  # 5. Upload of a local file: cp vs rbd import.
  upload=$(cat /proc/sys/kernel/random/uuid)
  mkdir "$MNT/images/$upload"
  drop_caches
  ours[upload]+=" $(seconds cp "$WORK/dense.img" "$MNT/sites/central/$upload")"
  rmdir "$MNT/images/$upload"
  drop_caches
  base[upload]+=" $(seconds rbd_at central import "$WORK/dense.img" images/baseline)"
  rbd_at central rm images/baseline
  # What Glance's checksums alone cost: md5 and sha512 of the file, on two
  # threads at once (rbd import computes neither; imagefs must, SPEC).
  hashes+=" $(seconds sh -c "openssl dgst -md5 '$WORK/dense.img' & openssl dgst -sha512 '$WORK/dense.img'; wait")"
done

say "creating $IMAGES image records"
seq "$IMAGES" | while read -r _; do cat /proc/sys/kernel/random/uuid; done > "$WORK/ids"
(cd "$MNT/images" && xargs mkdir < "$WORK/ids")
listing=()
for _ in $(seq "$RUNS"); do listing+=("$(seconds ls -l "$MNT/images")"); done
# About 170,000 getxattr calls, each one catalog read: once is enough.
xattrs=("$(seconds sh -c "cd '$MNT/images' && xargs getfattr -d < '$WORK/ids'")")
rss_mib=$(( $(ps -o rss= -p "$DAEMON") / 1024 ))
peak_mib=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$DAEMON/status")
count=$(ls "$MNT/images" | wc -l)

# The inodes the daemon keeps follow what the kernel holds (lookup counts
# and forget): 20 passes of ls -lR over the whole catalog, then the kernel
# drops its caches.
say "20 passes of ls -lR over $count images"
inode_counts=()
rss_passes=()
for _ in $(seq 20); do
  ls -lR "$MNT" > /dev/null
  inode_counts+=("$(getfattr --absolute-names --only-values -n user.imagefs.inodes "$MNT")")
  rss_passes+=("$(( $(ps -o rss= -p "$DAEMON") / 1024 ))")
done
echo 2 > /proc/sys/vm/drop_caches
sleep 1
inodes_dropped=$(getfattr --absolute-names --only-values -n user.imagefs.inodes "$MNT")

# Recovery at scale: $IMAGES active images with copies at central, 40
# damaged, repaired by Recover() (tests/ceph/recovery_scale_test.cc).
say "recovery of $IMAGES images on rbd"
recovery=$(IMAGEFS_TEST_CEPH_DIR="$WORK/clusters" IMAGEFS_RECOVERY_IMAGES="$IMAGES" \
  build/tests/recovery_scale_test 2>&1 | sed -n 's/^recovery of [0-9]* images on rbd: \([0-9.]*\) s.*/\1/p')

row() {  # NAME OURS-MEDIAN BASE-MEDIAN RATIO TARGET MET OURS-CPU BASE-CPU
  printf '| %s | %s s | %s s | %s | %s | %s | %s s / %s s |\n' "$@"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
met() { awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN { print ((op == "<=" ? r <= t : r >= t) ? "yes" : "NO") }'; }

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "# imagefs benchmark"
echo
echo "Made by \`bench/run.sh --runs $RUNS --size-mib $SIZE_MIB --images $IMAGES\` on $(date -u +%Y-%m-%d)."
echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r);"
echo "$(ceph --version | cut -d' ' -f1-3), three clusters of one mon and one memstore OSD on loopback."
echo "Images: ${SIZE_MIB} MiB dense (random) and ${SIZE_MIB} MiB sparse (random 4 MiB chunks, 10%)."
echo "Medians of $RUNS runs; baseline and imagefs measured in the same run on the same clusters."
echo
echo "CPU: busy CPU seconds of the whole machine during the step (median), imagefs / baseline; with 2 cores a step takes at least half its CPU seconds."
echo
echo "| what | imagefs | baseline | ratio | target | met | CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in "dense:cp central -> dcn0, dense vs rbd export \\| rbd import:<=:0.9" \
            "sparse:cp central -> dcn0, 10% data vs rbd export \\| rbd import:<=:0.5" \
            "fanout:copy to dcn0 and dcn1 at once vs two export \\| import in a row:<=:0.6" \
            "upload:cp of a local file vs rbd import:<=:1.2"; do
  IFS=: read -r key name op target <<< "$spec"
  o=$(median 1 ${ours[$key]})
  b=$(median 1 ${base[$key]})
  r=$(ratio "$o" "$b")
  row "$name" "$o" "$b" "$r (time)" "$op $target" "$(met "$r" "$op" "$target")" \
    "$(median 2 ${ours[$key]})" "$(median 2 ${base[$key]})"
done
h=$(median 1 $hashes)
b=$(median 1 ${base[upload]})
row "floor of the upload: md5 and sha512 of the file (openssl, 2 threads)" "$h" "$b" \
  "$(ratio "$h" "$b") (time)" "-" "-" "$(median 2 $hashes)" "$(median 2 ${base[upload]})"
o=$(median 1 ${ours[cat]})
b=$(median 1 ${base[cat]})
r=$(ratio "$b" "$o")
row "cat through the mount vs rbd export, to /dev/null" "$o" "$b" "$r (throughput)" ">= 0.7" \
  "$(met "$r" ">=" 0.7)" "$(median 2 ${ours[cat]})" "$(median 2 ${base[cat]})"
l=$(median 1 "${listing[@]}")
x=$(median 1 "${xattrs[@]}")
echo
echo "Catalog of $count images (RADOS on central): \`ls -l /images\` $l s (target < 1 s: $(awk -v l="$l" 'BEGIN { print (l < 1) ? "met" : "NOT met" }')); \`getfattr -d\` of every image (one process) $x s; daemon RSS $rss_mib MiB (peak $peak_mib MiB, during the copies)."
echo
echo "\`ls -lR\` of the mount, 20 passes: inodes kept $(echo "${inode_counts[@]}" | tr ' ' '\n' | sort -n | head -1) to $(echo "${inode_counts[@]}" | tr ' ' '\n' | sort -n | tail -1) (first ${inode_counts[0]}, last ${inode_counts[19]}); daemon RSS ${rss_passes[0]} MiB at the first pass, ${rss_passes[19]} MiB at the last; $inodes_dropped inodes once the kernel dropped its caches."
echo
echo "Recovery of $IMAGES images on rbd (40 damaged): ${recovery:-FAILED} s."
