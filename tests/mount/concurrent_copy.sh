# Closely timed copies of one image to one site: exactly one succeeds, the
# others get EBUSY or EEXIST, and the copy is whole.
source "$(dirname "$0")/lib.sh"
mount_imagefs

random_file "$WORK/img" 16
for round in 1 2 3; do
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  cp "$WORK/img" "$MNT/sites/central/$id"
  pids=()
  for n in 1 2 3 4; do
    cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id" 2> "$WORK/err$n" &
    pids+=($!)
  done
  ok=0
  for pid in "${pids[@]}"; do
    if wait "$pid"; then ok=$((ok + 1)); fi
  done
  assert_eq "$ok" 1 "round $round: successful copies"
  for n in 1 2 3 4; do
    if [ -s "$WORK/err$n" ] && ! grep -qE "Device or resource busy|File exists" "$WORK/err$n"; then
      fail "round $round: unexpected error: $(cat "$WORK/err$n")"
    fi
  done
  assert_eq "$(xattr "$id" stores)" central,dcn0 "round $round: stores"
  cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "round $round: dcn0 copy differs"
  assert_eq "$(store_temporaries dcn0)" "" "round $round: no temporaries"
done

# Same image, two different sites at once: the second is refused while the
# first runs, never both half-done.
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id" 2> "$WORK/errA" & a=$!
cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id" 2> "$WORK/errB" & b=$!
wait $a && ra=0 || ra=1
wait $b && rb=0 || rb=1
stores=$(xattr "$id" stores)
case "$ra$rb:$stores" in
  00:central,dcn0,dcn1 | 00:central,dcn1,dcn0 | 01:central,dcn0 | 10:central,dcn1) ;;
  *) fail "two-site race ended as $ra$rb with stores $stores" ;;
esac
unmount_imagefs
pass
