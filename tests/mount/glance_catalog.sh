# The Glance catalog on a real cloud (scripts/openstack-cloud.sh: Keystone
# and glance-api from Debian, three file stores): the mount shows Glance's
# images and reads their data from the stores glance-api.conf names;
# mkdir, setfattr, setfattr -x, rm of a copy and rmdir are Glance's calls;
# Glance's Python client, another user of the cloud, sees them and is seen.
# Tokens live 15 s here, so the test outlives several.
source "$(dirname "$0")/lib.sh"

CLOUD=$WORK/cloud
AT_EXIT+=("'$(dirname "$CLUSTERS")/openstack-cloud.sh' stop '$CLOUD'")
"$(dirname "$CLUSTERS")/openstack-cloud.sh" start "$CLOUD" --token-expiration 15
set -a
source "$CLOUD/env"
set +a
glance() { /usr/bin/python3 "$CLOUD/glance.py" "$@"; }
# glance_field ID FIELD: the image's field as Glance's client reads it.
glance_field() {
  glance show "$1" | /usr/bin/python3 -c "import json, sys; print(json.load(sys.stdin).get('$2'))"
}

cat > "$WORK/imagefs-glance.conf" <<CONF
[catalog]
backend = glance
os_cloud = imagefs-test
CONF
# glance-api's own file supplies the stores; imagefs's file the catalog.
CONFIG_ARGS=(--config="$CLOUD/glance-api.conf" --config="$WORK/imagefs-glance.conf")

echo "--- an image made with Glance's client is in the mount, byte for byte"
random_file "$WORK/img" 5
id=$(glance create cirros "$WORK/img")
mount_imagefs
ls "$MNT/images" | grep -qx "$id" || fail "Glance's image is not listed"
cmp "$WORK/img" "$MNT/images/$id/stores/central/cirros" || fail "data differs"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "data differs in /sites"
assert_eq "$(xattr "$id" status)" active "status"
assert_eq "$(xattr "$id" checksum)" "$(md5sum < "$WORK/img" | cut -d' ' -f1)" "checksum"
assert_eq "$(xattr "$id" os_hash_value)" "$(sha512sum < "$WORK/img" | cut -d' ' -f1)" "sha512"
assert_eq "$(xattr "$id" stores)" central "stores"
xattr "$id" locations | grep -q "\"url\":\"file://$CLOUD/stores/central/$id\"" ||
  fail "locations: $(xattr "$id" locations)"

echo "--- mkdir creates the image in Glance"
new=$(new_uuid)
mkdir "$MNT/images/$new"
assert_eq "$(glance_field "$new" status)" queued "Glance's status of the new image"
expect_error "File exists" mkdir "$MNT/images/$new"

echo "--- properties both ways"
setfattr -n user.glance.os_distro -v cirros "$MNT/images/$id"
assert_eq "$(glance_field "$id" os_distro)" cirros "a property set through the mount"
setfattr -n user.glance.min_ram -v 512 "$MNT/images/$id"
assert_eq "$(glance_field "$id" min_ram)" 512 "min_ram, a number"
setfattr -x user.glance.os_distro "$MNT/images/$id"
assert_eq "$(glance_field "$id" os_distro)" None "a property removed through the mount"
glance set "$id" hw_disk_bus scsi
wait_for_xattr "$id" hw_disk_bus scsi
expect_error "Operation not permitted" setfattr -n user.glance.os_glance_x -v 1 "$MNT/images/$id"
expect_error "Operation not permitted" setfattr -n user.glance.status -v active "$MNT/images/$id"

echo "--- Glance's own copy-image shows; rm of a copy is Glance's delete from that store"
glance copy "$id" dcn0
wait_for_xattr "$id" stores central,dcn0
cmp "$WORK/img" "$MNT/images/$id/stores/dcn0/cirros" || fail "dcn0's copy differs"
expect_error "Operation not permitted" rm "$MNT/images/$id/stores/central/cirros"
rm "$MNT/images/$id/stores/dcn0/cirros"
assert_eq "$(glance_field "$id" stores)" central "Glance's stores after rm"
[ ! -e "$CLOUD/stores/dcn0/$id" ] || fail "Glance left dcn0's data"
assert_logged "image $id: copy in dcn0 deleted"

echo "--- writing data is not done through Glance yet: refused, nothing left"
expect_error "Operation not supported" cp "$WORK/img" "$MNT/images/$new/stores/central/disk"
assert_logged "imagefs does not do through a Glance catalog yet"
assert_eq "$(glance_field "$new" status)" queued "the refused upload changed nothing"

echo "--- tokens expire (15 s) and nothing fails"
started=$EPOCHREALTIME
round=0
while [ "$(elapsed "$started" | cut -d. -f1)" -lt 18 ]; do
  round=$((round + 1))
  setfattr -n user.glance.round -v "$round" "$MNT/images/$id" || fail "change $round failed"
  ls "$MNT/images" > /dev/null || fail "listing $round failed"
  sleep 0.5
done
assert_eq "$(glance_field "$id" round)" "$round" "the last change"
issued=$(grep -c "keystone: token issued" "$LOG")
[ "$issued" -ge 2 ] || fail "one token in 18 s of 15 s tokens ($issued issued)"
echo "$round changes over 18 s, $issued tokens"

echo "--- rmdir deletes the image in Glance"
rmdir "$MNT/images/$new"
expect_error "No image found" glance show "$new"
setfattr -n user.glance.protected -v true "$MNT/images/$id"
expect_error "Operation not permitted" rmdir "$MNT/images/$id"
setfattr -n user.glance.protected -v false "$MNT/images/$id"

echo "--- Glance answering 500: changes fail with EIO at once"
mv "$CLOUD/glance.db" "$CLOUD/glance.db.away"
started=$EPOCHREALTIME
expect_error "Input/output error" mkdir "$MNT/images/$(new_uuid)"
mv "$CLOUD/glance.db.away" "$CLOUD/glance.db"
echo "refused in $(elapsed "$started") s"
assert_logged "HTTP 500"

echo "--- Glance stopped: changes are refused within a second"
"$(dirname "$CLUSTERS")/openstack-cloud.sh" stop "$CLOUD"
# at_once COMMAND...: fails with EHOSTUNREACH within a second.
at_once() {
  local started=$EPOCHREALTIME took
  expect_error "No route to host" "$@"
  took=$(elapsed "$started")
  awk -v t="$took" 'BEGIN { exit !(t < 1) }' || fail "'$*' was refused after $took s"
  echo "refused in $took s: $*"
}
at_once mkdir "$MNT/images/$(new_uuid)"
at_once setfattr -n user.glance.x -v 1 "$MNT/images/$id"
at_once rmdir "$MNT/images/$id"

unmount_imagefs
pass
