# Ceph only: dcn0 behind a 400 Mbit/s link (tc HTB on lo), cut (its traffic
# through a 1 kbit/s class: this kernel has no netem or gact) for 20 s at
# 30 % of a copy to dcn0 and dcn1. The copy goes on into dcn1, which is published during the cut;
# dcn0's waits (user.imagefs.progress says so), renews its connection once
# the link is back and resumes from the units dcn0 acknowledged: it
# completes within the uncut copy's time + the cut + 10 s, with at most
# 1.1 times the image over dcn0's link, and the metrics count the outage.
# Then, with `placement = all`, a cut longer than outage_timeout (25 s
# past 10 s here): the copy gives up, and once the link is back placement
# resumes it from the resume record kept with its temporary (1.1 times the
# image in all); and kill -9 of the daemon at 50 % of a placement copy, a
# restart: placement resumes it too (1.2 times in all). A copy written
# through a file (cp of the image's data into sites/dcn0/) cut at 30 %
# waits and resumes the same way (1.2 times at most).
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
SITE_ADDRESS[dcn0]=127.0.0.2
start_own_clusters --no-mgr --memstore-bytes $((2048 << 20))
METRICS=$WORK/metrics.prom
write_config "metrics_file = $METRICS" "metrics_interval = 1"
mount_imagefs
AT_EXIT+=("'$WAN_LINKS' down")

MIB=256
random_file "$WORK/img" "$MIB"
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
"$WAN_LINKS" up 400 "${SITE_ADDRESS[dcn0]}"
link_bytes() { "$WAN_LINKS" bytes "${SITE_ADDRESS[dcn0]}" | cut -d' ' -f1; }
importing() { xattr "$id" os_glance_importing_to_stores; }
# copy_to STORES...: the import xattr's copy-image.
copy_to() {
  local stores
  stores=$(printf '"%s",' "$@")
  setfattr -n user.glance.import \
    -v "{\"method\":{\"name\":\"copy-image\"},\"stores\":[${stores%,}]}" "$MNT/images/$id"
}

# cut_dcn0 SECONDS: once 30 % of the image crossed dcn0's link since
# $before, cuts it for SECONDS and restores it; $waiting is what
# user.imagefs.progress said of waiting for dcn0 meanwhile ("": never).
cut_dcn0() {
  while [ $(($(link_bytes) - before)) -lt $((MIB * 3 / 10 << 20)) ]; do sleep 0.02; done
  "$WAN_LINKS" cut "${SITE_ADDRESS[dcn0]}"
  local cut_at=$EPOCHREALTIME progress
  echo "cut at $(elapsed "$started") s"
  waiting=
  while [ "$(elapsed "$cut_at" | cut -d. -f1)" -lt "$1" ]; do
    progress=$(getfattr --absolute-names --only-values -n user.imagefs.progress "$MNT/images/$id")
    [[ "$progress" != *"waiting for dcn0 since"* ]] || waiting=$progress
    sleep 0.5
  done
  "$WAN_LINKS" restore "${SITE_ADDRESS[dcn0]}"
}

echo "--- the copy to dcn0 with its link up"
before=$(link_bytes)
started=$EPOCHREALTIME
copy_to dcn0
while [ -n "$(importing)" ]; do sleep 0.05; done
uncut=$(elapsed "$started")
assert_eq "$(xattr "$id" stores)" central,dcn0 "stores after the uncut copy"
echo "uncut: $uncut s, $(awk -v s="$(($(link_bytes) - before))" -v m="$MIB" \
  'BEGIN { printf "%.3f", s / (m * 1048576) }') of the image over the link"
rm "$MNT/sites/dcn0/$id"

echo "--- the same copy, its link cut for 20 s at 30 %"
before=$(link_bytes)
started=$EPOCHREALTIME
copy_to dcn0 dcn1
cut_dcn0 20
[ -n "$waiting" ] || fail "user.imagefs.progress never said it waits for dcn0"
echo "progress during the cut: $waiting"
[[ ",$(xattr "$id" stores)," == *",dcn1,"* ]] || fail "dcn1 was not published during the cut"
limit=$(awk -v u="$uncut" 'BEGIN { print u + 20 + 10 }')
while [ -n "$(importing)" ]; do
  awk -v t="$(elapsed "$started")" -v l="$limit" 'BEGIN { exit !(t > l) }' &&
    fail "the copy did not complete within $limit s"
  sleep 0.1
done
took=$(elapsed "$started")
sent=$(($(link_bytes) - before))
assert_eq "$(xattr "$id" stores | tr , '\n' | sort | paste -sd,)" central,dcn0,dcn1 \
  "stores after the cut copy"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0's copy differs"
ratio=$(awk -v s="$sent" -v m="$MIB" 'BEGIN { printf "%.3f", s / (m * 1048576) }')
echo "completed in $took s (limit $limit s); $ratio of the image over dcn0's link"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }' || fail "$ratio of the image crossed the link"
assert_logged "image $id: copy into dcn0 waits for the store"
assert_logged "image $id: store dcn0 answers again after"
wait_until_rewritten "$METRICS"
grep -q '^imagefs_outages_total{store="dcn0"} [1-9]' "$METRICS" ||
  fail "no outage of dcn0 in the metrics: $(grep outage "$METRICS")"

echo "--- a copy written through a file (cp of the image's data), its link cut at 30 %"
# The writes go on while dcn0 does not answer (the data is still hashed);
# cp's close waits for dcn0 and the copy resumes from central's copy.
rm "$MNT/sites/dcn0/$id"
before=$(link_bytes)
started=$EPOCHREALTIME
cp "$WORK/img" "$MNT/sites/dcn0/$id" 2> "$WORK/cp.err" &
cp_pid=$!
cut_dcn0 12
kill -0 "$cp_pid" 2> /dev/null || fail "cp ended during the cut: $(cat "$WORK/cp.err")"
[ -n "$waiting" ] || fail "user.imagefs.progress never said the written copy waits for dcn0"
wait "$cp_pid" || fail "cp through the cut failed: $(cat "$WORK/cp.err")"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0's written copy differs"
assert_eq "$(xattr "$id" stores | tr , '\n' | sort | paste -sd,)" central,dcn0,dcn1 \
  "stores after the written copy"
ratio=$(awk -v s="$(($(link_bytes) - before))" -v m="$MIB" 'BEGIN { printf "%.3f", s / (m * 1048576) }')
echo "written copy completed in $(elapsed "$started") s; $ratio of the image over dcn0's link"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.2) }' || fail "$ratio of the image crossed the link"

# wait_imported: until the import of $id has ended (60 s at most).
wait_imported() {
  for _ in $(seq 600); do [ -z "$(importing)" ] && return 0; sleep 0.1; done
  fail "the import of $id did not end within 60 s"
}
# ratio BYTES: BYTES as a fraction of the image.
ratio() { awk -v s="$1" -v m="$MIB" 'BEGIN { printf "%.3f", s / (m * 1048576) }'; }

echo "--- a cut longer than outage_timeout: the copy gives up; placement resumes it"
# In CI a 25 s cut past outage_timeout = 10; the issue's figure (a 3 min
# cut, outage_timeout = 60) with GIVE_UP_CUT=180 GIVE_UP_AFTER=60.
GIVE_UP_CUT=${GIVE_UP_CUT:-25}
GIVE_UP_AFTER=${GIVE_UP_AFTER:-10}
unmount_imagefs
write_config "metrics_file = $METRICS" "metrics_interval = 1" "outage_timeout = $GIVE_UP_AFTER" \
  "placement = all"
mount_imagefs
placement_state() {
  getfattr --absolute-names --only-values -n user.imagefs.placement_state "$MNT/images/$id"
}
# wait_placed SECONDS: until placement has the copy in dcn0 again.
wait_placed() {
  for _ in $(seq $(($1 * 10))); do
    [[ ",$(xattr "$id" stores)," == *",dcn0,"* ]] && return 0
    sleep 0.1
  done
  fail "placement did not copy $id to dcn0 within $1 s: $(placement_state)"
}
# rm takes dcn0 out of the image's placement; removing the image's rule
# puts it back (the default, all), and placement copies it.
rm "$MNT/sites/dcn0/$id"
assert_eq "$(getfattr --absolute-names --only-values -n user.imagefs.placement "$MNT/images/$id")" \
  "all,-dcn0" "placement after rm"
before=$(link_bytes)
setfattr -x user.imagefs.placement "$MNT/images/$id"
while [ $(($(link_bytes) - before)) -lt $((MIB * 3 / 10 << 20)) ]; do sleep 0.02; done
"$WAN_LINKS" cut "${SITE_ADDRESS[dcn0]}"
cut_at=$EPOCHREALTIME
gave_up=
while [ "$(elapsed "$cut_at" | cut -d. -f1)" -lt "$GIVE_UP_CUT" ]; do
  [ "$(xattr "$id" os_glance_failed_import)" != dcn0 ] || gave_up=$(placement_state)
  sleep 1
done
"$WAN_LINKS" restore "${SITE_ADDRESS[dcn0]}"
[ -n "$gave_up" ] || fail "the copy did not give up during a $GIVE_UP_CUT s cut"
echo "placement state once it gave up: $gave_up"
assert_logged "store dcn0 did not answer for $GIVE_UP_AFTER s (outage_timeout)"
wait_placed 60
echo "in dcn0 again $(elapsed "$cut_at") s after the cut began (cut $GIVE_UP_CUT s)"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0's resumed copy differs"
assert_logged "image $id: copy into dcn0 resumes in"
sent=$(ratio $(($(link_bytes) - before)))
echo "gave up and resumed: $sent of the image over dcn0's link in all"
awk -v r="$sent" 'BEGIN { exit !(r <= 1.1) }' || fail "$sent of the image crossed the link"

echo "--- kill -9 of the daemon at 50 % of a copy, a restart: placement resumes it"
rm "$MNT/sites/dcn0/$id"
before=$(link_bytes)
setfattr -x user.imagefs.placement "$MNT/images/$id"
while [ $(($(link_bytes) - before)) -lt $((MIB / 2 << 20)) ]; do sleep 0.02; done
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2> /dev/null || true
DAEMON_PID=
fusermount3 -uz "$MNT"
mount_imagefs
wait_placed 60
assert_logged "kept: a copy of image $id resumes from it"
assert_eq "$(xattr "$id" stores | tr , '\n' | sort | paste -sd,)" central,dcn0,dcn1 \
  "stores after the restart's copy"
cmp "$WORK/img" "$MNT/sites/dcn0/$id" || fail "dcn0's copy after the restart differs"
sent=$(ratio $(($(link_bytes) - before)))
echo "killed at 50 % and resumed: $sent of the image over dcn0's link in all"
awk -v r="$sent" 'BEGIN { exit !(r <= 1.2) }' || fail "$sent of the image crossed the link"
[ -z "$(store_temporaries dcn0)" ] || fail "temporaries left in dcn0: $(store_temporaries dcn0)"

unmount_imagefs
pass
