# Ceph only: an edge cluster stops in the middle of a copy to two edges.
# Allow-failure: the other edge's copy is published, the stopped one is
# listed failed. Must-succeed: nothing of the import stays anywhere, the
# stopped edge is listed failed. Either way the import ends soon after the
# writes in flight time out (rados_op_timeout), and the source copy is
# intact. With outage_timeout = 0 a copy does not wait for an edge that
# stops answering (wan_outage.sh tests the wait).
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
CONNECT_TIMEOUT=3
OP_TIMEOUT=3
random_file "$WORK/img" 192

now() { date +%s.%N; }
within() { awk -v s="$1" -v a="$2" -v b="$(now)" 'BEGIN { exit !(b - a < s) }'; }

# copy_with_dcn1_stopping MUST-SUCCEED HOW: a fresh deployment, an image at
# central, an import to dcn0 and dcn1; dcn1 stops once its copy is being
# written. HOW: `pause` stops its OSD (SIGSTOP: it no longer answers, and
# may come back with its data), `stop` ends the cluster. Sets ID; returns
# when the import has ended.
copy_with_dcn1_stopping() {
  start_own_clusters --memstore-bytes $((1 << 30)) --no-mgr  # no df here
  write_config "outage_timeout = 0"
  mount_imagefs
  ID=$(new_uuid)
  mkdir "$MNT/images/$ID"
  cp "$WORK/img" "$MNT/sites/central/$ID"
  setfattr -n user.glance.import \
    -v "{\"method\":{\"name\":\"copy-image\"},\"stores\":[\"dcn0\",\"dcn1\"],\"all_stores_must_succeed\":$1}" \
    "$MNT/images/$ID"
  for _ in $(seq 200); do
    [ -n "$(store_temporaries dcn1)" ] && break
    sleep 0.01
  done
  [ -n "$(store_temporaries dcn1)" ] || fail "the copy to dcn1 never started"
  if [ "$2" == pause ]; then
    kill -STOP "$(cat "$CEPH_DIR/dcn1/run/osd.0.pid")"
  else
    "$CLUSTERS" stop "$CEPH_DIR" dcn1
  fi
  local stopped
  stopped=$(now)
  for _ in $(seq 300); do
    [ -z "$(xattr "$ID" os_glance_importing_to_stores)" ] && break
    sleep 0.1
  done
  assert_eq "$(xattr "$ID" os_glance_importing_to_stores)" "" "import still running"
  # The writes in flight time out (OP_TIMEOUT) while dcn0's copy goes on;
  # nothing after them waits for dcn1 again (its temporary is left to
  # recovery). Waiting once more per cleanup step took over 4 timeouts.
  within $((OP_TIMEOUT * 3 + 3)) "$stopped" || fail "the import outlived its timeouts"
  echo "must-succeed $1: ended $(awk -v a="$stopped" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s after dcn1 stopped"
  assert_eq "$(xattr "$ID" os_glance_failed_import)" dcn1 "failed list"
  assert_eq "$(xattr "$ID" status)" active "status"
  cmp "$WORK/img" <(store_data central "$ID") || fail "the source copy changed"
  assert_logged "image $ID: import to store dcn1 failed"
}

# Allow-failure: dcn0's copy is published and whole.
copy_with_dcn1_stopping false pause
assert_eq "$(xattr "$ID" stores)" central,dcn0 "stores (allow-failure)"
cmp "$WORK/img" <(store_data dcn0 "$ID") || fail "dcn0's copy differs"
assert_eq "$(store_temporaries dcn0)" "" "temporaries in dcn0"
# dcn1 answers again: the temporary its copy left goes (the sweeper), and
# the copy can be made.
kill -CONT "$(cat "$CEPH_DIR/dcn1/run/osd.0.pid")"
for _ in $(seq 300); do
  [ -z "$(store_temporaries dcn1)" ] && break
  sleep 0.1
done
assert_eq "$(store_temporaries dcn1)" "" "temporaries in dcn1 once it answers again"
cp "$MNT/sites/central/$ID" "$MNT/sites/dcn1/$ID"
assert_eq "$(xattr "$ID" stores)" central,dcn0,dcn1 "stores after dcn1 came back"
cmp "$WORK/img" <(store_data dcn1 "$ID") || fail "dcn1's copy differs"
unmount_imagefs
"$CLUSTERS" stop "$CEPH_DIR"

# Must-succeed: dcn0's finished copy is rolled back; only central holds it.
copy_with_dcn1_stopping true stop
assert_eq "$(xattr "$ID" stores)" central "stores (must-succeed)"
! store_has dcn0 "$ID" || fail "dcn0 still holds the rolled-back copy"
assert_eq "$(store_temporaries dcn0)" "" "temporaries in dcn0"
unmount_imagefs
pass
