# rm is a per-store delete with the contract's rules (docs/contract.md); rmdir deletes the image everywhere.
source "$(dirname "$0")/lib.sh"
mount_imagefs

id=$(new_uuid)
mkdir "$MNT/images/$id"
head -c 300000 /dev/urandom > "$WORK/img"
cp "$WORK/img" "$MNT/sites/central/$id"
expect_error "Operation not permitted" rm "$MNT/sites/central/$id"
assert_logged "is the last one; rmdir the image"

cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
cp "$MNT/sites/central/$id" "$MNT/images/$id/stores/dcn1/"
assert_eq "$(xattr "$id" stores)" central,dcn0,dcn1 "three copies"
expect_error "Operation not permitted" rm "$MNT/images/$id/stores/central/$id"
assert_logged "central copy cannot go while edges"

rm "$MNT/images/$id/stores/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central,dcn1 "dcn0 copy deleted"
! store_has dcn0 "$id" || fail "dcn0 data still in the store"
store_has dcn1 "$id" || fail "dcn1 data is gone"
expect_error "No such file" rm "$MNT/sites/dcn0/$id"

rm "$MNT/sites/dcn1/$id"
assert_eq "$(xattr "$id" stores)" central "only central left"

# rmdir deletes every copy, then the record.
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
rmdir "$MNT/images/$id"
[ ! -e "$MNT/images/$id" ] || fail "image directory still there"
assert_eq "$(ls -A "$MNT/images")" "" "no image left"
for site in central dcn0 dcn1; do
  ! store_has "$site" "$id" || fail "$site data still in the store"
done
expect_error "No such file" rmdir "$MNT/images/$id"
expect_error "Operation not permitted" rmdir "$MNT/sites/dcn0"
unmount_imagefs
pass
