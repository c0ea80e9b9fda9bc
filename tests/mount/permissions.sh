# Other users on an allow_other mount: they list every image, read the data
# of public and community ones (shared, the default, and private images are
# their owner's and admins'), and manage their own; copying, deleting or
# setting properties of someone else's image is EACCES (an admin uid may),
# reserved properties are EPERM for everyone, root included, and each
# refusal is logged with its reason. Then Glance's other guards: protected
# images are not deleted, hidden ones are not listed.
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

# Listing is for everyone; the data of a shared image is not, and its
# mode says so.
alice ls "$MNT/images" | grep -qx "$id" || fail "alice cannot list the image"
assert_eq "$(alice getfattr --only-values -n user.glance.status "$MNT/images/$id")" active \
  "alice reads the status"
assert_eq "$(xattr "$id" visibility)" shared "default visibility"
assert_eq "$(stat -c %a "$MNT/sites/central/$id")" 400 "mode of a shared image"
expect_error "$denied" alice cat "$MNT/sites/central/$id"
assert_logged "image $id: uid 1000 may not read it (shared, owner is uid 0)"
# Community and public images are everyone's to read; only an admin makes
# one public (Glance's policy).
setfattr -n user.glance.visibility -v community "$MNT/images/$id"
# (the kernel keeps attributes for a second)
for _ in $(seq 30); do [ "$(stat -c %a "$MNT/sites/central/$id")" == 444 ] && break; sleep 0.1; done
assert_eq "$(stat -c %a "$MNT/sites/central/$id")" 444 "mode of a community image"
alice cmp "$WORK/img" "$MNT/sites/central/$id" || fail "alice reads other data"
bob cmp "$WORK/img" "$MNT/images/$id/stores/central/$id" || fail "bob reads other data"
setfattr -n user.glance.visibility -v private "$MNT/images/$id"
expect_error "$denied" bob cat "$MNT/images/$id/stores/central/$id"
setfattr -n user.glance.visibility -v public "$MNT/images/$id"
alice cmp "$WORK/img" "$MNT/sites/central/$id" || fail "alice reads the public image"
expect_error "Invalid argument" setfattr -n user.glance.visibility -v everyone "$MNT/images/$id"

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

# Nor is writing into root's file that waits for its data.
waiting=$(new_uuid)
mkdir "$MNT/images/$waiting"
truncate -s 1M "$MNT/sites/central/$waiting"
expect_error "$denied" alice dd if="$WORK/img" of="$MNT/sites/central/$waiting" conv=notrunc status=none
assert_logged "image $waiting: uid 1000 may not write into it (owner is uid 0)"
rm "$MNT/sites/central/$waiting"

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
expect_error "$denied" alice setfattr -n user.glance.visibility -v public "$MNT/images/$mine"
assert_logged "image $mine: uid 1000 may not make it public (admins only)"
alice setfattr -n user.glance.visibility -v community "$MNT/images/$mine"
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
# Protected: no rmdir, for its owner or an admin, until it is unset.
alice setfattr -n user.glance.protected -v true "$MNT/images/$mine"
expect_error "$reserved" alice rmdir "$MNT/images/$mine"
expect_error "$reserved" rmdir "$MNT/images/$mine"
assert_logged "image $mine: protected; set user.glance.protected to false to delete it"
store_has central "$mine" || fail "the protected image lost its data"
# Hidden: not listed, still there by its path.
alice setfattr -n user.glance.os_hidden -v true "$MNT/images/$mine"
! ls "$MNT/images" | grep -qx "$mine" || fail "a hidden image is listed"
! ls "$MNT/sites/central" | grep -qx "$mine" || fail "a hidden image is listed in its site"
cmp "$WORK/img" "$MNT/sites/central/$mine" || fail "a hidden image is not reachable by path"
alice setfattr -n user.glance.protected -v false "$MNT/images/$mine"
alice rmdir "$MNT/images/$mine"
[ ! -e "$MNT/images/$mine" ] || fail "alice's image is still there"
! store_has central "$mine" || fail "central still holds alice's image"
unmount_imagefs
pass
