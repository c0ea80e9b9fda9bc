#!/usr/bin/env bash
# The placement bench (issue 25, item 4): EDGES edge clusters, each behind
# a link of MBIT Mbit/s (tc HTB on lo, scripts/wan-links.sh), and IMAGES
# images of SIZE MiB uploaded into central at once with `placement = all`.
# Measures how long until every image is in every edge, against what each
# link needs for its bytes: the baseline, measured in the same run, is
# `rbd import` of one image over one link alone, times IMAGES (and the
# link's nominal time, bytes / rate, beside it). Also the bytes each link
# carried, and the daemon's peak RSS.
# Then one image alone placed to every edge (its rule set back to `all`),
# against the same baseline for one image, and the mount's start with the
# last edge's cluster stopped (SIGSTOP), until `ls /images` answers.
#
#   bench/placement.sh [--edges N] [--images N] [--size-mib M] [--mbit R] [--parallel P]
#
# Prints a markdown row to stdout; progress to stderr. Needs root, /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGES=8
IMAGES=6
SIZE_MIB=64
MBIT=100
PARALLEL=2
while [ $# -gt 0 ]; do
  case "$1" in
    --edges) EDGES=$2; shift ;;
    --images) IMAGES=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --mbit) MBIT=$2; shift ;;
    --parallel) PARALLEL=$2; shift ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
source bench/prepare.sh
WORK=$(mktemp -d /tmp/imagefs-bench-XXXXXX)
MNT=$WORK/mnt
DAEMON=
cleanup() {
  scripts/wan-links.sh down
  mountpoint -q "$MNT" && fusermount3 -uz "$MNT"
  [ -z "$DAEMON" ] || kill -9 "$DAEMON" 2>/dev/null || true
  scripts/ceph-cluster.sh stop "$WORK/clusters" || true
  [ -z "${BENCH_DAEMON_LOG:-}" ] || cp "$WORK/imagefs.log" "$BENCH_DAEMON_LOG" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

edges=() sites=(central) addresses=()
for i in $(seq 0 $((EDGES - 1))); do
  edges+=("dcn$i")
  addresses+=("127.0.0.$((i + 2))")
  sites+=("dcn$i@127.0.0.$((i + 2))")
done
say "starting $((EDGES + 1)) clusters"
scripts/ceph-cluster.sh start "$WORK/clusters" "${sites[@]}" --no-mgr \
  --memstore-bytes $(((IMAGES + 2) * SIZE_MIB * 2 << 20)) > /dev/null
conf() { echo "$WORK/clusters/$1/ceph.conf"; }
{
  echo "[DEFAULT]"
  echo "enabled_backends = central:rbd$(printf ', %s:rbd' "${edges[@]}")"
  echo "[glance_store]"
  echo "default_backend = central"
  for site in central "${edges[@]}"; do
    echo "[$site]"
    echo "rbd_store_ceph_conf = $(conf "$site")"
  done
  echo "[catalog]"
  echo "backend = rados"
  echo "[imagefs]"
  echo "placement = all"
  echo "placement_parallel = $PARALLEL"
} > "$WORK/imagefs.conf"
scripts/wan-links.sh up "$MBIT" "${addresses[@]}"
mkdir -p "$MNT"
"$IMAGEFS" --config="$WORK/imagefs.conf" --state-dir="$WORK/state" --log-file="$WORK/imagefs.log" \
  "$MNT" -f &
DAEMON=$!
for _ in $(seq 100); do [ -d "$MNT/images" ] && break; sleep 0.1; done

for i in $(seq "$IMAGES"); do head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/img$i"; done
link_bytes() { scripts/wan-links.sh bytes "$1" | cut -d' ' -f1; }

say "baseline: rbd import of one image over dcn0's link alone"
settle
base=$(seconds rbd -c "$(conf dcn0)" --no-progress import "$WORK/img1" images/baseline)
rbd -c "$(conf dcn0)" rm --no-progress images/baseline > /dev/null
base_wall=$(awk -v b="${base%%:*}" -v n="$IMAGES" 'BEGIN { printf "%.3f", b * n }')
nominal=$(awk -v s="$SIZE_MIB" -v n="$IMAGES" -v r="$MBIT" 'BEGIN { printf "%.3f", s * n * 8.388608 / r }')

say "$IMAGES images of $SIZE_MIB MiB uploaded at once, placement = all to $EDGES edges"
declare -A before
for address in "${addresses[@]}"; do before[$address]=$(link_bytes "$address"); done
ids=()
for i in $(seq "$IMAGES"); do
  ids+=("$(cat /proc/sys/kernel/random/uuid)")
  mkdir "$MNT/images/${ids[-1]}"
done
settle
start=$(now)
cpu=$(busy)
writers=()
for i in $(seq "$IMAGES"); do
  cp "$WORK/img$i" "$MNT/sites/central/${ids[$((i - 1))]}" &
  writers+=($!)
done
for pid in "${writers[@]}"; do wait "$pid"; done
uploaded=$(since "$start" "$cpu")
# The peak of the uploads, then (reset: clear_refs 5) of placement alone.
upload_rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$DAEMON/status")
echo 5 > "/proc/$DAEMON/clear_refs"
# Every image in every store: one process polling every 20 ms.
python3 - "$MNT" "$((EDGES + 1))" "${ids[@]}" <<'PY'
import os, sys, time
mnt, want, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
while True:
    done = sum(len(os.getxattr(f"{mnt}/images/{i}", "user.glance.stores").decode().split(",")) == want
               for i in ids)
    if done == len(ids):
        break
    time.sleep(0.02)
PY
placed=$(since "$start" "$cpu")
rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$DAEMON/status")
sent=()
for address in "${addresses[@]}"; do
  sent+=("$(awk -v a="$(link_bytes "$address")" -v b="${before[$address]}" -v s="$SIZE_MIB" -v n="$IMAGES" \
    'BEGIN { printf "%.3f", (a - b) / (s * n * 1048576) }')")
done
say "uploads done in ${uploaded%%:*} s; placed in ${placed%%:*} s (${placed#*:} CPU s)"
say "per link, of its images' bytes: ${sent[*]}"
echo "| placement = all of $IMAGES x $SIZE_MIB MiB to $EDGES edges at $MBIT Mbit/s (parallel $PARALLEL) vs rbd import x $IMAGES over one link | ${placed%%:*} s | $base_wall s | $(ratio "${placed%%:*}" "$base_wall") | <= 1.15 | $(met "$(ratio "${placed%%:*}" "$base_wall")" '<=' 1.15) | ${placed#*:} s / - |"
echo
echo "- Nominal link time for $IMAGES x $SIZE_MIB MiB at $MBIT Mbit/s: $nominal s (ratio $(ratio "${placed%%:*}" "$nominal"))."
echo "- Daemon peak RSS: $upload_rss MiB during the $IMAGES uploads at once, $rss MiB from then until placed (target < 300 MiB)."
echo "- Bytes over each link, as a fraction of its images: ${sent[*]}."

say "one image of $SIZE_MIB MiB alone placed to $EDGES edges"
single=$(cat /proc/sys/kernel/random/uuid)
mkdir "$MNT/images/$single"
setfattr -n user.imagefs.placement -v central "$MNT/images/$single"
cp "$WORK/img1" "$MNT/sites/central/$single"
settle
echo 5 > "/proc/$DAEMON/clear_refs"
start=$(now)
cpu=$(busy)
setfattr -x user.imagefs.placement "$MNT/images/$single"  # back to the default: all
python3 - "$MNT" "$((EDGES + 1))" "$single" <<'PY'
import os, sys, time
mnt, want, image = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while len(os.getxattr(f"{mnt}/images/{image}", "user.glance.stores").decode().split(",")) != want:
    time.sleep(0.02)
PY
one=$(since "$start" "$cpu")
one_rss=$(awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$DAEMON/status")
base_one=${base%%:*}
echo "| one image of $SIZE_MIB MiB placed alone to $EDGES edges at $MBIT Mbit/s vs rbd import over one link | ${one%%:*} s | $base_one s | $(ratio "${one%%:*}" "$base_one") | - | - | ${one#*:} s / - |"
echo "- Daemon peak RSS while placing the one image: $one_rss MiB."

say "the mount's start with ${edges[-1]} stopped"
kill "$DAEMON"
wait "$DAEMON" || true
DAEMON=
stopped=()
for pidfile in "$WORK/clusters/${edges[-1]}"/run/*.pid; do stopped+=("$(cat "$pidfile")"); done
kill -STOP "${stopped[@]}"
start=$EPOCHREALTIME
"$IMAGEFS" --config="$WORK/imagefs.conf" --state-dir="$WORK/state" --log-file="$WORK/imagefs.log" \
  "$MNT" -f &
DAEMON=$!
until ls "$MNT/images" > /dev/null 2>&1 && [ -n "$(ls "$MNT/images")" ]; do sleep 0.005; done
started=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
kill -CONT "${stopped[@]}"
echo "- The mount's start with ${edges[-1]}'s cluster stopped, until \`ls /images\` lists: $started s."
