# How often changes of the shared (rados) catalog collide: every record
# change compare-and-sets the record and the counter of one of the
# catalog's 16 change logs (catalog/rados_catalog.cc), so two changes made
# at once collide only when their images share a log. Two daemons (as at
# two sites) upload 16 images at once, 8 each, then copy all 16 to dcn0 at
# once; their metrics count the changes stored and the attempts that lost
# a race. Fewer than 0.1 retries per change (it was 0.32 with one log).
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || { echo "SKIP: the embedded catalog is not shared"; exit 0; }
write_config "metrics_file = $WORK/metrics.prom" "metrics_interval = 1"
mount_imagefs
sed -i "s|^metrics_file = .*|metrics_file = $WORK/metrics2.prom|" "$WORK/imagefs.conf"
mount_second

random_file "$WORK/img" 8
ids=()
for i in $(seq 16); do
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  ids+=("$id")
done
mount_of() { if [ $(($1 % 2)) -eq 0 ]; then echo "$MNT"; else echo "$MNT2"; fi; }

pids=()
for i in "${!ids[@]}"; do
  cp "$WORK/img" "$(mount_of "$i")/sites/central/${ids[$i]}" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "an upload failed"; done
pids=()
for i in "${!ids[@]}"; do
  setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0"]}' \
    "$(mount_of "$i")/images/${ids[$i]}" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "an import request failed"; done
for id in "${ids[@]}"; do wait_for_xattr "$id" stores central,dcn0; done
wait_until_rewritten "$WORK/metrics.prom" "$WORK/metrics2.prom"

value() { awk -v name="$2" '$1 == name { print $2 }' "$1"; }
changes=0
conflicts=0
for file in "$WORK/metrics.prom" "$WORK/metrics2.prom"; do
  changes=$(awk -v a="$changes" -v b="$(value "$file" imagefs_catalog_changes_total)" 'BEGIN { print a + b }')
  conflicts=$(awk -v a="$conflicts" -v b="$(value "$file" imagefs_catalog_conflicts_total)" 'BEGIN { print a + b }')
done
ratio=$(awk -v c="$conflicts" -v n="$changes" 'BEGIN { printf "%.3f", c / n }')
echo "16 uploads and 16 copies from two daemons: $changes changes, $conflicts retried; $ratio retries per change"
awk -v n="$changes" 'BEGIN { exit !(n >= 64) }' || fail "only $changes changes counted"
awk -v r="$ratio" 'BEGIN { exit !(r < 0.1) }' || fail "$ratio retries per change (bound 0.1)"
unmount_second
unmount_imagefs
echo "PASS catalog_conflicts"
