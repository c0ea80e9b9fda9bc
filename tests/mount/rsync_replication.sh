# rsync -a from one site to another replicates every image; a second run
# transfers nothing.
source "$(dirname "$0")/lib.sh"
mount_imagefs

ids=()
for n in 1 2 3; do
  id=$(new_uuid)
  ids+=("$id")
  mkdir "$MNT/images/$id"
  head -c $((n * 400000 + 17)) /dev/urandom > "$WORK/img$n"
  cp "$WORK/img$n" "$MNT/sites/central/$id"
done

rsync -a "$MNT/sites/central/" "$MNT/sites/dcn0/"
for id in "${ids[@]}"; do
  assert_eq "$(xattr "$id" stores)" central,dcn0 "image $id after rsync"
  cmp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id" || fail "image $id differs in dcn0"
done
assert_eq "$(ls -A "$MNT/sites/dcn0" | sort)" "$(printf '%s\n' "${ids[@]}" | sort)" "dcn0 holds exactly the images, no temporaries"

second=$(rsync -a --itemize-changes --stats "$MNT/sites/central/" "$MNT/sites/dcn0/")
grep -q "Number of regular files transferred: 0" <<< "$second" || fail "second rsync transferred files: $second"
if grep -q '^>f' <<< "$second"; then fail "second rsync itemized file changes: $second"; fi

# A temporary that rsync abandons (unlinks) leaves nothing behind.
tmp="$MNT/sites/dcn1/.${ids[0]}.AbC123"
echo partial > "$tmp"
[ -e "$tmp" ] || fail "temporary not visible before rename"
rm "$tmp"
[ ! -e "$tmp" ] || fail "temporary still visible"
cp "$MNT/sites/central/${ids[0]}" "$MNT/sites/dcn1/${ids[0]}"  # the lease was released
assert_eq "$(xattr "${ids[0]}" stores)" central,dcn0,dcn1 "copy after abandoned temporary"
unmount_imagefs
pass
