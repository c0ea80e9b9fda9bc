# Other users on an allow_other mount: they list and read every image and
# manage their own; copying, deleting or setting properties of someone
# else's image is EACCES (an admin uid may), reserved properties are EPERM
# for everyone, root included, and each refusal is logged with its reason.
source "$(dirname "$0")/lib.sh"
chmod 755 "$WORK"  # the other users reach the mount point through it
mount_imagefs -o allow_other
alice() { setpriv --reuid=1000 --regid=1000 --clear-groups "$@"; }
bob() { setpriv --reuid=1001 --regid=1001 --clear-groups "$@"; }
denied="Permission denied"
reserved="Operation not permitted"

random_file "$WORK/img" 2
chmod 644 "$WORK/img"
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
setfattr -n user.glance.hw_disk_bus -v scsi "$MNT/images/$id"

# Reading is for everyone.
alice ls "$MNT/images" | grep -qx "$id" || fail "alice cannot list the image"
alice cmp "$WORK/img" "$MNT/sites/central/$id" || fail "alice reads other data"
assert_eq "$(alice getfattr --only-values -n user.glance.status "$MNT/images/$id")" active \
  "alice reads the status"

# Changing root's image is not.
expect_error "$denied" alice cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
expect_error "$denied" alice sh -c "cat '$WORK/img' > '$MNT/images/$id/stores/dcn1/$id'"
expect_error "$denied" alice setfattr -n user.glance.import \
  -v '{"method":{"name":"copy-image"},"all_stores":true}' "$MNT/images/$id"
expect_error "$denied" alice setfattr -n user.glance.name -v mine "$MNT/images/$id"
expect_error "$denied" alice setfattr -x user.glance.hw_disk_bus "$MNT/images/$id"
expect_error "$denied" alice rm "$MNT/sites/central/$id"
expect_error "$denied" alice rmdir "$MNT/images/$id"
assert_logged "uid 1000 may not copy it (owner is uid 0)"
assert_logged "uid 1000 may not delete it (owner is uid 0)"
assert_eq "$(xattr "$id" stores)" central "alice changed no store"
assert_eq "$(xattr "$id" hw_disk_bus)" scsi "alice changed no property"
assert_eq "$(store_images dcn0)" "" "no data in dcn0"

# Reserved properties: EPERM for everyone, the owner and root included.
for property in status checksum size stores locations id os_hash_algo os_hash_value \
  os_glance_importing_to_stores os_glance_failed_import; do
  expect_error "$reserved" setfattr -n "user.glance.$property" -v x "$MNT/images/$id"
  expect_error "$reserved" alice setfattr -n "user.glance.$property" -v x "$MNT/images/$id"
done
assert_logged "property 'status' is reserved"

# Alice's own image: hers to upload, copy, name and delete; root is an
# admin and may too; bob may not.
mine=$(new_uuid)
alice mkdir "$MNT/images/$mine"
assert_eq "$(stat -c %u "$MNT/images/$mine")" 1000 "owner of alice's image"
alice cp "$WORK/img" "$MNT/sites/central/$mine"
alice cp "$MNT/sites/central/$mine" "$MNT/sites/dcn0/$mine"
alice setfattr -n user.glance.name -v alices "$MNT/images/$mine"
assert_eq "$(stat -c %u "$MNT/images/$mine/stores/dcn0/alices")" 1000 "owner of alice's file"
expect_error "$denied" bob cp "$MNT/sites/central/$mine" "$MNT/sites/dcn1/$mine"
expect_error "$denied" bob setfattr -n user.glance.name -v bobs "$MNT/images/$mine"
expect_error "$denied" bob rm "$MNT/sites/dcn0/$mine"
expect_error "$denied" bob rmdir "$MNT/images/$mine"
setfattr -n user.glance.os_distro -v cirros "$MNT/images/$mine"  # root, an admin
assert_eq "$(alice getfattr --only-values -n user.glance.os_distro "$MNT/images/$mine")" cirros \
  "the admin's property"
alice rm "$MNT/sites/dcn0/$mine"
assert_eq "$(xattr "$mine" stores)" central "alice deleted her copy"
alice rmdir "$MNT/images/$mine"
[ ! -e "$MNT/images/$mine" ] || fail "alice's image is still there"
! store_has central "$mine" || fail "central still holds alice's image"
unmount_imagefs
pass
