# Shell redirections write whole images: a redirection closes a duplicate
# descriptor before writing, and commands in a group inherit and close it
# one after another; only the complete data may become the image.
source "$(dirname "$0")/lib.sh"
mount_imagefs

id=$(new_uuid)
mkdir "$MNT/images/$id"
echo hello > "$MNT/sites/central/$id"
assert_eq "$(cat "$MNT/sites/central/$id")" hello "echo redirection"
assert_eq "$(xattr "$id" size)" 6 "size"

head -c 300000 /dev/urandom > "$WORK/a"
head -c 500000 /dev/urandom > "$WORK/b"
cat "$WORK/a" "$WORK/b" > "$WORK/ab"
group=$(new_uuid)
mkdir "$MNT/images/$group"
{ cat "$WORK/a"; cat "$WORK/b"; } > "$MNT/images/$group/stores/dcn0/$group"
cmp "$WORK/ab" "$MNT/sites/central/$group" || fail "grouped commands: central copy is not both parts"
cmp "$WORK/ab" "$MNT/sites/dcn0/$group" || fail "grouped commands: dcn0 copy is not both parts"

# An empty file is an empty image, committed at the last close.
empty=$(new_uuid)
mkdir "$MNT/images/$empty"
: > "$WORK/empty"
cp "$WORK/empty" "$MNT/sites/central/$empty"
wait_for_xattr "$empty" status active
assert_eq "$(xattr "$empty" size)" 0 "empty image size"
assert_eq "$(xattr "$empty" checksum)" d41d8cd98f00b204e9800998ecf8427e "md5 of nothing"

# Copies to an active image by redirection verify like cp does.
cat "$MNT/sites/central/$group" > "$MNT/sites/dcn1/$group"
cmp "$WORK/ab" "$MNT/sites/dcn1/$group" || fail "redirected copy differs"
expect_error "Input/output error" bash -c "cat '$WORK/a' > '$MNT/sites/dcn1/$id'"
assert_eq "$(xattr "$id" stores)" central "wrong data was not published"
unmount_imagefs
pass
