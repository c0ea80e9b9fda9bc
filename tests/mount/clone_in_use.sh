# Ceph only: a copy made through the mount is what Nova/Cinder clone from.
# `rbd clone <pool>/<uuid>@snap` succeeds at the edge; deleting that copy
# (rm of the file) is EBUSY while the clone exists, and works once it is
# gone. Deleting the whole image is refused the same way.
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
mount_imagefs
busy="Device or resource busy"

random_file "$WORK/img" 12
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
store_data dcn0 "$id" | cmp "$WORK/img" - || fail "dcn0 holds other data"

rbd_at dcn0 clone "$POOL/$id@snap" "$POOL/vm-disk-1" || fail "rbd clone of the copy failed"
rbd_at dcn0 export --no-progress vm-disk-1 - | cmp "$WORK/img" - || fail "the clone reads other data"

expect_error "$busy" rm "$MNT/sites/dcn0/$id"
assert_logged "has clones of its snapshot"
assert_eq "$(xattr "$id" stores)" central,dcn0 "stores after the refused delete"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "the copy changed after the refused delete"
expect_error "$busy" rmdir "$MNT/images/$id"
[ -d "$MNT/images/$id" ] || fail "the image went away after the refused rmdir"
assert_eq "$(xattr "$id" stores)" central,dcn0 "stores after the refused rmdir"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "central changed after the refused rmdir"
rbd_at dcn0 info "$id@snap" | grep -q 'protected: True' || fail "the snapshot lost its protection"

# The clone flattened is no longer a child: the copy may go.
rbd_at dcn0 flatten --no-progress vm-disk-1 > /dev/null
rm "$MNT/sites/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central "stores after the delete"
! store_has dcn0 "$id" || fail "dcn0 still holds the image"
rbd_at dcn0 export --no-progress vm-disk-1 - | cmp "$WORK/img" - || fail "the flattened clone lost its data"

# A clone at central refuses rmdir before any copy is deleted: the edge
# copy stays too.
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
rbd_at central clone "$POOL/$id@snap" "$POOL/vm-disk-2"
expect_error "$busy" rmdir "$MNT/images/$id"
assert_eq "$(xattr "$id" stores)" central,dcn1 "stores after the refused rmdir"
store_has dcn1 "$id" || fail "the refused rmdir deleted the dcn1 copy"
rbd_at central rm --no-progress vm-disk-2 > /dev/null
rmdir "$MNT/images/$id"
for site in central dcn1; do
  ! store_has "$site" "$id" || fail "$site still holds the deleted image"
done
unmount_imagefs
pass
