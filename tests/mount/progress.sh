# Progress of imports in flight: user.imagefs.progress on the image is
# JSON, per target store, live while data arrives ({"central": {"done":
# bytes, "total": null}} for an upload, whose size is not known before its
# end; the image's size for a copy) and {} once nothing runs; a long copy
# (64 MiB or more) logs each tenth. Two units in flight: every unit's
# buffer is used again several times by the upload and the copy, and the
# copies must still be the data.
source "$(dirname "$0")/lib.sh"
write_config "copy_in_flight = 2"
mount_imagefs
progress() { getfattr --absolute-names --only-values -n user.imagefs.progress "$MNT/images/$1"; }
# field IMAGE STORE done|total: one number of the progress (or null).
field() {
  progress "$1" | python3 -c 'import json, sys
entry = json.load(sys.stdin).get(sys.argv[1])
print("none" if entry is None else ("null" if entry[sys.argv[2]] is None else entry[sys.argv[2]]))' "$2" "$3"
}

random_file "$WORK/img" 72
size=$(stat -c %s "$WORK/img")
id=$(new_uuid)
mkdir "$MNT/images/$id"
assert_eq "$(progress "$id")" "{}" "progress before anything runs"
exec 3> "$MNT/images/$id/stores/central/disk.raw"
head -c $((24 << 20)) "$WORK/img" >&3
for _ in $(seq 100); do
  done=$(field "$id" central done)
  [ "$done" != none ] && [ "$done" -ge $((16 << 20)) ] && break
  sleep 0.1
done
echo "upload in flight: $(progress "$id")"
[ "$done" -ge $((16 << 20)) ] && [ "$done" -le $((24 << 20)) ] ||
  fail "progress of the upload after 24 MiB: $(progress "$id")"
assert_eq "$(field "$id" central total)" null "an upload's total before its end"
tail -c +$(((24 << 20) + 1)) "$WORK/img" >&3
exec 3>&-
assert_eq "$(progress "$id")" "{}" "progress once the upload is done"

# A copy of 72 MiB (nine units of 8 MiB): a log line at each tenth it
# passes.
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
for tenth in 1 5; do
  grep -q "image $id: copy into dcn0: ${tenth}0 % (.* of 72 MiB)" "$LOG" ||
    fail "no log line at ${tenth}0 % of the copy: $(grep "image $id" "$LOG" | tail -5)"
done
assert_eq "$(progress "$id")" "{}" "progress once the copy is done"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "the upload, its units reused, differs"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "the copy, its units reused, differs"
unmount_imagefs
pass
