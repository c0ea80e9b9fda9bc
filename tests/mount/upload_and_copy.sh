# mkdir + cp uploads; cp into an edge site is a copy-image; an upload at an
# edge reaches central first; files are stable and honest for cp and rsync.
source "$(dirname "$0")/lib.sh"
mount_imagefs

random_file "$WORK/disk.qcow2" 5
id=$(new_uuid)
mkdir "$MNT/images/$id"
assert_eq "$(xattr "$id" status)" queued "new image status"
assert_eq "$(ls "$MNT/images/$id/stores" | tr '\n' ' ')" "central dcn0 dcn1 " "every store is listed"
assert_eq "$(ls "$MNT/images/$id/stores/central")" "" "queued image has no file"

cp "$WORK/disk.qcow2" "$MNT/images/$id/stores/central/"
assert_eq "$(xattr "$id" status)" active "status after upload"
assert_eq "$(xattr "$id" stores)" central "stores after upload"
assert_eq "$(xattr "$id" name)" disk.qcow2 "the upload names the image"
assert_eq "$(xattr "$id" checksum)" "$(md5sum < "$WORK/disk.qcow2" | cut -d' ' -f1)" "md5"
assert_eq "$(xattr "$id" os_hash_value)" "$(sha512sum < "$WORK/disk.qcow2" | cut -d' ' -f1)" "sha512"
cmp "$WORK/disk.qcow2" "$MNT/images/$id/stores/central/disk.qcow2" || fail "central copy differs"
[ ! -e "$MNT/images/$id/stores/dcn0/disk.qcow2" ] || fail "dcn0 has a file before any copy"

# cp between two site directories is a copy-image.
cp "$MNT/images/$id/stores/central/disk.qcow2" "$MNT/images/$id/stores/dcn0/"
assert_eq "$(xattr "$id" stores)" central,dcn0 "stores after copy"
cmp "$WORK/disk.qcow2" "$MNT/images/$id/stores/dcn0/disk.qcow2" || fail "dcn0 copy differs"
cmp "$WORK/disk.qcow2" "$MNT/sites/dcn0/$id" || fail "/sites view differs"
store_data dcn0 "$id" | cmp "$WORK/disk.qcow2" - || fail "dcn0's store holds other data"
locations=$(xattr "$id" locations)
if [ -n "$CEPH_DIR" ]; then
  dcn0_url="rbd://$(ceph_at dcn0 fsid)/$POOL/$id/snap"
else
  dcn0_url="file://$STORES/dcn0/$id"
fi
case "$locations" in
  *'{"metadata":{"store":"dcn0"},"url":"'"$dcn0_url"'"}'*) ;;
  *) fail "locations lack dcn0 at $dcn0_url: $locations" ;;
esac

# That cp was server-side (copy_file_range: store to store, no bytes
# through the kernel); a copy by read and write works as well.
assert_logged "copy of 5242880 bytes written into dcn0 (server-side, from image $id in central)"
dd if="$MNT/sites/central/$id" of="$MNT/sites/dcn1/$id" bs=1M status=none
cmp "$WORK/disk.qcow2" "$MNT/sites/dcn1/$id" || fail "dcn1 copy (read and write) differs"
grep -q "written into dcn1 (server-side" "$LOG" && fail "dd was taken for a server-side copy"
rm "$MNT/sites/dcn1/$id"

# cp of one image's file into a new image is a server-side upload.
twin=$(new_uuid)
mkdir "$MNT/images/$twin"
cp "$MNT/sites/dcn0/$id" "$MNT/images/$twin/stores/central/twin.raw"
assert_eq "$(xattr "$twin" status)" active "status of the server-side upload"
assert_eq "$(xattr "$twin" checksum)" "$(xattr "$id" checksum)" "checksum of the server-side upload"
assert_logged "upload of 5242880 bytes written into central (server-side, from image $id in dcn0)"
cmp "$WORK/disk.qcow2" "$MNT/sites/central/$twin" || fail "the server-side upload differs"
expect_error "Operation not permitted" rm "$MNT/images/$twin/stores/central/twin.raw"
assert_eq "$(xattr "$twin" stores)" central "the last copy after a refused rm"
rmdir "$MNT/images/$twin"

# In a store directory the file has the image's name, and only that name.
[ ! -e "$MNT/images/$id/stores/dcn0/$id" ] || fail "the image file answers to its id in stores/dcn0"
expect_error "No such file" rm "$MNT/images/$id/stores/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central,dcn0 "a wrong name deletes nothing"

# Stable attributes: same size and mtime in every store, honest blocks.
central_stat=$(stat -c '%s %Y %y' "$MNT/images/$id/stores/central/disk.qcow2")
assert_eq "$(stat -c '%s %Y %y' "$MNT/images/$id/stores/dcn0/disk.qcow2")" "$central_stat" "dcn0 attributes"
assert_eq "$(stat -c '%s %Y %y' "$MNT/sites/central/$id")" "$central_stat" "/sites attributes"
blocks=$(stat -c %b "$MNT/sites/central/$id")
[ "$blocks" -ge $((5 * 1024 * 1024 / 512)) ] || fail "st_blocks $blocks is below size/512"
sleep 1.1
assert_eq "$(stat -c '%s %Y %y' "$MNT/images/$id/stores/central/disk.qcow2")" "$central_stat" "attributes are stable"

# An upload at an edge goes to central first.
edge=$(new_uuid)
mkdir "$MNT/images/$edge"
head -c 777777 /dev/urandom > "$WORK/edge.raw"
cp "$WORK/edge.raw" "$MNT/images/$edge/stores/dcn1/"
assert_eq "$(xattr "$edge" stores)" central,dcn1 "edge upload reaches central first"
cmp "$WORK/edge.raw" "$MNT/sites/central/$edge" || fail "central copy of the edge upload differs"

# ls -l of the tree.
assert_eq "$(ls "$MNT/images" | sort | tr '\n' ' ')" "$(printf '%s\n' "$id" "$edge" | sort | tr '\n' ' ')" "image listing"
assert_eq "$(ls "$MNT/sites/dcn1")" "$edge" "dcn1 site listing"

# The data survives a remount.
unmount_imagefs
mount_imagefs
cmp "$WORK/disk.qcow2" "$MNT/sites/dcn0/$id" || fail "dcn0 copy differs after remount"
assert_eq "$(stat -c '%s %Y %y' "$MNT/sites/central/$id")" "$central_stat" "attributes after remount"
unmount_imagefs
pass
