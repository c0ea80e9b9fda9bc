# The Glance catalog on a real cloud: Keystone and glance-api from Debian
# (scripts/openstack-cloud.sh), Glance's stores rbd in this test's pool on
# the three clusters, which the mount reads from glance-api.conf itself.
# The mount shows Glance's images; what it writes it verifies and adds to
# Glance as locations Nova can clone; mkdir, setfattr, rm and rmdir are
# Glance's calls; Glance's Python client, another user of the cloud, sees
# all of it and is seen. Tokens live 10 s here, so the test outlives several.
source "$(dirname "$0")/lib.sh"

[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (Glance's rbd stores)"
for site in "${SITES[@]}"; do create_pool "$site"; done
CLOUD=$WORK/cloud
AT_EXIT+=("'$(dirname "$CLUSTERS")/openstack-cloud.sh' stop '$CLOUD'")
"$(dirname "$CLUSTERS")/openstack-cloud.sh" start "$CLOUD" --token-expiration 10 \
  --ceph "$CEPH_DIR" "$POOL"
set -a
source "$CLOUD/env"
set +a
glance() { /usr/bin/python3 "$CLOUD/glance.py" "$@"; }
# glance_field ID FIELD...: the image's fields as Glance's client reads
# them, space-separated.
glance_field() { glance field "$@"; }

cat > "$WORK/imagefs-glance.conf" <<CONF
[catalog]
backend = glance
os_cloud = imagefs-test
CONF
# glance-api's own file supplies the stores; imagefs's file the catalog.
CONFIG_ARGS=(--config="$CLOUD/glance-api.conf" --config="$WORK/imagefs-glance.conf")

echo "--- an image made with Glance's client is in the mount, byte for byte"
random_file "$WORK/img" 6
md5=$(md5sum < "$WORK/img" | cut -d' ' -f1)
sha512=$(sha512sum < "$WORK/img" | cut -d' ' -f1)
id=$(glance create cirros "$WORK/img")
# Glance's pool also holds what this mount's token does not list: another
# project's image, one Glance is writing. Recovery must leave it alone.
stranger=$(new_uuid)
rbd_at central create --size 1M "$stranger"
mount_imagefs
ls "$MNT/images" | grep -qx "$id" || fail "Glance's image is not listed"
cmp "$WORK/img" "$MNT/images/$id/stores/central/cirros" || fail "data differs"
assert_eq "$(xattr "$id" status)" active "status"
assert_eq "$(xattr "$id" checksum)" "$md5" "checksum"
assert_eq "$(xattr "$id" stores)" central "stores"
for _ in $(seq 100); do grep -q "recovery at start done" "$LOG" && break; sleep 0.1; done
assert_logged "recovery at start done"
rbd_at central info "$stranger" > /dev/null || fail "recovery removed an image Glance does not list"

echo "--- an upload through the mount is active in Glance, md5 and sha512 right"
up=$(new_uuid)
mkdir "$MNT/images/$up"
assert_eq "$(glance_field "$up" status)" queued "Glance's status of the new image"
cp "$WORK/img" "$MNT/images/$up/stores/central/disk.raw"
assert_eq "$(glance_field "$up" status checksum os_hash_value disk_format container_format)" \
  "active $md5 $sha512 raw bare" "Glance's status, digests and formats after the upload"
glance show "$up" | grep -q "rbd://$(ceph_at central fsid)/$POOL/$up/snap" ||
  fail "Glance's location of the upload: $(glance_field "$up" locations)"

echo "--- a copy to an edge is in Glance's stores, and Nova can clone it there"
cp "$MNT/images/$up/stores/central/disk.raw" "$MNT/images/$up/stores/dcn0/"
assert_eq "$(glance_field "$up" stores)" central,dcn0 "Glance's stores after the copy"
glance show "$up" | grep -q "rbd://$(ceph_at dcn0 fsid)/$POOL/$up/snap" ||
  fail "dcn0's location names dcn0's cluster: $(glance_field "$up" locations)"
rbd_at dcn0 clone "$POOL/$up@snap" "$POOL/nova-disk" || fail "rbd clone on dcn0"
expect_error "Device or resource busy" rm "$MNT/images/$up/stores/dcn0/disk.raw"
rbd_at dcn0 rm nova-disk > /dev/null 2>&1

echo "--- an upload at an edge reaches central first"
edge=$(new_uuid)
mkdir "$MNT/images/$edge"
cp "$WORK/img" "$MNT/images/$edge/stores/dcn1/disk.raw"
assert_eq "$(glance_field "$edge" stores)" central,dcn1 "Glance's stores of an edge upload"

echo "--- Glance's own copy-image of a mount-made image shows in the mount"
glance copy "$up" dcn1
wait_for_xattr "$up" stores central,dcn0,dcn1
cmp "$WORK/img" "$MNT/images/$up/stores/dcn1/disk.raw" || fail "Glance's dcn1 copy differs"

echo "--- copy-image through the import xattr, to all stores"
setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"all_stores":true}' \
  "$MNT/images/$id"
wait_for_xattr "$id" stores central,dcn0,dcn1
assert_eq "$(glance_field "$id" stores)" central,dcn0,dcn1 "Glance's stores after the import"
assert_eq "$(xattr "$id" os_glance_importing_to_stores)" "" "nothing left importing"

echo "--- placement on Glance: an image of Glance's client placed by its rule"
placed=$(glance create placed "$WORK/img")
wait_for_xattr "$placed" status active
setfattr -n user.imagefs.placement -v dcn1 "$MNT/images/$placed"
assert_eq "$(glance_field "$placed" imagefs_placement)" dcn1 "the rule, a property in Glance"
wait_for_xattr "$placed" stores central,dcn1
assert_eq "$(glance_field "$placed" stores)" central,dcn1 "Glance's stores after placement"
state=$(getfattr --absolute-names --only-values -n user.imagefs.placement_state \
  "$MNT/images/$placed")
[[ "$state" == *'"dcn1":{"state":"converged"}'* ]] || fail "placement state: $state"
cmp "$WORK/img" "$MNT/images/$placed/stores/dcn1/placed" || fail "the placed copy differs"

echo "--- Glance's copy first: imagefs's slower copy to the same store is discarded"
race=$(new_uuid)
mkdir "$MNT/images/$race"
cp "$WORK/img" "$MNT/images/$race/stores/central/disk.raw"
{
  head -c 3M "$WORK/img"
  sleep 4
  tail -c +$((3 * 1024 * 1024 + 1)) "$WORK/img"
} > "$MNT/images/$race/stores/dcn1/disk.raw" &
writer=$!
wait_for_xattr "$race" os_glance_importing_to_stores dcn1
glance copy "$race" dcn1
wait "$writer" || fail "imagefs's copy failed where Glance's came first"
assert_logged "image $race: the catalog's own copy in dcn1 came first; imagefs's is discarded"
assert_eq "$(glance_field "$race" stores)" central,dcn1 "one copy in dcn1, Glance's"
rbd_at dcn1 ls | grep -q "imagefs-tmp" && fail "imagefs's temporary is left in dcn1"
assert_eq "$(xattr "$race" os_glance_importing_to_stores)/$(xattr "$race" os_glance_failed_import)" \
  / "import lists after the race"

echo "--- Glance's import lock keeps imagefs off the image: EBUSY"
# Glance copies 256 MiB here in a second or two, about as long as the
# mount's view may lag: the lock is watched in Glance itself (curl, every
# 20 ms), and cp asks at once.
random_file "$WORK/big" 256
big=$(glance create big "$WORK/big")
token=$(glance token)
import_task() {
  curl -s -H "X-Auth-Token: $token" "$GLANCE_URL/v2/images/$1" |
    grep -o '"os_glance_import_task": *"[^"]*"' || true
}
glance copy "$big" dcn1 &
copier=$!
for _ in $(seq 500); do
  [ -n "$(import_task "$big")" ] && break
  sleep 0.02
done
[ -n "$(import_task "$big")" ] || fail "Glance's copy-image never held its import lock"
expect_error "Device or resource busy" cp "$MNT/sites/central/$big" "$MNT/sites/dcn0/$big"
assert_logged "Glance's import task"
wait "$copier" || fail "Glance's copy-image failed"

echo "--- two daemons exclude each other: the leases are on central's cluster"
mount_second
busy=$(new_uuid)
mkdir "$MNT/images/$busy"
{
  head -c 3M "$WORK/img"
  sleep 3
} > "$MNT/images/$busy/stores/central/disk.raw" &
writer=$!
wait_for_xattr "$busy" status uploading
expect_error "Device or resource busy" cp "$WORK/img" "$MNT2/images/$busy/stores/central/disk.raw"
wait "$writer" || fail "the upload through A failed"
assert_eq "$(glance_field "$busy" status)" active "A's upload"
ls "$MNT2/images" | grep -qx "$busy" || fail "B does not list A's upload"
unmount_second

echo "--- copy_method = glance: copies through Glance's copy-image"
printf '[catalog]\ncopy_method = glance\n' > "$WORK/copy-by-glance.conf"
mount_second --config="$WORK/copy-by-glance.conf"
setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn1"]}' \
  "$MNT2/images/$busy"
wait_for_xattr2 "$busy" stores central,dcn1
assert_eq "$(glance_field "$busy" stores)" central,dcn1 "Glance's stores after its copy-image"
grep -q "image $busy: copy-image to dcn1 by the catalog" "$LOG2" || fail "B did not ask Glance"
grep -q "image $busy: Glance copied it to dcn1" "$LOG2" || fail "B did not see Glance's copy end"
expect_error "Operation not supported" cp "$MNT2/sites/central/$busy" "$MNT2/sites/dcn0/$busy"
grep -q "copies go through the catalog (copy_method = glance)" "$LOG2" ||
  fail "B's refusal of a written copy is not logged"
unmount_second

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

echo "--- rm of a copy is Glance's delete from that store"
expect_error "Operation not permitted" rm "$MNT/images/$id/stores/central/cirros"
rm "$MNT/images/$id/stores/dcn1/cirros"
assert_eq "$(glance_field "$id" stores)" central,dcn0 "Glance's stores after rm"
rbd_at dcn1 info "$id" > /dev/null 2>&1 && fail "Glance left dcn1's rbd image"
assert_logged "image $id: copy in dcn1 deleted"

echo "--- tokens expire (10 s) and nothing fails"
started=$EPOCHREALTIME
round=0
while [ "$(elapsed "$started" | cut -d. -f1)" -lt 12 ]; do
  round=$((round + 1))
  setfattr -n user.glance.round -v "$round" "$MNT/images/$id" || fail "change $round failed"
  ls "$MNT/images" > /dev/null || fail "listing $round failed"
  sleep 0.5
done
assert_eq "$(glance_field "$id" round)" "$round" "the last change"
issued=$(grep -c "keystone: token issued" "$LOG")
[ "$issued" -ge 2 ] || fail "one token in 12 s of 10 s tokens ($issued issued)"
echo "$round changes over 12 s, $issued tokens"

echo "--- rmdir deletes the image in Glance, and its data"
rmdir "$MNT/images/$edge"
expect_error "No image found" glance show "$edge"
rbd_at central info "$edge" > /dev/null 2>&1 && fail "Glance left central's rbd image"
setfattr -n user.glance.protected -v true "$MNT/images/$id"
expect_error "Operation not permitted" rmdir "$MNT/images/$id"
setfattr -n user.glance.protected -v false "$MNT/images/$id"

echo "--- a writer killed mid-upload publishes nothing in Glance"
killed=$(new_uuid)
mkdir "$MNT/images/$killed"
python3 -c '
import sys, time
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    dst.write(src.read(3 << 20))
    dst.flush()
    time.sleep(60)' "$WORK/img" "$MNT/images/$killed/stores/central/disk.raw" &
writer=$!
wait_for_xattr "$killed" status uploading
kill -KILL "$writer"
wait "$writer" 2> /dev/null || true
wait_for_xattr "$killed" status queued
assert_eq "$(glance_field "$killed" status locations)" "queued []" "Glance's record of the killed upload"
assert_eq "$(xattr "$killed" os_glance_failed_import)" central "the failed store"
assert_logged "image $killed: upload into central discarded: process [0-9]* (python3) was killed by SIGKILL"
rbd_at central ls | grep -q "imagefs-tmp" && fail "the killed upload's temporary is left in central"

echo "--- SIGHUP reopens the log; the mount stays and keeps working"
# reopened N: waits until the log file has N lines "log reopened".
reopened() {
  for _ in $(seq 50); do
    [ "$(grep -c "SIGHUP: log reopened" "$LOG" 2> /dev/null)" == "$1" ] && return 0
    sleep 0.1
  done
  fail "SIGHUP: $1 'log reopened' expected in $LOG"
}
mv "$LOG" "$LOG.rotated"  # as logrotate does
kill -HUP "$DAEMON_PID"
reopened 1
cat "$LOG" >> "$LOG.rotated"  # back in one file, for the rest of the test
mv "$LOG.rotated" "$LOG"
kill -HUP "$DAEMON_PID"
reopened 2
cp "$WORK/img" "$MNT/images/$killed/stores/central/disk.raw"
assert_eq "$(glance_field "$killed" status checksum)" "active $md5" "an upload after SIGHUP"

echo "--- rsync into the mount: mtimes are kept in Glance, a second run copies nothing"
glance_store_dir "$WORK/migrate" 2
synced=("${STORE_IMAGES[@]}")
rsync -a "$WORK/migrate/" "$MNT/sites/central/"
mtime=$(stat -c %Y "$WORK/migrate/${synced[0]}")
for image in "${synced[@]}"; do
  assert_eq "$(glance_field "$image" status checksum)" \
    "active $(md5sum < "$WORK/migrate/$image" | cut -d' ' -f1)" "rsync's $image in Glance"
  assert_eq "$(stat -c %Y "$MNT/sites/central/$image")" "$mtime" "rsync's $image: mtime"
  assert_eq "$(glance_field "$image" imagefs_mtime)" "${mtime}000000000" "$image: the mtime in Glance"
done
[ -z "$(getfattr --absolute-names -d -m 'user.glance.imagefs_' "$MNT/images/${synced[0]}")" ] ||
  fail "imagefs's own properties show as custom properties"
again() {  # WHEN: a second rsync of the same tree transfers nothing
  local out
  out=$(rsync -a --itemize-changes --stats "$WORK/migrate/" "$MNT/sites/central/")
  grep -q "Number of regular files transferred: 0" <<< "$out" ||
    fail "the rsync $1 transferred files: $out"
}
again "run twice"

echo "--- Glance answering 500: changes fail with EIO"
mv "$CLOUD/glance.db" "$CLOUD/glance.db.away"
started=$EPOCHREALTIME
expect_error "Input/output error" mkdir "$MNT/images/$(new_uuid)"
mv "$CLOUD/glance.db.away" "$CLOUD/glance.db"
echo "refused in $(elapsed "$started") s"
assert_logged "HTTP 500"

echo "--- Glance stopped: the mount answers from its replica"
# The replica follows Glance's listing of changed images every second.
in_replica() {
  /usr/bin/python3 - "$STATE/catalog-replica.db" "$@" <<'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute(
    "SELECT record FROM records WHERE id = ?", (sys.argv[2],)).fetchone()
sys.exit(0 if row and sys.argv[3] in row[0] else 1)
PY
}
glance set "$id" followed yes
for _ in $(seq 50); do in_replica "$id" followed && break; sleep 0.1; done
in_replica "$id" followed || fail "the replica did not follow Glance's change within 5 s"
grep -q "GET /v2/images?limit=500&updated_at=gte" "$CLOUD/glance-api.log" ||
  fail "the replica does not follow Glance's listing of changed images"
stores=$(glance_field "$up" stores)
# An image in central alone, for a copy to be refused while Glance is away.
lone=$(glance create lone "$WORK/img")
for _ in $(seq 50); do in_replica "$lone" '"active"' && break; sleep 0.1; done
in_replica "$lone" '"active"' || fail "the replica did not follow Glance's new image within 5 s"
"$(dirname "$CLUSTERS")/openstack-cloud.sh" stop "$CLOUD"
# answers COMMAND...: succeeds within a second.
answers() {
  local started=$EPOCHREALTIME took
  "$@" || fail "'$*' failed with Glance stopped"
  took=$(elapsed "$started")
  awk -v t="$took" 'BEGIN { exit !(t < 1) }' || fail "'$*' answered after $took s"
  echo "answered in $took s: $*"
}
answers ls "$MNT/images/$id" "$MNT/images/$up"
answers cmp "$WORK/img" "$MNT/images/$up/stores/dcn0/disk.raw"
assert_eq "$(xattr "$id" followed)" yes "Glance's last change, from the replica"
assert_eq "$(xattr "$up" stores)" "$stores" "stores, from the replica"
catalog=$(getfattr --absolute-names --only-values -n user.imagefs.catalog "$MNT")
[[ "$catalog" == "replica, Glance unreachable since "* ]] || fail "user.imagefs.catalog: $catalog"

echo "--- Glance stopped: changes are refused within a second"
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
at_once cp "$WORK/img" "$MNT/images/$lone/stores/dcn1/again.raw"

echo "--- Glance stopped: a mount started now serves from the replica"
unmount_imagefs
mount_imagefs
ls "$MNT/images" | grep -qx "$up" || fail "the restarted mount does not list $up"
assert_eq "$(xattr "$up" stores)" "$stores" "stores, from the replica after a restart"
assert_logged "catalog: Glance has not answered within"
# rsync's mtimes outlived the daemon (Glance's imagefs_mtime, here from
# the replica): a third run of the same tree transfers nothing.
assert_eq "$(stat -c %Y "$MNT/sites/central/${synced[1]}")" "$mtime" "the mtime after a restart"
again "after a restart of the daemon"

unmount_imagefs
pass
