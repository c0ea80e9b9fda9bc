# Placement (docs/contract.md, "Placement"): `[imagefs] placement = all`
# makes every active image converge to every store, by the daemon itself;
# two daemons with that default copy each image once; an image's own
# user.imagefs.placement overrides it (checked: a store not configured is
# EINVAL); user.imagefs.placement_state and the metrics say where each
# store is; `rm` of a placed copy takes that store out of the placement
# (logged) and is not undone; removing the rule puts the default back; a
# site added to the configuration gets its copies; rmdir still deletes
# everywhere.
source "$(dirname "$0")/lib.sh"
METRICS=$WORK/metrics.prom
SITES=(central dcn0)
write_config "placement = all" "metrics_file = $METRICS" "metrics_interval = 1"
mount_imagefs
mount_second

sorted_stores() { xattr "$1" stores | tr , '\n' | sort | paste -sd,; }
placement() { getfattr --absolute-names --only-values -n user.imagefs.placement "$MNT/images/$1"; }
placement_state() {
  getfattr --absolute-names --only-values -n user.imagefs.placement_state "$MNT/images/$1"
}
# wait_for_stores ID STORES: until the image's stores are STORES (sorted), 30 s.
wait_for_stores() {
  for _ in $(seq 300); do
    [ "$(sorted_stores "$1")" == "$2" ] && return 0
    sleep 0.1
  done
  fail "image $1: stores '$(sorted_stores "$1")', expected '$2'; state $(placement_state "$1")"
}
# states ID: "store=state" for each store of the image's placement state.
states() {
  placement_state "$1" | python3 -c 'import json, sys
print(" ".join(s + "=" + v["state"] for s, v in sorted(json.load(sys.stdin).items())))'
}
# copies_made ID: how many copy-images of the image both daemons ran.
copies_made() { cat "$LOG" "$LOG2" | grep -c "image $1: copy-image from" || true; }

echo "--- three images uploaded at once converge to every store, each copied once"
ids=()
for i in 1 2 3; do
  random_file "$WORK/img$i" 4
  ids+=("$(new_uuid)")
  mkdir "$MNT/images/${ids[-1]}"
done
writers=()
for i in 0 1 2; do
  cp "$WORK/img$((i + 1))" "$MNT/sites/central/${ids[$i]}" &
  writers+=($!)
done
for pid in "${writers[@]}"; do wait "$pid" || fail "an upload failed"; done
for i in 0 1 2; do
  id=${ids[$i]}
  assert_eq "$(placement "$id")" all "placement of $id (the default)"
  wait_for_stores "$id" central,dcn0
  cmp "$WORK/img$((i + 1))" "$MNT/sites/dcn0/$id" || fail "dcn0's copy of $id differs"
  assert_eq "$(states "$id")" "central=converged dcn0=converged" "placement state of $id"
  assert_eq "$(copies_made "$id")" 1 "copy-images of $id by both daemons"
done
# Each daemon's own view, from the catalog (on rados, its replica: a
# second behind at most).
for _ in $(seq 100); do
  grep -qx 'imagefs_placed_copies{store="dcn0",state="converged"} 3' "$METRICS" && break
  sleep 0.1
done
grep -qx 'imagefs_placed_copies{store="dcn0",state="converged"} 3' "$METRICS" ||
  fail "metrics: $(grep placed_copies "$METRICS")"

echo "--- an image's own rule; a store not configured is refused"
expect_error "Invalid argument" setfattr -n user.imagefs.placement -v central,dcn9 \
  "$MNT/images/${ids[0]}"
expect_error "Invalid argument" setfattr -n user.imagefs.placement -v "dcn0,-dcn0" \
  "$MNT/images/${ids[0]}"
assert_logged "placement 'central,dcn9': no store dcn9 is configured"
id=$(new_uuid)
mkdir "$MNT/images/$id"
setfattr -n user.imagefs.placement -v central "$MNT/images/$id"
cp "$WORK/img1" "$MNT/sites/central/$id"
sleep 3  # three rounds of placement: nothing to copy
assert_eq "$(sorted_stores "$id")" central "stores of an image placed at central only"
assert_eq "$(states "$id")" "central=converged" "placement state of $id"
assert_eq "$(xattr "$id" imagefs_placement)" central "the rule as Glance's property"

echo "--- rm of a placed copy takes the store out of the placement, for good"
rm "$MNT/sites/dcn0/${ids[0]}"
assert_eq "$(placement "${ids[0]}")" "all,-dcn0" "placement after rm"
assert_logged "image ${ids[0]}: dcn0 taken out of its placement, now 'all,-dcn0'"
sleep 3
assert_eq "$(sorted_stores "${ids[0]}")" central "stores some rounds after rm"
assert_eq "$(states "${ids[0]}")" "central=converged" "placement state after rm"
echo "--- the rule removed: the default again, and the copy comes back"
setfattr -x user.imagefs.placement "$MNT/images/${ids[0]}"
assert_eq "$(placement "${ids[0]}")" all "placement once its rule is removed"
wait_for_stores "${ids[0]}" central,dcn0

echo "--- a site added to the configuration gets its copies"
unmount_second
unmount_imagefs
SITES=(central dcn0 dcn1)
write_config "placement = all" "metrics_file = $METRICS" "metrics_interval = 1"
mount_imagefs
mount_second
for i in 1 2; do wait_for_stores "${ids[$i]}" central,dcn0,dcn1; done
wait_for_stores "${ids[0]}" central,dcn0,dcn1
assert_eq "$(sorted_stores "$id")" central "stores of the image placed at central only"
cmp "$WORK/img2" "$MNT/sites/dcn1/${ids[1]}" || fail "dcn1's copy differs"

echo "--- rmdir still deletes everywhere"
rmdir "$MNT/images/${ids[2]}"
sleep 2
[ ! -e "$MNT/images/${ids[2]}" ] || fail "the image came back"
for site in "${SITES[@]}"; do
  ! store_has "$site" "${ids[2]}" || fail "$site still holds the deleted image"
done
check_consistency
unmount_second
unmount_imagefs
pass
