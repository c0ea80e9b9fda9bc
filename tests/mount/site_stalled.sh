# Ceph only: one site's OSD stops answering (SIGSTOP) with the default
# rados_op_timeout of 60 s; 32 readers and 16 writers of that site wait on
# it, and 8 of the writers are killed (SIGKILL) while they wait. Opening,
# reading, writing and discarding a copy run on that store's own threads
# and reply from there, so no FUSE thread waits: `ls -l`, `getfattr` and
# reads of the other sites keep answering within a second each. When the
# OSD answers again, the readers finish with the right data, the uploads
# of the 8 live writers are published, those of the killed ones are
# discarded (queued, no copy anywhere), and nothing is left behind.
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
start_own_clusters --no-mgr  # no df here: seconds sooner
OP_TIMEOUT=60
write_config
mount_imagefs

random_file "$WORK/img" 4
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
for site in dcn0 dcn1; do cp "$MNT/sites/central/$id" "$MNT/sites/$site/$id"; done
osd=$(cat "$CEPH_DIR/dcn1/run/osd.0.pid")
kill -STOP "$osd"

READERS=32
readers=()
for i in $(seq "$READERS"); do
  (cmp "$WORK/img" "$MNT/sites/dcn1/$id" && echo ok > "$WORK/reader.$i" ||
    echo failed > "$WORK/reader.$i") &
  readers+=($!)
done
WRITERS=8
# start_writers IMAGES PIDS: WRITERS uploads into dcn1, each into a new
# image; their ids and cp's pids are appended to the arrays named.
start_writers() {
  local -n images=$1 pids=$2
  local upload
  for _ in $(seq "$WRITERS"); do
    upload=$(new_uuid)
    mkdir "$MNT/images/$upload"
    images+=("$upload")
    cp "$WORK/img" "$MNT/images/$upload/stores/dcn1/disk.raw" &
    pids+=($!)
  done
}
uploads=() writers=() doomed=() killed=()
start_writers uploads writers
start_writers doomed killed
sleep 2  # every reader and writer is waiting on dcn1 now
# A writer whose write the daemon already took ends when that write is
# answered (the kernel waits for it): these end once dcn1 answers.
kill -KILL "${killed[@]}"

# timed SECONDS LABEL COMMAND...: the command succeeds within SECONDS.
timed() {
  local limit=$1 label=$2 started
  shift 2
  started=$EPOCHREALTIME
  timeout 10 "$@" > /dev/null || fail "$label failed while dcn1 stalls"
  local took
  took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  echo "$label: $took s"
  awk -v t="$took" -v l="$limit" 'BEGIN { exit !(t < l) }' ||
    fail "$label took $took s while dcn1 stalls (limit $limit s)"
}
for round in 1 2 3; do
  timed 1 "ls -l /images (round $round)" ls -l "$MNT/images" "$MNT/sites/central"
  timed 1 "getfattr (round $round)" getfattr -d "$MNT/images/$id"
  timed 1 "read at central (round $round)" cmp "$WORK/img" "$MNT/sites/central/$id"
  timed 1 "read at dcn0 (round $round)" cmp "$WORK/img" "$MNT/sites/dcn0/$id"
done
waiting=0
for i in $(seq "$READERS"); do [ -e "$WORK/reader.$i" ] || waiting=$((waiting + 1)); done
echo "$waiting of $READERS readers of dcn1 still waiting"
[ "$waiting" -eq "$READERS" ] || fail "only $waiting readers were waiting on the stalled site"
for pid in "${writers[@]}"; do kill -0 "$pid" || fail "a writer into the stalled site ended"; done

kill -CONT "$osd"
wait "${readers[@]}"
for i in $(seq "$READERS"); do
  assert_eq "$(cat "$WORK/reader.$i")" ok "reader $i of dcn1 after the OSD answered again"
done
for pid in "${writers[@]}"; do wait "$pid" || fail "a writer into dcn1 failed"; done
for pid in "${killed[@]}"; do
  wait "$pid" && fail "a killed writer into dcn1 exited 0"
done
md5=$(md5sum < "$WORK/img" | cut -d' ' -f1)
for upload in "${uploads[@]}"; do
  assert_eq "$(xattr "$upload" stores)" central,dcn1 "upload $upload into dcn1"
  assert_eq "$(xattr "$upload" checksum)" "$md5" "upload $upload: md5"
done
for upload in "${doomed[@]}"; do
  wait_for_xattr "$upload" status queued
  assert_eq "$(xattr "$upload" stores || true)" "" "killed upload $upload: locations"
done
check_consistency
unmount_imagefs
pass
