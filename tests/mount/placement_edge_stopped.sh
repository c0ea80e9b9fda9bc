# Ceph only: dcn1's cluster stopped (SIGSTOP of its monitor and OSD) for
# 2 min while 5 images are uploaded with `[imagefs] placement = all`.
# Placement copies them to dcn0 at once; dcn1's copies wait (or fail and
# are retried once dcn1 answers: user.imagefs.placement_state says
# waiting or failed for dcn1, never converged). When the cluster answers
# again, all 5 reach dcn1 within 60 s, whole, and nothing is left behind.
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
start_own_clusters --no-mgr
STOPPED_FOR=${STOPPED_FOR:-120}
write_config "placement = all"
mount_imagefs

daemons=()
for pidfile in "$CEPH_DIR"/dcn1/run/*.pid; do daemons+=("$(cat "$pidfile")"); done
[ ${#daemons[@]} -ge 2 ] || fail "dcn1 runs ${#daemons[@]} daemons, expected a monitor and an OSD"
AT_EXIT+=("kill -CONT ${daemons[*]}")
kill -STOP "${daemons[@]}"
stopped_at=$EPOCHREALTIME
echo "dcn1 stopped (pids ${daemons[*]})"

sorted_stores() { xattr "$1" stores | tr , '\n' | sort | paste -sd,; }
state_of() {
  getfattr --absolute-names --only-values -n user.imagefs.placement_state "$MNT/images/$1" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]]["state"])' "$2"
}
ids=()
for i in 1 2 3 4 5; do
  random_file "$WORK/img$i" 8
  ids+=("$(new_uuid)")
  mkdir "$MNT/images/${ids[-1]}"
  cp "$WORK/img$i" "$MNT/sites/central/${ids[-1]}"
done
echo "5 images uploaded $(elapsed "$stopped_at") s after the stop"
for id in "${ids[@]}"; do
  for _ in $(seq 600); do
    [[ ",$(xattr "$id" stores)," == *",dcn0,"* ]] && break
    sleep 0.1
  done
  [[ ",$(xattr "$id" stores)," == *",dcn0,"* ]] || fail "image $id did not reach dcn0 with dcn1 stopped"
done
echo "all in dcn0 $(elapsed "$stopped_at") s after the stop"
seen=()
while awk -v t="$(elapsed "$stopped_at")" -v s="$STOPPED_FOR" 'BEGIN { exit !(t < s) }'; do
  for id in "${ids[@]}"; do
    state=$(state_of "$id" dcn1)
    [ "$state" != converged ] || fail "image $id: dcn1 converged while its cluster is stopped"
    seen+=("$state")
  done
  sleep 2
done
echo "dcn1's states during the stop: $(printf '%s\n' "${seen[@]}" | sort | uniq -c | xargs)"
printf '%s\n' "${seen[@]}" | grep -qxE 'waiting|failed' || fail "no waiting or failed state for dcn1"
kill -CONT "${daemons[@]}"
returned_at=$EPOCHREALTIME
echo "dcn1 answers again after $(elapsed "$stopped_at") s"
for id in "${ids[@]}"; do
  while [ "$(sorted_stores "$id")" != central,dcn0,dcn1 ]; do
    awk -v t="$(elapsed "$returned_at")" 'BEGIN { exit !(t > 60) }' &&
      fail "image $id not in dcn1 60 s after its return (state: $(state_of "$id" dcn1))"
    sleep 0.2
  done
done
echo "all 5 in dcn1 $(elapsed "$returned_at") s after its return"
for i in 1 2 3 4 5; do
  cmp "$WORK/img$i" "$MNT/sites/dcn1/${ids[$((i - 1))]}" || fail "dcn1's copy of image $i differs"
  assert_eq "$(state_of "${ids[$((i - 1))]}" dcn1)" converged "placement state of image $i in dcn1"
done
check_consistency
unmount_imagefs
pass
