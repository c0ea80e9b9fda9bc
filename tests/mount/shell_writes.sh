# Shell redirections write whole images: a redirection closes a duplicate
# descriptor before writing, and commands in a group inherit and close it
# one after another; only the complete data may become the image.
source "$(dirname "$0")/lib.sh"
mount_imagefs
# The mount reads ahead 1 MiB, not the kernel's 128 KiB (the daemon runs as root here).
assert_eq "$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")" 1024 "read-ahead of the mount"

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

# A file closed with no data is not an image yet: it waits, listed with
# its size, for a later open to write it (create_then_write.sh); an empty
# image is made by renaming a temporary, which commits whatever it holds.
empty=$(new_uuid)
mkdir "$MNT/images/$empty"
: > "$WORK/empty"
cp "$WORK/empty" "$MNT/sites/central/$empty"
assert_eq "$(xattr "$empty" status)" uploading "a file closed with no data"
assert_eq "$(stat -c %s "$MNT/sites/central/$empty")" 0 "its size"
rm "$MNT/sites/central/$empty"
assert_eq "$(xattr "$empty" status)" queued "removed before it had data"
cp "$WORK/empty" "$MNT/sites/central/.$empty.part"
mv "$MNT/sites/central/.$empty.part" "$MNT/sites/central/$empty"
assert_eq "$(xattr "$empty" status)" active "an empty image, committed at rename"
assert_eq "$(xattr "$empty" size)" 0 "empty image size"
assert_eq "$(xattr "$empty" checksum)" d41d8cd98f00b204e9800998ecf8427e "md5 of nothing"

# Copies to an active image by redirection verify like cp does.
cat "$MNT/sites/central/$group" > "$MNT/sites/dcn1/$group"
cmp "$WORK/ab" "$MNT/sites/dcn1/$group" || fail "redirected copy differs"
expect_error "Input/output error" bash -c "cat '$WORK/a' > '$MNT/sites/dcn1/$id'"
assert_eq "$(xattr "$id" stores)" central "wrong data was not published"
# Data streams into the stores as it is written; a write that goes back
# (blocks written out of order through one descriptor) stages it locally
# instead, and the image is still the file as written.
random_file "$WORK/blocks" 9
ooo=$(new_uuid)
mkdir "$MNT/images/$ooo"
write_blocks "$WORK/blocks" "$MNT/images/$ooo/stores/dcn0/$ooo" 6 7 8 0 1 2 3 4 5
assert_logged "image $ooo: a write at byte 0 goes back before byte 9437184 already sent to central,dcn0"
assert_eq "$(xattr "$ooo" checksum)" "$(md5sum < "$WORK/blocks" | cut -d' ' -f1)" "out-of-order md5"
cmp "$WORK/blocks" <(store_data central "$ooo") || fail "out-of-order upload: central differs"
cmp "$WORK/blocks" <(store_data dcn0 "$ooo") || fail "out-of-order upload: dcn0 differs"

# A sparse upload streams too: its holes are zeros in the digest, and
# never written to the store.
truncate -s 20M "$WORK/holes"
dd if=/dev/urandom of="$WORK/holes" bs=1M seek=13 count=2 conv=notrunc status=none
sparse=$(new_uuid)
mkdir "$MNT/images/$sparse"
cp --sparse=always "$WORK/holes" "$MNT/sites/central/$sparse"
assert_eq "$(xattr "$sparse" checksum)" "$(md5sum < "$WORK/holes" | cut -d' ' -f1)" "sparse md5"
cmp "$WORK/holes" <(store_data central "$sparse") || fail "sparse upload differs"
# Its holes show to lseek (SEEK_DATA, SEEK_HOLE) through the mount, at the
# store's grain (rbd: its 8 MiB objects), so readers that look skip them.
seeks=$(python3 - "$MNT/sites/central/$sparse" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
data = os.lseek(fd, 0, os.SEEK_DATA)
hole = os.lseek(fd, data, os.SEEK_HOLE)
try:
    os.lseek(fd, 16 << 20, os.SEEK_DATA)
    after = "data"
except OSError as e:
    after = errno.errorcode[e.errno]
print(os.lseek(fd, 0, os.SEEK_HOLE) == 0, 8 << 20 <= data <= 13 << 20, 15 << 20 <= hole <= 16 << 20, after)
PY
)
assert_eq "$seeks" "True True True ENXIO" "SEEK_DATA and SEEK_HOLE of a sparse copy"
assert_eq "$(python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 0, os.SEEK_HOLE))' \
  "$MNT/sites/central/$ooo")" "$(stat -c %s "$WORK/blocks")" "SEEK_HOLE of a dense copy: its end"
# qemu-img reads only the data it finds, and converts the same image.
qemu-img convert -f raw -O raw "$MNT/sites/central/$sparse" "$WORK/converted"
cmp "$WORK/holes" "$WORK/converted" || fail "qemu-img convert from the mount differs"
for site in central dcn0; do
  assert_eq "$(store_temporaries "$site")" "" "temporaries left in $site"
done
unmount_imagefs
pass
