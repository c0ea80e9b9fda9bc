#!/usr/bin/env bash
# The benchmark: imagefs against its peers, side by side in one run on the
# same three throwaway clusters (central 127.0.0.1, dcn0 127.0.0.2, dcn1
# 127.0.0.3; scripts/ceph-cluster.sh): what an operator scripts with rbd,
# Glance's copy path done by hand (export to a staging file, then import
# into each store in turn), and Glance's own copy-image (Debian's
# glance-api on the same clusters, bench/glance.sh). The daemon, the rbd
# tools and Glance sit at central; the edges are behind their links.
# Builds imagefs, measures, prints a markdown table of medians and ratios
# to stdout (progress goes to stderr).
#
#   bench/run.sh [--runs N] [--size-mib M] [--images N] [--wan-mbit MBIT] [--no-glance]
#
#   --wan-mbit MBIT  each edge's link shaped to MBIT Mbit/s each way (tc HTB
#                    on lo, scripts/wan-links.sh); the catalog steps, which
#                    no link touches, are left out
#   --no-glance      without Glance's own copy-image (it is installed with
#                    apt-get when missing)
#
# BENCH_DAEMON_LOG=FILE keeps the daemon's log there.
#
# Needs root and /dev/fuse (it mounts), and RAM for the images (memstore
# keeps every copy in memory: up to 8 x size-mib per cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3
SIZE_MIB=1024
IMAGES=10000
WAN_MBIT=0
GLANCE=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --images) IMAGES=$2; shift ;;
    --wan-mbit) WAN_MBIT=$2; shift ;;
    --no-glance) GLANCE=no ;;
    *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
[ "$WAN_MBIT" = 0 ] || IMAGES=0

source bench/prepare.sh
source bench/glance.sh
WORK=$(mktemp -d /tmp/imagefs-bench-XXXXXX)
MNT=$WORK/mnt
DAEMON=
cleanup() {
  scripts/wan-links.sh down
  glance_stop
  mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
  mountpoint -q "$WORK/floor" && fusermount3 -uz "$WORK/floor"
  [ -z "$DAEMON" ] || kill -9 "$DAEMON" 2>/dev/null || true
  scripts/ceph-cluster.sh stop "$WORK/clusters" || true
  [ -z "${BENCH_DAEMON_LOG:-}" ] || cp "$WORK/imagefs.log" "$BENCH_DAEMON_LOG" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

floor_cat=
declare -A ADDRESS=([central]=127.0.0.1 [dcn0]=127.0.0.2 [dcn1]=127.0.0.3)
say "starting three clusters"
scripts/ceph-cluster.sh start "$WORK/clusters" central dcn0@127.0.0.2 dcn1@127.0.0.3 \
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
# The FUSE read floor: bench/fuse_floor.c serves a file of the image's
# size from memory, doing no work, with imagefs's request size and
# read-ahead (its bdi raised as imagefs raises its own).
gcc -O2 -o "$WORK/fuse_floor" bench/fuse_floor.c $(pkg-config --cflags --libs fuse3)
mkdir "$WORK/floor"
FUSE_FLOOR_FILE_BYTES=$((SIZE_MIB << 20)) "$WORK/fuse_floor" -f "$WORK/floor" &
for _ in $(seq 100); do [ -e "$WORK/floor/data" ] && break; sleep 0.1; done
echo 1024 > "/sys/class/bdi/$(mountpoint -d "$WORK/floor")/read_ahead_kb"
if [ "$GLANCE" = yes ]; then
  say "starting glance-api"
  glance_start "$WORK/glance" 19292 central="$(conf central)" dcn0="$(conf dcn0)" dcn1="$(conf dcn1)"
fi

xattr() { getfattr --only-values -n "user.glance.$2" "$MNT/images/$1" 2>/dev/null; }
# Bytes sent so far on SITE's link toward it (0 when no link is shaped).
link_bytes() {
  if [ "$WAN_MBIT" = 0 ]; then echo 0; else scripts/wan-links.sh bytes "${ADDRESS[$1]}" | cut -d' ' -f1; fi
}
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
# Glance's copy path by hand: the image to a staging file at central, then
# into each target in turn (the source document: "sequentially imports
# image data into stores"). Sparse both ways, as rbd does.
glance_style() {  # IMAGE TARGET-SITE...
  local id=$1
  shift
  rbd_at central export "images/$id@snap" "$WORK/staging.img"
  for site in "$@"; do rbd_at "$site" import "$WORK/staging.img" images/baseline; done
  rm "$WORK/staging.img"
}
remove_baselines() {  # SITE...
  for site in "$@"; do rbd_at "$site" rm images/baseline; done
}
fan_out() {  # IMAGE: one import into dcn0 and dcn1, until done
  setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0","dcn1"]}' \
    "$MNT/images/$1"
  wait_imported "$1"
  [ "$(xattr "$1" stores)" == central,dcn0,dcn1 ] || { say "fan-out failed"; exit 1; }
}

say "writing the test images (${SIZE_MIB} MiB dense, and sparse with 10% data)"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/dense.img"
truncate -s $((SIZE_MIB << 20)) "$WORK/sparse.img"
for chunk in $(seq 0 10 $((SIZE_MIB / 4 - 1))); do
  dd if=/dev/urandom of="$WORK/sparse.img" bs=4M count=1 seek="$chunk" conv=notrunc status=none
done
# A memstore OSD's first write into memory it never held costs it several
# times the CPU of later ones (page faults): every cluster holds and frees
# a dense image once first, so that no measured step pays for that.
say "warming up the OSDs"
for site in central dcn0 dcn1; do
  rbd_at "$site" import "$WORK/dense.img" images/warm-up
  rbd_at "$site" rm images/warm-up
done
declare -A image glance_image
for kind in dense sparse; do
  image[$kind]=$(cat /proc/sys/kernel/random/uuid)
  mkdir "$MNT/images/${image[$kind]}"
  cp --sparse=always "$WORK/$kind.img" "$MNT/sites/central/${image[$kind]}"
  [ "$GLANCE" = no ] || glance_image[$kind]=$(glance_upload "$WORK/$kind.img")
done
if [ "$WAN_MBIT" != 0 ]; then
  say "shaping dcn0's and dcn1's links to $WAN_MBIT Mbit/s each way"
  scripts/wan-links.sh up "$WAN_MBIT" "${ADDRESS[dcn0]}" "${ADDRESS[dcn1]}"
fi

# ours[ROW], peer[ROW], glance[ROW]: "wall:cpu" per run.
declare -A ours peer glance
utilisation=()  # per run: "dcn0% dcn1%" of the dense copy to both edges
sent=()         # per run: bytes to dcn0 of the sparse copy to both edges, imagefs and by hand
peaks=()        # per run: the daemon's peak RSS (MiB) during the dense copy to both edges
hashes=
for run in $(seq "$RUNS"); do
  say "run $run of $RUNS"
  for kind in dense sparse; do
    id=${image[$kind]}
    # One edge: cp, against rbd export | rbd import.
    settle
    ours[one_$kind]+=" $(seconds cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id")"
    rm "$MNT/sites/dcn0/$id"
    settle
    peer[one_$kind]+=" $(seconds export_import central "$id" dcn0 baseline)"
    remove_baselines dcn0
    # Both edges in one import, against Glance's path by hand.
    settle
    echo 5 > "/proc/$DAEMON/clear_refs"  # resets the peak RSS (VmHWM)
    before=("$(link_bytes dcn0)" "$(link_bytes dcn1)")
    start=$(now)
    cpu=$(busy)
    fan_out "$id"
    took=$(since "$start" "$cpu")
    ours[two_$kind]+=" $took"
    after=("$(link_bytes dcn0)" "$(link_bytes dcn1)")
    ours_sent=$((after[0] - before[0]))
    if [ "$kind" = dense ]; then
      peaks+=("$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$DAEMON/status")")
      [ "$WAN_MBIT" = 0 ] || utilisation+=("$(awk -v t="${took%%:*}" -v m="$WAN_MBIT" \
        -v a="${before[0]}" -v b="${after[0]}" -v c="${before[1]}" -v d="${after[1]}" \
        'BEGIN { r = m * 1e6 / 8 * t; printf "%.0f%% %.0f%%", (b - a) / r * 100, (d - c) / r * 100 }')")
    fi
    rm "$MNT/sites/dcn0/$id" "$MNT/sites/dcn1/$id"
    settle
    before=("$(link_bytes dcn0)")
    peer[two_$kind]+=" $(seconds glance_style "$id" dcn0 dcn1)"
    [ "$kind" = dense ] || sent+=("$ours_sent:$(($(link_bytes dcn0) - before[0]))")
    remove_baselines dcn0 dcn1
    if [ "$kind" = dense ] && [ "$WAN_MBIT" = 0 ]; then
      # Reading once must cost less CPU than two copies in a row.
      settle
      start=$(now)
      cpu=$(busy)
      export_import central "$id" dcn0 baseline
      export_import central "$id" dcn1 baseline
      peer[in_a_row]+=" $(since "$start" "$cpu")"
      remove_baselines dcn0 dcn1
    fi
    if [ "$GLANCE" = yes ]; then
      for targets in "dcn0" "dcn0 dcn1"; do
        settle
        # shellcheck disable=SC2086
        glance[$(wc -w <<< "$targets")_$kind]+=" $(seconds glance_copy "${glance_image[$kind]}" $targets)"
        # shellcheck disable=SC2086
        glance_delete_from "${glance_image[$kind]}" $targets
      done
    fi
  done
  # cat through the mount vs rbd export, both to /dev/null, caches dropped;
  # rbd's libraries read back in first (rbd info), as the daemon has its own
  # loaded: the row compares moving the data, not reading code from disk.
  # Each after settle, as every step: the copies' deletes just before would
  # otherwise still run on the edges' OSDs during the first.
  settle
  drop_caches
  ours[cat]+=" $(seconds cat "$MNT/sites/central/${image[dense]}")"
  settle
  drop_caches
  rbd -c "$(conf central)" info "images/${image[dense]}@snap" > /dev/null
  peer[cat]+=" $(seconds rbd_at central export "images/${image[dense]}@snap" -)"
  drop_caches
  floor_cat+=" $(seconds cat "$WORK/floor/data")"
  # Upload of a local file: cp vs rbd import, and what Glance's checksums
  # alone cost: md5 and sha512 of the file on two threads at once (rbd
  # import computes neither; imagefs must, docs/contract.md).
  upload=$(cat /proc/sys/kernel/random/uuid)
  mkdir "$MNT/images/$upload"
  drop_caches
  ours[upload]+=" $(seconds cp "$WORK/dense.img" "$MNT/sites/central/$upload")"
  rmdir "$MNT/images/$upload"
  drop_caches
  peer[upload]+=" $(seconds rbd_at central import "$WORK/dense.img" images/baseline)"
  remove_baselines central
  drop_caches
  hashes+=" $(seconds sh -c "openssl dgst -md5 '$WORK/dense.img' & openssl dgst -sha512 '$WORK/dense.img'; wait")"
done
scripts/wan-links.sh down

if [ "$IMAGES" -gt 0 ]; then
  say "creating $IMAGES image records"
  seq "$IMAGES" | while read -r _; do cat /proc/sys/kernel/random/uuid; done > "$WORK/ids"
  (cd "$MNT/images" && xargs mkdir < "$WORK/ids")
  listing=()
  for _ in $(seq "$RUNS"); do listing+=("$(seconds ls -l "$MNT/images")"); done
  sleep 2
  xattrs=("$(seconds sh -c "cd '$MNT/images' && xargs getfattr -d < '$WORK/ids'")")
  rss_mib=$(( $(ps -o rss= -p "$DAEMON") / 1024 ))
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
fi

if [ "$WAN_MBIT" = 0 ]; then
  link="no shaping"
  one_target=("<=" 0.9)
  two_target=()
  sparse_target=()
else
  link="$WAN_MBIT Mbit/s"
  one_target=("<=" 0.95)
  two_target=("<=" 0.55)
  sparse_target=("<=" 0.6)
fi

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "# imagefs benchmark, $link"
echo
args="--runs $RUNS --size-mib $SIZE_MIB"
[ "$WAN_MBIT" = 0 ] && args+=" --images $IMAGES" || args+=" --wan-mbit $WAN_MBIT"
[ "$GLANCE" = yes ] || args+=" --no-glance"
echo "Made by \`bench/run.sh $args\` on $(date -u +%Y-%m-%d)."
echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r);"
echo "$(ceph --version | cut -d' ' -f1-3), three clusters of one mon and one memstore OSD, each on its own loopback address."
[ "$WAN_MBIT" = 0 ] || echo "Links: dcn0's and dcn1's traffic shaped to $WAN_MBIT Mbit/s each way (tc HTB on lo); central's not."
echo "Images: ${SIZE_MIB} MiB dense (random) and ${SIZE_MIB} MiB sparse (random 4 MiB pieces, 10%)."
echo "Medians of $RUNS runs; every column measured in the same run on the same clusters."
echo
echo "CPU: busy CPU seconds of the whole machine during the step (median), imagefs / peer; with 2 cores a step takes at least half its CPU seconds."
echo
echo "| what ($link) | imagefs | peer | ratio | target | met | CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
compare "copy to 1 edge, dense, vs rbd export \\| rbd import" "${ours[one_dense]}" "${peer[one_dense]}" "${one_target[@]}"
compare "copy to 1 edge, 10% data, vs rbd export \\| rbd import" "${ours[one_sparse]}" "${peer[one_sparse]}"
compare "copy to 2 edges, dense, vs Glance-style (staging file, then each store in turn)" \
  "${ours[two_dense]}" "${peer[two_dense]}" "${two_target[@]}"
compare "copy to 2 edges, 10% data, vs Glance-style" "${ours[two_sparse]}" "${peer[two_sparse]}" \
  "${sparse_target[@]}"
if [ "$WAN_MBIT" = 0 ]; then
  o=$(median 2 ${ours[two_dense]})
  b=$(median 2 ${peer[in_a_row]})
  r=$(ratio "$o" "$b")
  row "copy to 2 edges, dense, vs two export \\| import in a row: CPU seconds" \
    "$(median 1 ${ours[two_dense]})" "$(median 1 ${peer[in_a_row]})" "$r (CPU)" "<= 0.8" \
    "$(met "$r" "<=" 0.8)" "$o" "$b"
fi
if [ "$GLANCE" = yes ]; then
  for spec in "1_dense:1 edge, dense" "1_sparse:1 edge, 10% data" "2_dense:2 edges, dense" \
              "2_sparse:2 edges, 10% data"; do
    key=${spec%%:*}
    ours_key=$([ "${key%%_*}" = 1 ] && echo "one_${key#*_}" || echo "two_${key#*_}")
    compare "copy to ${spec#*:}, vs Glance's own copy-image" "${ours[$ours_key]}" "${glance[$key]}"
  done
fi
h=$(median 1 $hashes)
b=$(median 1 ${peer[upload]})
floor=$(awk -v h="$h" -v b="$b" 'BEGIN { print (h > b) ? h : b }')
o=$(median 1 ${ours[upload]})
r=$(ratio "$o" "$floor")
row "upload (cp of a local file) vs the slower of its floors: rbd import, md5 + sha512 (openssl, 2 threads)" \
  "$o" "$floor" "$r (time)" "<= 1.3" "$(met "$r" "<=" 1.3)" "$(median 2 ${ours[upload]})" \
  "$(median 2 ${peer[upload]}) (rbd import), $(median 2 $hashes) (hashes)"
o=$(median 1 ${ours[cat]})
b=$(median 1 ${peer[cat]})
r=$(ratio "$b" "$o")
row "cat through the mount vs rbd export, to /dev/null" "$o" "$b" "$r (throughput)" ">= 0.8" \
  "$(met "$r" ">=" 0.8)" "$(median 2 ${ours[cat]})" "$(median 2 ${peer[cat]})"
echo
echo "- Upload floors: rbd import $(median 1 ${peer[upload]}) s, md5 + sha512 $h s."
# What 2 cores allow: the two floors' CPU seconds, spread over both cores.
awk -v h="$(median 2 $hashes)" -v i="$(median 2 ${peer[upload]})" -v f="$floor" 'BEGIN {
  printf "- Upload on 2 cores: md5 + sha512 take %.2f CPU s and rbd import %.2f, so both at once take at least %.2f s: %.2f of the slower floor, before any FUSE write.\n", h, i, (h + i) / 2, (h + i) / 2 / f }'
f=$(median 1 $floor_cat)
echo "- cat through a FUSE server that does no work (bench/fuse_floor.c: a file served from memory, the same request size and read-ahead): $f s, $(median 2 $floor_cat) CPU s."
peak=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
echo "- Daemon peak RSS during the dense copy to both edges: ${peaks[*]} MiB (target <= 300 MiB: $([ "$peak" -le 300 ] && echo met || echo NOT met))."
if [ "$WAN_MBIT" != 0 ]; then
  echo "- Each edge's link busy during the dense copy to both edges (dcn0 dcn1, per run): $(printf '%s; ' "${utilisation[@]}" | sed 's/; $//') (target >= 85%)."
  echo "- Bytes sent to dcn0 during the 10% data copy to both edges, imagefs:by hand, per run: ${sent[*]}."
fi
if [ "$IMAGES" -gt 0 ]; then
  l=$(median 1 "${listing[@]}")
  echo
  echo "Catalog of $count images (RADOS on central): \`ls -l /images\` $l s (target < 1 s: $(awk -v l="$l" 'BEGIN { print (l < 1) ? "met" : "NOT met" }')); \`getfattr -d\` of every image (one process) $(median 1 "${xattrs[@]}") s; daemon RSS $rss_mib MiB."
  echo
  echo "\`ls -lR\` of the mount, 20 passes: inodes kept $(echo "${inode_counts[@]}" | tr ' ' '\n' | sort -n | head -1) to $(echo "${inode_counts[@]}" | tr ' ' '\n' | sort -n | tail -1) (first ${inode_counts[0]}, last ${inode_counts[19]}); daemon RSS ${rss_passes[0]} MiB at the first pass, ${rss_passes[19]} MiB at the last; $inodes_dropped inodes once the kernel dropped its caches."
  echo
  echo "Recovery of $IMAGES images on rbd (40 damaged): ${recovery:-FAILED} s."
fi
