# Ceph only: an edge keeps serving its own copies when central is cut off
# (docs/contract.md, "When central is unreachable"), in the two ways a WAN fails:
# 1. central's monitor and OSD stop answering (SIGSTOP: a dead host);
# 2. only the edge's link to central dies: tc HTB shapes the traffic
#    between the edge daemons and central to 1 kbit/s, while a daemon at
#    central goes on working and creates an image.
# The edge daemons' connections leave from 127.0.0.2 (source_address.cc),
# which is how tc tells their traffic from the central daemon's.
# Each time, within 5 s of the cut, at the edge: `ls`, `getfattr` and
# `md5sum` of the dcn0 copy answer right; a copy to dcn1 and an rmdir fail
# at once with EHOSTUNREACH ("No route to host"); a second edge daemon
# started during the outage serves the same from its replica. When central
# answers again, both go live within 10 s by themselves and show what
# changed at central meanwhile.
source "$(dirname "$0")/lib.sh"
[ -n "$CEPH_DIR" ] || fail "needs IMAGEFS_TEST_CEPH_DIR (real clusters)"
SHIM=${IMAGEFS_TEST_SOURCE_ADDRESS_LIB:?the harness library (tests/CMakeLists.txt)}
start_own_clusters --no-mgr  # no df here: seconds sooner
write_config
EDGE_ADDR=127.0.0.2
MNT3=$WORK/mnt3
unreachable="No route to host"

# start_edge MNT STATE LOG: a daemon at the edge (its own link to central).
start_edge() {
  LD_PRELOAD=$SHIM IMAGEFS_TEST_SOURCE_ADDR=$EDGE_ADDR start_daemon "$@"
}
mkdir -p "$MNT2"
start_edge "$MNT" "$STATE" "$LOG"
DAEMON_PID=$STARTED_PID
start_edge "$MNT2" "$WORK/state2" "$LOG2"
SECOND_PID=$STARTED_PID
mkdir -p "$MNT2" "$MNT3"
start_daemon "$MNT3" "$WORK/state3" "$WORK/imagefs3.log"  # at central
EXTRA_PIDS+=("$STARTED_PID")
EXTRA_MOUNTS+=("$MNT3")

catalog_state() { getfattr --absolute-names --only-values -n user.imagefs.catalog "$1"; }
for mnt in "$MNT" "$MNT2" "$MNT3"; do assert_eq "$(catalog_state "$mnt")" live "$mnt at start"; done

image_in_central_and_dcn0 8

# by FROM LIMIT LABEL COMMAND...: the command succeeds, and ends within
# LIMIT seconds of FROM.
by() {
  local from=$1 limit=$2 label=$3
  shift 3
  "$@" || fail "$label"
  local took
  took=$(elapsed "$from")
  echo "$label: done $took s after the cut"
  awk -v t="$took" -v l="$limit" 'BEGIN { exit !(t < l) }' || fail "$label: after $took s (limit $limit s)"
}
# at_once LABEL COMMAND...: the command succeeds within 1 s.
at_once() {
  local started=$EPOCHREALTIME label=$1
  shift
  "$@" || fail "$label"
  local took
  took=$(elapsed "$started")
  echo "$label: $took s"
  awk -v t="$took" 'BEGIN { exit !(t < 1) }' || fail "$label took $took s"
}
lists() { ls "$1" | grep -qx "$2"; }
has_value() { [ "$(getfattr --absolute-names --only-values -n "$2" "$1")" == "$3" ]; }
reads() { [ "$(md5sum < "$1" | cut -d' ' -f1)" == "$2" ]; }
cut_off() { [[ "$(catalog_state "$1")" == "replica, central unreachable since "* ]]; }

# serves_cut_off MNT FROM: what an edge mount serves and refuses without
# central, within 5 s of FROM.
serves_cut_off() {
  local mnt=$1 from=$2
  by "$from" 5 "ls $mnt/sites/dcn0" lists "$mnt/sites/dcn0" "$id"
  by "$from" 5 "getfattr stores" has_value "$mnt/images/$id" user.glance.stores central,dcn0
  by "$from" 5 "getfattr status" has_value "$mnt/images/$id" user.glance.status active
  by "$from" 5 "md5sum of the dcn0 copy" reads "$mnt/sites/dcn0/$id" "$md5"
  # Reads may answer from memory before anything noticed the cut; the
  # follower's probe notices within its op timeout (3 s).
  for _ in $(seq 60); do cut_off "$mnt" && break; sleep 0.1; done
  by "$from" 5 "user.imagefs.catalog says so" cut_off "$mnt"
  echo "$mnt: $(catalog_state "$mnt")"
  at_once "copy to dcn1 refused" expect_error "$unreachable" \
    cp "$mnt/sites/dcn0/$id" "$mnt/sites/dcn1/$id"
  at_once "rmdir refused" expect_error "$unreachable" rmdir "$mnt/images/$id"
  at_once "mkdir refused" expect_error "$unreachable" mkdir "$mnt/images/$(new_uuid)"
  [ -d "$mnt/images/$id" ] || fail "the image is gone after a refused rmdir"
}

# restart_second_during_outage: B stops, then starts again while central
# is cut off, from its replica.
restart_second() {
  unmount_second
  local started=$EPOCHREALTIME
  start_edge "$MNT2" "$WORK/state2" "$LOG2"
  SECOND_PID=$STARTED_PID
  echo "B mounted during the outage in $(elapsed "$started") s"
  serves_cut_off "$MNT2" "$started"
}

# back_live FROM: both edge mounts go live within 10 s of FROM.
back_live() {
  local from=$1 mnt
  for mnt in "$MNT" "$MNT2"; do
    for _ in $(seq 100); do
      [ "$(catalog_state "$mnt")" == live ] && break
      sleep 0.1
    done
    by "$from" 10 "$mnt live again" has_value "$mnt" user.imagefs.catalog live
  done
}

sleep 1.5  # B's replica follows central every 0.5 s

echo "--- 1. central's monitor and OSD stop answering"
mon=$(cat "$CEPH_DIR/central/run/mon.a.pid")
osd=$(cat "$CEPH_DIR/central/run/osd.0.pid")
AT_EXIT+=("kill -CONT $mon $osd")
kill -STOP "$mon" "$osd"
cut=$EPOCHREALTIME
serves_cut_off "$MNT" "$cut"
restart_second
kill -CONT "$mon" "$osd"
back_live "$EPOCHREALTIME"
cp "$MNT/sites/dcn0/$id" "$MNT/sites/dcn1/$id"
has_value "$MNT2/images/$id" user.glance.stores central,dcn0,dcn1 || fail "B: stores after the copy"
rm "$MNT/sites/dcn1/$id"
assert_logged "catalog: central does not answer"
assert_logged "catalog: cannot create image"
assert_logged "catalog: central answers again after"

echo "--- 2. only the edge's link to central: 1 kbit/s"
sleep 1.5
# Central's ports: its monitor's and every one its OSD listens on.
ports=$(sed -n 's/^mon_host = v2:127.0.0.1:\([0-9]*\)$/\1/p' "$CEPH_DIR/central/ceph.conf")
ports+=" $(ss -ltnpH | awk -v pid="pid=$osd," '$0 ~ pid { n = split($4, a, ":"); print a[n] }')"
tc qdisc add dev lo root handle 1: htb default 1
AT_EXIT+=("tc qdisc del dev lo root 2>/dev/null")
tc class add dev lo parent 1: classid 1:1 htb rate 100gbit 2>/dev/null
tc class add dev lo parent 1: classid 1:2 htb rate 1kbit ceil 1kbit 2>/dev/null
for port in $ports; do
  tc filter add dev lo parent 1: protocol ip prio 1 u32 \
    match ip src "$EDGE_ADDR/32" match ip dport "$port" 0xffff flowid 1:2
  tc filter add dev lo parent 1: protocol ip prio 1 u32 \
    match ip dst "$EDGE_ADDR/32" match ip sport "$port" 0xffff flowid 1:2
done
cut=$EPOCHREALTIME
serves_cut_off "$MNT" "$cut"
# Central goes on: its own daemon creates an image there.
id2=$(new_uuid)
random_file "$WORK/img2" 4
md5_2=$(md5sum < "$WORK/img2" | cut -d' ' -f1)
mkdir "$MNT3/images/$id2"
cp "$WORK/img2" "$MNT3/sites/central/$id2"
assert_eq "$(catalog_state "$MNT3")" live "the daemon at central"
[ ! -e "$MNT/images/$id2" ] || fail "the cut-off edge shows an image it cannot know"
restart_second
tc qdisc del dev lo root
AT_EXIT=("kill -CONT $mon $osd")
back_live "$EPOCHREALTIME"
for mnt in "$MNT" "$MNT2"; do
  lists "$mnt/images" "$id2" || fail "$mnt: the image created at central during the outage"
  reads "$mnt/sites/central/$id2" "$md5_2" || fail "$mnt: its data"
done
unmount_second
unmount_imagefs
pass
