# Data copied into a site must equal the image: else EIO at close and
# nothing published. A full staging area gives ENOSPC.
source "$(dirname "$0")/lib.sh"
write_config "staging_max_bytes = 8388608"
mount_imagefs

random_file "$WORK/good" 2
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/good" "$MNT/images/$id/stores/central/$id"

# Same size, one byte different: byte 1000 inverted (writing a fixed byte
# there left the data equal when the random byte was that one, 1 in 256).
cp "$WORK/good" "$WORK/bad"
perl -e 'open(my $f, "+<", $ARGV[0]) or die; sysseek($f, 1000, 0); sysread($f, my $b, 1);
         sysseek($f, 1000, 0); syswrite($f, chr(ord($b) ^ 0xff));' "$WORK/bad"
! cmp -s "$WORK/good" "$WORK/bad" || fail "the bad data equals the good"
expect_error "Input/output error" cp "$WORK/bad" "$MNT/images/$id/stores/dcn0/$id"
assert_logged "data for store dcn0 does not match the image"
# Different size.
head -c 1000 "$WORK/good" > "$WORK/short"
expect_error "Input/output error" cp "$WORK/short" "$MNT/sites/dcn0/$id"
assert_logged "is 1000 bytes, the image is 2097152"

assert_eq "$(xattr "$id" stores)" central "nothing published"
assert_eq "$(ls -A "$MNT/images/$id/stores/dcn0")" "" "no file in dcn0"
assert_eq "$(store_images dcn0)" "" "no data in the dcn0 store"
assert_eq "$(store_temporaries dcn0)" "" "no temporary left in dcn0"
cmp "$WORK/good" "$MNT/sites/central/$id" || fail "source copy changed"

# The right data then copies fine.
cp "$WORK/good" "$MNT/sites/dcn0/$id"
assert_eq "$(xattr "$id" stores)" central,dcn0 "good copy published"

# Staging holds at most 8 MiB. A file written in order streams into the
# store and needs no staging; written out of order, it is staged.
random_file "$WORK/big" 12
big=$(new_uuid)
mkdir "$MNT/images/$big"
expect_error "No space left on device" \
  write_blocks "$WORK/big" "$MNT/images/$big/stores/central/$big" 11 0 1 2 3 4 5 6 7 8 9 10
assert_logged "staging area is full"
assert_eq "$(xattr "$big" status)" queued "failed upload leaves the image queued"
[ -d "$STATE/staging" ] || fail "no staging area at $STATE/staging"
assert_eq "$(ls -A "$STATE/staging")" "" "staging emptied"
assert_eq "$(store_temporaries central)" "" "no temporary left in central"
cp "$WORK/big" "$MNT/images/$big/stores/central/"
assert_eq "$(xattr "$big" size)" 12582912 "a streamed upload is not held to the staging limit"

# Writes anywhere else are refused with a reason.
expect_error "Operation not permitted" cp "$WORK/good" "$MNT/images/$id/"
expect_error "Invalid argument" cp "$WORK/good" "$MNT/sites/dcn1/not-an-id"
expect_error "Invalid argument" mkdir "$MNT/images/not-a-uuid"
expect_error "File exists" mkdir "$MNT/images/$id"
unmount_imagefs
pass
