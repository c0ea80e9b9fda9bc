# Two daemons on one deployment, as at two sites (same stores and catalog,
# each its own state and staging): what one does the other sees within the
# attribute timeout (1 s),
# an import running on one makes the same image EBUSY on the other, and the
# lease of a daemon killed mid-copy is taken over by the other after its ttl.
source "$(dirname "$0")/lib.sh"
write_config "lease_ttl = 3"
mount_imagefs
mount_second
busy="Device or resource busy"
import2() { setfattr -n user.glance.import -v "$2" "$MNT2/images/$1"; }

random_file "$WORK/img" 8
half=$((4 * 1024 * 1024))
id=$(new_uuid)
mkdir "$MNT/images/$id"
[ -d "$MNT2/images/$id" ] || fail "B does not see the image A created"
assert_eq "$(xattr2 "$id" status)" queued "B: status of the new image"

# An upload running on A: B sees it and cannot upload too.
exec 3> "$MNT/images/$id/stores/central/disk.raw"
head -c "$half" "$WORK/img" >&3
wait_for_xattr2 "$id" status uploading
expect_error "$busy" cp "$WORK/img" "$MNT2/images/$id/stores/central/"
tail -c +$((half + 1)) "$WORK/img" >&3
exec 3>&-
wait_for_xattr2 "$id" status active
wait_for_xattr2 "$id" stores central
cmp "$WORK/img" "$MNT2/sites/central/$id" || fail "B reads other data than A wrote"

# A copy running on A: B sees it in the importing list, and a copy, an
# import request or a delete of the same image on B is EBUSY.
exec 3> "$MNT/images/$id/stores/dcn0/disk.raw"
head -c "$half" "$WORK/img" >&3
wait_for_xattr2 "$id" os_glance_importing_to_stores dcn0
wait_for_xattr2 "$id" status active
expect_error "$busy" cp "$MNT2/sites/central/$id" "$MNT2/sites/dcn0/$id"
expect_error "$busy" cp "$MNT2/sites/central/$id" "$MNT2/sites/dcn1/$id"
expect_error "$busy" import2 "$id" '{"method":{"name":"copy-image"},"stores":["dcn1"]}'
expect_error "$busy" rmdir "$MNT2/images/$id"
tail -c +$((half + 1)) "$WORK/img" >&3
exec 3>&-
wait_for_xattr2 "$id" stores central,dcn0
wait_for_xattr2 "$id" os_glance_importing_to_stores ""
cmp "$WORK/img" "$MNT2/sites/dcn0/$id" || fail "B reads another dcn0 copy than A wrote"

# An import requested on B runs on B; A follows it to the end.
import2 "$id" '{"method":{"name":"copy-image"},"stores":["dcn1"]}'
wait_for_xattr "$id" stores central,dcn0,dcn1
cmp "$WORK/img" "$MNT/sites/dcn1/$id" || fail "A reads another dcn1 copy than B wrote"

# Deletes on one are seen on the other.
rm "$MNT2/sites/dcn1/$id"
wait_for_xattr "$id" stores central,dcn0
[ ! -e "$MNT/sites/dcn1/$id" ] || fail "A still shows the copy B deleted"

# A killed in the middle of a copy: its lease holds B off until the lease
# ttl has passed, then B's sweep settles the copy as failed and B may copy.
exec 3> "$MNT/images/$id/stores/dcn1/disk.raw"
head -c "$half" "$WORK/img" >&3
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
exec 3>&-
fusermount3 -uz "$MNT"
expect_error "$busy" cp "$MNT2/sites/central/$id" "$MNT2/sites/dcn1/$id"
# The ttl, B's next sweep, and removing the temporary A's write had begun
# in dcn1 (fencing A off first): seconds, more on a loaded machine. Until
# the sweep releases the lease, the image is busy.
for _ in $(seq 300); do
  [ "$(xattr2 "$id" os_glance_failed_import)" == dcn1 ] && [ -z "$(catalog_leases)" ] && break
  sleep 0.1
done
assert_eq "$(catalog_leases)" "" "leases after the takeover"
assert_eq "$(store_temporaries dcn1)" "" "A's temporary in dcn1 after the takeover"
assert_eq "$(xattr2 "$id" os_glance_failed_import)" dcn1 "B: the dead copy is listed failed"
assert_eq "$(xattr2 "$id" os_glance_importing_to_stores)" "" "B: importing list after takeover"
cp "$MNT2/sites/central/$id" "$MNT2/sites/dcn1/$id" || fail "B cannot copy after the takeover"
assert_eq "$(xattr2 "$id" stores)" central,dcn0,dcn1 "B: stores after its copy"
assert_eq "$(store_temporaries dcn1)" "" "temporaries in dcn1"
grep -q "lease" "$LOG2" || fail "B's log does not tell of the stale lease"

# The whole image deleted on B is gone from A (mounted again).
mount_imagefs
rmdir "$MNT2/images/$id"
[ ! -e "$MNT/images/$id" ] || fail "A still lists the image B deleted"
for site in central dcn0 dcn1; do
  ! store_has "$site" "$id" || fail "$site still holds data of the deleted image"
done
unmount_second
unmount_imagefs
pass
