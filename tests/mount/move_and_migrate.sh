# Moves and migration with plain tools:
# - `mv` of a copy from one site directory to another is a copy, then a
#   per-store delete of the source; central's copy cannot move (a copy
#   always stays there), and nothing is copied then; within one site a
#   rename is refused;
# - rsync of a directory laid out as a Glance filesystem store (files
#   named by image UUID) into /sites/<site>/ creates each image by upload
#   (at an edge: central first), plainly, with --inplace and with
#   --delete; the second run transfers nothing; a name that is not a UUID
#   is EINVAL.
source "$(dirname "$0")/lib.sh"
write_config
mount_imagefs
md5() { md5sum < "$1" | cut -d' ' -f1; }

echo "--- mv between sites"
random_file "$WORK/img" 4
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
mv "$MNT/images/$id/stores/dcn1/$id" "$MNT/images/$id/stores/dcn0/"
assert_eq "$(xattr "$id" stores)" central,dcn0 "after mv stores/dcn1 -> stores/dcn0"
store_has dcn0 "$id" || fail "dcn0's store lacks the moved copy"
! store_has dcn1 "$id" || fail "dcn1's store keeps the moved copy"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "the moved copy's data"
mv "$MNT/sites/dcn0/$id" "$MNT/sites/dcn1/$id"
assert_eq "$(xattr "$id" stores)" central,dcn1 "after mv sites/dcn0 -> sites/dcn1"
expect_error "Operation not permitted" mv "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central,dcn1 "a refused move of central's copy copies nothing"
! store_has dcn0 "$id" || fail "a refused move left data in dcn0"
assert_logged "a copy always stays at central"
expect_error "Operation not permitted" mv "$MNT/sites/dcn1/$id" "$MNT/sites/dcn1/renamed"
# Onto a site that holds the image already: the source goes.
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
mv "$MNT/sites/dcn1/$id" "$MNT/sites/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central,dcn0 "mv onto a site that holds it"

echo "--- migration: rsync of a Glance filesystem store into an edge"
glance_store_dir "$WORK/glance" 3
migrated=("${STORE_IMAGES[@]}")
# One file dated before 1970, to the nanosecond.
touch -d '1969-07-20 20:17:40.123456789' "$WORK/glance/${migrated[0]}"
rsync -a "$WORK/glance/" "$MNT/sites/dcn1/"
for image in "${migrated[@]}"; do
  assert_eq "$(xattr "$image" status)" active "migrated $image"
  assert_eq "$(xattr "$image" stores)" central,dcn1 "migrated $image: central first, then dcn1"
  assert_eq "$(xattr "$image" checksum)" "$(md5 "$WORK/glance/$image")" "migrated $image: md5"
  assert_eq "$(stat -c %.9Y "$MNT/sites/dcn1/$image")" "$(stat -c %.9Y "$WORK/glance/$image")" \
    "migrated $image: mtime"
done
second=$(rsync -a --itemize-changes --stats "$WORK/glance/" "$MNT/sites/dcn1/")
grep -q "Number of regular files transferred: 0" <<< "$second" ||
  fail "the second rsync transferred files: $second"
! grep -q '^>f' <<< "$second" || fail "the second rsync itemized changes: $second"
# --inplace: no temporary, the file is written under its own name.
inplace=$(new_uuid)
random_file "$WORK/glance/$inplace" 2
rsync -a --inplace "$WORK/glance/" "$MNT/sites/dcn1/"
assert_eq "$(xattr "$inplace" stores)" central,dcn1 "migrated in place"
assert_eq "$(xattr "$inplace" checksum)" "$(md5 "$WORK/glance/$inplace")" "migrated in place: md5"
# --delete: what the source does not have goes from that site (a
# per-store delete, with its rules).
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
rsync -a --delete "$WORK/glance/" "$MNT/sites/dcn1/"
assert_eq "$(xattr "$id" stores)" central,dcn0 "rsync --delete removed the copy the source lacks"
for image in "${migrated[@]}" "$inplace"; do
  assert_eq "$(xattr "$image" stores)" central,dcn1 "$image after rsync --delete"
done
# A name that is not an image id.
mkdir "$WORK/other"
echo notes > "$WORK/other/notes.txt"
expect_error "Invalid argument" rsync -a "$WORK/other/" "$MNT/sites/dcn1/"
check_consistency
unmount_imagefs
pass
