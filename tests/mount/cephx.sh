# Ceph with cephx, as production runs it: three clusters of this test's own
# that require cephx; stores and catalog connect as client.imagefs (caps:
# rbd on `images`, rwx on `imagefs`) with a keyring per site, named in the
# Glance-style config. A wrong key or a pool outside the caps is a clear
# error, never a hang.
source "$(dirname "$0")/lib.sh"
start_own_clusters --cephx --no-mgr  # no df here: seconds sooner
CEPH_USER=imagefs
write_config
mount_imagefs

random_file "$WORK/img" 6
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
assert_eq "$(xattr "$id" stores)" central,dcn1 "stores"
store_data dcn1 "$id" | cmp "$WORK/img" - || fail "dcn1 holds other data"
cmp "$WORK/img" "$MNT/sites/dcn1/$id" || fail "dcn1 reads back other data"
grep -q "as client.imagefs" "$LOG" || fail "the daemon did not connect as client.imagefs"
rm "$MNT/sites/dcn1/$id"
! store_has dcn1 "$id" || fail "dcn1 still holds the deleted copy"
unmount_imagefs

# The catalog's key is wrong: the daemon refuses to start, and says why.
sed "s/^\(\s*key = \).*/\1AQBcO0Vp2KuIHRAAGkqHR0G6tNYjX9bxLCg7hQ==/" \
  "$CEPH_DIR/central/client.imagefs.keyring" > "$WORK/wrong.keyring"
sed -i "/^\[catalog\]/a rados_keyring = $WORK/wrong.keyring" "$WORK/imagefs.conf"
if timeout 60 "$IMAGEFS" --state-dir="$STATE" --log-file="$LOG" "${CONFIG_ARGS[@]}" "$MNT" -f; then
  fail "imagefs started with a wrong catalog key"
fi
assert_logged "refusing to start: catalog: connect to the cluster of"
sed -i "/^rados_keyring = /d" "$WORK/imagefs.conf"

# dcn0's store names a pool client.imagefs has no caps on: the copy fails
# (EIO at close, as any store failure) with the permission error in the log;
# the image is as it was.
ceph_at dcn0 osd pool create elsewhere 8 8 > /dev/null 2>&1
sed -i "/^\[dcn0\]/,/^\[/ s/^rbd_store_pool = .*/rbd_store_pool = elsewhere/" "$WORK/imagefs.conf"
mount_imagefs
expect_error "Input/output error" cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
assert_logged "store dcn0: create elsewhere/imagefs-tmp.$id.*: Operation not permitted"
assert_eq "$(xattr "$id" stores)" central "stores after the refused copy"
assert_eq "$(xattr "$id" os_glance_failed_import)" dcn0 "failed list after the refused copy"
unmount_imagefs
pass
