# Ceph only: an edge cluster goes down. The mount keeps serving everything
# else at once; what needs the edge fails within the configured timeouts
# instead of hanging; a daemon started while the edge is down mounts at once
# and keeps the edge's locations (recovery leaves the edge out).
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
start_own_clusters
CONNECT_TIMEOUT=3
OP_TIMEOUT=3
write_config "outage_timeout = 5"
mount_imagefs

now() { date +%s.%N; }
# within SECONDS START: fails unless less than SECONDS passed since START.
within() { awk -v s="$1" -v a="$2" -v b="$(now)" 'BEGIN { exit !(b - a < s) }'; }

random_file "$WORK/img" 4
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
"$CLUSTERS" stop "$CEPH_DIR" dcn1

# A read at dcn1 fails after the op timeout; meanwhile the rest answers.
start=$(now)
(cat "$MNT/sites/dcn1/$id" > /dev/null 2> "$WORK/dcn1.err" && echo 0 > "$WORK/dcn1.rc" ||
  echo 1 > "$WORK/dcn1.rc") &
reader=$!
sleep 0.3
quick=$(now)
timeout 2 ls -l "$MNT/images" "$MNT/images/$id/stores/dcn1" > /dev/null || fail "ls hangs with dcn1 down"
timeout 2 getfattr -d "$MNT/images/$id" > /dev/null || fail "getfattr hangs with dcn1 down"
timeout 2 cmp "$WORK/img" "$MNT/sites/central/$id" || fail "central read fails with dcn1 down"
timeout 2 cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0 read fails with dcn1 down"
within 3 "$quick" || fail "the other sites were slow while dcn1 was down"
wait "$reader"
assert_eq "$(cat "$WORK/dcn1.rc")" 1 "read at the stopped dcn1"
within $((OP_TIMEOUT * 3 + 3)) "$start" || fail "the read at dcn1 took longer than its timeouts"
echo "read at dcn1: $(cat "$WORK/dcn1.err")"
# df of the stopped site: EIO within its timeouts, while df of the others answers.
start=$(now)
expect_error "Input/output error" df "$MNT/sites/dcn1"
within $((OP_TIMEOUT * 3 + 3)) "$start" || fail "df of dcn1 took longer than its timeouts"
timeout 2 df "$MNT/sites/dcn0" > /dev/null || fail "df of dcn0 with dcn1 down"
assert_logged "store dcn1: .*Connection timed out"

# An import to every store goes on without dcn1: dcn0 is published while
# dcn1 is waited for (outage_timeout, 5 s here), then dcn1 is listed as
# failed.
other=$(new_uuid)
mkdir "$MNT/images/$other"
cp "$WORK/img" "$MNT/sites/central/$other"
start=$(now)
setfattr -n user.glance.import \
  -v '{"method":{"name":"copy-image"},"all_stores":true,"all_stores_must_succeed":false}' \
  "$MNT/images/$other"
wait_for_xattr "$other" stores central,dcn0
assert_eq "$(xattr "$other" os_glance_importing_to_stores)" dcn1 "importing list while dcn1 is waited for"
progress=$(getfattr --absolute-names --only-values -n user.imagefs.progress "$MNT/images/$other")
[[ "$progress" == *"waiting for dcn1 since"* ]] || fail "progress while dcn1 is waited for: $progress"
[[ "$progress" != *'"dcn0"'* ]] || fail "dcn0, published, still in the progress: $progress"
for _ in $(seq 300); do
  [ -z "$(xattr "$other" os_glance_importing_to_stores)" ] && break
  sleep 0.1
done
assert_eq "$(xattr "$other" os_glance_importing_to_stores)" "" "importing list (import still running)"
within 30 "$start" || fail "the import waited for dcn1 past its outage_timeout"
assert_eq "$(xattr "$other" stores)" central,dcn0 "stores after the import with dcn1 down"
assert_eq "$(xattr "$other" os_glance_failed_import)" dcn1 "failed list"
assert_logged "store dcn1 did not answer for 5 s (outage_timeout)"

# Deleting the dcn1 copy fails, and its location stays.
expect_error "" rm "$MNT/sites/dcn1/$id"
assert_eq "$(xattr "$id" stores)" central,dcn0,dcn1 "stores after the failed delete"

# A daemon started while dcn1 is down mounts at once and keeps dcn1's location.
unmount_imagefs
logged=$(wc -l < "$LOG")
start=$(now)
mount_imagefs
within 5 "$start" || fail "mounting with dcn1 down took too long"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "central read after the restart"
new_log() { tail -n +$((logged + 1)) "$LOG"; }
for _ in $(seq 100); do new_log | grep -q "recovery at start done" && break; sleep 0.1; done
new_log | grep -q "recovery: store dcn1 left out" || fail "recovery did not say it left dcn1 out"
assert_eq "$(xattr "$id" stores)" central,dcn0,dcn1 "stores after recovery with dcn1 down"
unmount_imagefs
pass
