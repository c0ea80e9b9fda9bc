# Ceph only: with central's cluster stopped for 10 s (its monitor and OSD
# get SIGSTOP, as a dead host), 16 changes asked at the edge at once (8
# mkdir, 8 copy-image requests) wait for central, or are refused once it
# is known to be unreachable, on the service's catalog threads. They hold
# no FUSE thread: all the while, `ls -l` of the edge's site, getfattr of
# its copy and a read of the copy's data each answer within 1 s. When
# central answers again, every change has ended (done or refused) and
# nothing is left half done: no lease, nothing importing.
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
start_own_clusters --no-mgr
write_config
mount_imagefs

image_in_central_and_dcn0 8
sleep 1.5  # the replica follows central every 0.5 s

# at_once LABEL COMMAND...: the command succeeds within 1 s.
at_once() {
  local started=$EPOCHREALTIME label=$1
  shift
  "$@" > /dev/null || fail "$label"
  local took
  took=$(elapsed "$started")
  awk -v t="$took" 'BEGIN { exit !(t < 1) }' || fail "$label took $took s"
  slowest=$(awk -v t="$took" -v s="$slowest" 'BEGIN { print (t > s ? t : s) }')
}
lists() { ls -l "$MNT/sites/dcn0" | grep -q " $id\$"; }
stores() {
  [ "$(getfattr --absolute-names --only-values -n user.glance.store "$MNT/sites/dcn0/$id")" == dcn0 ]
}
reads() {
  echo 1 > /proc/sys/vm/drop_caches  # from the store, not the page cache
  [ "$(md5sum < "$MNT/sites/dcn0/$id" | cut -d' ' -f1)" == "$md5" ]
}

mon=$(cat "$CEPH_DIR/central/run/mon.a.pid")
osd=$(cat "$CEPH_DIR/central/run/osd.0.pid")
AT_EXIT+=("kill -CONT $mon $osd")
kill -STOP "$mon" "$osd"
cut=$EPOCHREALTIME
changes=()
for i in $(seq 8); do
  (mkdir "$MNT/images/$(new_uuid)" 2> "$WORK/change.mkdir.$i" || true) &
  changes+=($!)
  (setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn1"]}' \
    "$MNT/images/$id" 2> "$WORK/change.import.$i" || true) &
  changes+=($!)
done

slowest=0
rounds=0
while awk -v t="$(elapsed "$cut")" 'BEGIN { exit !(t < 10) }'; do
  at_once "ls -l of sites/dcn0" lists
  at_once "getfattr of the dcn0 copy" stores
  at_once "read of the dcn0 copy" reads
  rounds=$((rounds + 1))
  sleep 0.2
done
echo "$rounds rounds in 10 s with central stopped: the slowest answer took $slowest s"
kill -CONT "$mon" "$osd"
back=$EPOCHREALTIME

# Every change ends: done, or refused (central unreachable, busy, there).
for pid in "${changes[@]}"; do
  for _ in $(seq 900); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2> /dev/null || fail "a change asked during the outage still runs 90 s after"
done
echo "every change ended $(elapsed "$back") s after central came back"
cat "$WORK"/change.* | sort | uniq -c || true
for _ in $(seq 100); do
  [ "$(getfattr --absolute-names --only-values -n user.imagefs.catalog "$MNT")" == live ] && break
  sleep 0.1
done
for _ in $(seq 100); do
  [ -z "$(xattr "$id" os_glance_importing_to_stores 2> /dev/null)" ] && [ -z "$(catalog_leases)" ] &&
    break
  sleep 0.2
done
assert_eq "$(xattr "$id" os_glance_importing_to_stores || true)" "" "importing after the outage"
assert_eq "$(catalog_leases)" "" "leases left after the outage"
md5_now=$(md5sum < "$MNT/sites/dcn0/$id" | cut -d' ' -f1)
assert_eq "$md5_now" "$md5" "the dcn0 copy after the outage"
unmount_imagefs
echo "PASS central_stopped_changes"
