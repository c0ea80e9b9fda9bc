# getfattr/setfattr: the Glance image record, properties, and import
# requests with all_stores and all_stores_must_succeed against a real store
# failure (embedded: dcn1 lives on a 1 MiB tmpfs, so a larger image does
# not fit; ceph: dcn1's pool is not provisioned until the last step).
source "$(dirname "$0")/lib.sh"
failing_store dcn1
write_config
mount_imagefs

id=$(new_uuid)
mkdir "$MNT/images/$id"
random_file "$WORK/img" 48
cp "$WORK/img" "$MNT/images/$id/stores/central/"

dump=$(getfattr -d -m - "$MNT/images/$id")
for name in id name status owner size checksum os_hash_algo os_hash_value created_at updated_at \
            stores locations os_glance_importing_to_stores os_glance_failed_import; do
  grep -q "^user.glance.$name=" <<< "$dump" || fail "getfattr -d lacks $name: $dump"
done
grep -q '^user.glance.status="active"' <<< "$dump" || fail "status not active: $dump"
# The catalog answers live (central_unreachable.sh: when it does not).
grep -q '^user.imagefs.catalog="live"' <<< "$dump" || fail "catalog not live: $dump"
assert_eq "$(getfattr --only-values -n user.imagefs.catalog "$MNT")" live "the mount's catalog"
expect_error "No such attribute" getfattr -n user.glance.nonexistent "$MNT/images/$id"

# Properties. disk_format was set from the data (random bytes: raw), and
# like Glance's it is fixed once the image has data.
assert_eq "$(xattr "$id" disk_format)" raw "disk_format from the data"
assert_eq "$(xattr "$id" virtual_size)" 50331648 "virtual_size"
expect_error "Operation not permitted" setfattr -n user.glance.disk_format -v qcow2 "$MNT/images/$id"
assert_logged "image $id: disk_format can only be set while the image is queued (status active)"
setfattr -n user.glance.hw_disk_bus -v scsi "$MNT/images/$id"
assert_eq "$(xattr "$id" hw_disk_bus)" scsi "custom property"
setfattr -x user.glance.hw_disk_bus "$MNT/images/$id"
expect_error "No such attribute" getfattr -n user.glance.hw_disk_bus "$MNT/images/$id"
for reserved in status checksum size stores locations id os_hash_value os_glance_failed_import; do
  expect_error "Operation not permitted" setfattr -n "user.glance.$reserved" -v x "$MNT/images/$id"
done
queued=$(new_uuid)
mkdir "$MNT/images/$queued"
setfattr -n user.glance.disk_format -v qcow2 "$MNT/images/$queued"
assert_eq "$(xattr "$queued" disk_format)" qcow2 "disk_format of a queued image"
expect_error "Invalid argument" setfattr -n user.glance.disk_format -v floppy "$MNT/images/$queued"
rmdir "$MNT/images/$queued"

# Bad import requests.
import() { setfattr -n user.glance.import -v "$2" "$MNT/images/$1"; }
expect_error "Invalid argument" import "$id" 'not json'
assert_logged "import request is not a JSON object"
expect_error "Invalid argument" import "$id" '{"method":{"name":"copy-image"},"stores":["dcn0"],"all_stores":true}'
assert_logged "names both 'stores' and 'all_stores'"
expect_error "No such file" import "$id" '{"method":{"name":"copy-image"},"stores":["dcn7"]}'
assert_logged "store dcn7 is not configured"
expect_error "File exists" import "$id" '{"method":{"name":"copy-image"},"stores":["central"]}'
assert_logged "store central already holds a copy"

# all_stores, failures allowed: dcn0 gets it, dcn1 (full) is listed failed.
import "$id" '{"method":{"name":"copy-image"},"all_stores":true,"all_stores_must_succeed":false}'
importing=$(xattr "$id" os_glance_importing_to_stores)
case "$importing" in
  dcn0,dcn1 | dcn1) ;;
  *) fail "importing list right after the request is '$importing'" ;;
esac
expect_error "Device or resource busy" import "$id" '{"method":{"name":"copy-image"},"stores":["dcn0"]}'
wait_for_xattr "$id" os_glance_importing_to_stores ""
assert_eq "$(xattr "$id" stores)" central,dcn0 "allow-failure result"
assert_eq "$(xattr "$id" os_glance_failed_import)" dcn1 "failed list"
assert_eq "$(xattr "$id" status)" active "status"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0 copy differs"
assert_eq "$(store_temporaries dcn1)" "" "no temporary left in dcn1"

# Must succeed: dcn1 fails again, so nothing of this import stays.
other=$(new_uuid)
mkdir "$MNT/images/$other"
cp "$WORK/img" "$MNT/sites/central/$other"
import "$other" '{"method":{"name":"copy-image"},"all_stores":true,"all_stores_must_succeed":true}'
wait_for_xattr "$other" os_glance_importing_to_stores ""
assert_eq "$(xattr "$other" stores)" central "must-succeed rolled back"
assert_eq "$(xattr "$other" os_glance_failed_import)" dcn1 "must-succeed failed list"
! store_has dcn0 "$other" || fail "dcn0 data of the rolled back import remains"
cmp "$WORK/img" "$MNT/sites/central/$other" || fail "source damaged"

# A small image fits everywhere; all_stores skips central which holds it.
provision_store dcn1
small=$(new_uuid)
mkdir "$MNT/images/$small"
head -c 1000 /dev/urandom > "$WORK/small"
cp "$WORK/small" "$MNT/sites/central/$small"
import "$small" '{"method":{"name":"copy-image"},"all_stores":true,"all_stores_must_succeed":true}'
wait_for_xattr "$small" stores central,dcn0,dcn1
assert_eq "$(xattr "$small" os_glance_failed_import)" "" "no failure for the small image"
unmount_imagefs
pass
