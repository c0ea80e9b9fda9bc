# Shared harness for the real-mount tests. Each test sources this with the
# imagefs binary as $1; it gets its own work directory and mountpoint, and
# the mount is force-unmounted however the test ends.
#
# Two deployments run the same tests:
# - embedded (default): file stores under the work directory, SQLite catalog;
# - ceph, when IMAGEFS_TEST_CEPH_DIR names clusters started by
#   scripts/ceph-cluster.sh (central, dcn0, dcn1): rbd stores in a pool of
#   this test's own on each cluster, the catalog in RADOS on central in a
#   namespace of this test's own. The pools are deleted at the end.
set -euo pipefail

IMAGEFS=${1:?usage: $0 path/to/imagefs}
CLUSTERS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/ceph-cluster.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imagefs-mount-XXXXXX")
MNT=$WORK/mnt
STATE=$WORK/state
LOG=$WORK/imagefs.log
DAEMON_PID=
MNT2=$WORK/mnt2  # a second daemon's (mount_second)
LOG2=$WORK/imagefs2.log
SECOND_PID=
SITES=(central dcn0 dcn1)
# A site's own loopback address (start_own_clusters), for a test that
# shapes its link (scripts/wan-links.sh); unset: 127.0.0.1.
declare -A SITE_ADDRESS=()
WAN_LINKS=$(dirname "$CLUSTERS")/wan-links.sh
CEPH_DIR=${IMAGEFS_TEST_CEPH_DIR:-}
TEST_NAME=$(basename "$0" .sh)
POOL=imagefs-$TEST_NAME-$(basename "$WORK" | cut -d- -f3 | tr 'A-Z' 'a-z')
CATALOG_POOL=imagefs-tests  # the catalog's namespace there is $POOL
CEPH_USER=                  # set: stores and catalog connect as client.$CEPH_USER
OWN_CLUSTERS=               # set by start_own_clusters: stopped at the end
CONNECT_TIMEOUT=10          # rados_connect_timeout of every rbd store
OP_TIMEOUT=30               # rados_op_timeout of every rbd store
STORES=$STATE/stores  # file stores: where the data lives (write_config changes it)
CONFIG_ARGS=()
mkdir -p "$MNT"

cleanup() {
  local status=$?
  # Writers, pipelines and uploads end explicitly (docs/design.md,
  # "Lifetimes"); one dropped without its end is a bug, even when the
  # test's checks passed.
  local log dropped
  for log in "$LOG" "$LOG2"; do
    [ -f "$log" ] || continue
    dropped=$(grep -E "dropped unpublished|dropped without (an end|Close|Release)" "$log" || true)
    if [ -n "$dropped" ] && [ $status -eq 0 ]; then
      echo "FAIL: dropped without an end ($log): $dropped" >&2
      status=1
    fi
  done
  if mountpoint -q "$MNT"; then fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
  if [ -n "$DAEMON_PID" ]; then kill -9 "$DAEMON_PID" 2>/dev/null || true; fi
  if mountpoint -q "$MNT2"; then fusermount3 -uz "$MNT2" 2>/dev/null || umount -l "$MNT2" 2>/dev/null || true; fi
  if [ -n "$SECOND_PID" ]; then kill -9 "$SECOND_PID" 2>/dev/null || true; fi
  for extra in "${EXTRA_MOUNTS[@]:-}"; do [ -n "$extra" ] && umount -l "$extra" 2>/dev/null || true; done
  for pid in "${EXTRA_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for command in "${AT_EXIT[@]:-}"; do [ -z "$command" ] || eval "$command" || true; done
  if [ -n "$OWN_CLUSTERS" ]; then
    "$CLUSTERS" stop "$CEPH_DIR" || true
  elif [ -n "$CEPH_DIR" ]; then
    for site in "${SITES[@]}"; do
      ceph_at "$site" osd pool rm "$POOL" "$POOL" --yes-i-really-really-mean-it > /dev/null 2>&1 || true
    done
  fi
  if [ $status -ne 0 ]; then
    for log in "$LOG" "$LOG2"; do
      [ -f "$log" ] || continue
      echo "--- last lines of the daemon log ($log)"
      tail -n 40 "$log"
    done
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 143' TERM
EXTRA_MOUNTS=()
EXTRA_PIDS=()  # helpers (an HTTP server) killed at the end
AT_EXIT=()     # commands that undo what a test changed (tc, stopped daemons)

# fail MESSAGE: ends the test, also from inside $(...) or a pipeline (where
# exit alone would end only that subshell, and `|| true` would hide it).
fail() {
  echo "FAIL: $*" >&2
  [ "$BASH_SUBSHELL" -eq 0 ] || kill -TERM $$
  exit 1
}

# mount_imagefs [imagefs options...]: mounts on $MNT, daemon in foreground mode
# in the background so the test can kill it. Uses the test's configuration
# when write_config made one (always on ceph), else the embedded default.
mount_imagefs() {
  start_daemon "$MNT" "$STATE" "$LOG" "$@"
  DAEMON_PID=$STARTED_PID
}

# mount_second [imagefs options...]: a second daemon, as at another site:
# same configuration (stores, catalog), its own state directory, mounted on
# $MNT2 (log $LOG2).
mount_second() {
  mkdir -p "$MNT2"
  start_daemon "$MNT2" "$WORK/state2" "$LOG2" "$@"
  SECOND_PID=$STARTED_PID
}

# start_daemon MNT STATE LOG [options...]: sets STARTED_PID once MNT serves.
start_daemon() {
  local mnt=$1 state=$2 log=$3
  shift 3
  if [ -n "$CEPH_DIR" ] && [ ${#CONFIG_ARGS[@]} -eq 0 ]; then write_config; fi
  "$IMAGEFS" --state-dir="$state" --log-file="$log" "${CONFIG_ARGS[@]}" "$@" "$mnt" -f &
  STARTED_PID=$!
  for _ in $(seq 100); do
    mountpoint -q "$mnt" && [ -d "$mnt/images" ] && return 0
    kill -0 "$STARTED_PID" 2>/dev/null || fail "imagefs exited before mounting $mnt"
    sleep 0.1
  done
  fail "imagefs did not mount $mnt within 10 s"
}

# unmount_second: unmounts $MNT2; the second daemon must exit cleanly.
unmount_second() {
  fusermount3 -u "$MNT2"
  wait "$SECOND_PID" || fail "B exited with an error"
  SECOND_PID=
}

unmount_imagefs() {
  fusermount3 -u "$MNT"
  wait "$DAEMON_PID" || fail "imagefs exited with an error"
  DAEMON_PID=
}

ceph_at() {
  local site=$1
  shift
  ceph -c "$CEPH_DIR/$site/ceph.conf" --connect-timeout 20 "$@"
}

rbd_at() {
  local site=$1
  shift
  rbd -c "$CEPH_DIR/$site/ceph.conf" -p "$POOL" "$@"
}

# start_own_clusters [ceph-cluster.sh options]: this test's own three
# clusters (e.g. --cephx) instead of the shared ones; the stores use their
# pool `images`, the catalog central's pool `imagefs`.
start_own_clusters() {
  CEPH_DIR=$WORK/clusters
  OWN_CLUSTERS=yes
  POOL=images
  CATALOG_POOL=imagefs
  local sites=() site
  for site in "${SITES[@]}"; do sites+=("$site${SITE_ADDRESS[$site]:+@${SITE_ADDRESS[$site]}}"); done
  "$CLUSTERS" start "$CEPH_DIR" "${sites[@]}" "$@" > /dev/null
}

# create_pool SITE: this test's pool on SITE's cluster, ready for RBD.
create_pool() {
  ceph_at "$1" osd pool create "$POOL" 8 8 > /dev/null 2>&1
  ceph_at "$1" osd pool application enable "$POOL" rbd > /dev/null
}

# write_config [LINE...]: $WORK/imagefs.conf for this test's deployment;
# the lines go into its [imagefs] section. Sites named in UNPROVISIONED get
# no pool (provision_store makes it later).
UNPROVISIONED=()
write_config() {
  CONFIG_ARGS=(--config="$WORK/imagefs.conf")
  STORES=$WORK/stores
  {
    echo "[DEFAULT]"
    local driver=file
    [ -z "$CEPH_DIR" ] || driver=rbd
    echo "enabled_backends = $(printf "%s:$driver, " "${SITES[@]}" | sed 's/, $//')"
    echo "[glance_store]"
    echo "default_backend = central"
    for site in "${SITES[@]}"; do
      echo "[$site]"
      echo "store_description = the $site site"
      if [ -n "$CEPH_DIR" ]; then
        echo "rbd_store_ceph_conf = $CEPH_DIR/$site/ceph.conf"
        echo "rbd_store_pool = $POOL"
        if [ -n "$CEPH_USER" ]; then
          echo "rbd_store_user = $CEPH_USER"
          echo "rbd_store_keyring = $CEPH_DIR/$site/client.$CEPH_USER.keyring"
        fi
        echo "rbd_store_chunk_size = 4"
        echo "rados_connect_timeout = $CONNECT_TIMEOUT"
        echo "rados_op_timeout = $OP_TIMEOUT"
      else
        echo "filesystem_store_datadir = $WORK/stores/$site"
      fi
    done
    echo "[catalog]"
    if [ -n "$CEPH_DIR" ]; then
      echo "backend = rados"
      echo "rados_pool = $CATALOG_POOL"
      echo "rados_namespace = $POOL"
    else
      echo "path = $WORK/catalog.db"  # shared by every daemon of the test
    fi
    echo "[imagefs]"
    printf '%s\n' "$@"
  } > "$WORK/imagefs.conf"
  if [ -n "$CEPH_DIR" ]; then
    for site in "${SITES[@]}"; do
      [[ " ${UNPROVISIONED[*]:-} " == *" $site "* ]] || [ -n "$OWN_CLUSTERS" ] || create_pool "$site"
    done
  fi
}

# failing_store SITE: before write_config, makes SITE's store really fail
# for anything but small images: embedded, it lives on a 1 MiB tmpfs (full);
# on ceph, its pool does not exist yet (provision_store creates it).
failing_store() {
  if [ -n "$CEPH_DIR" ]; then
    UNPROVISIONED+=("$1")
  else
    mkdir -p "$WORK/stores/$1"
    mount -t tmpfs -o size=1m "imagefs-test-$1" "$WORK/stores/$1"
    EXTRA_MOUNTS+=("$WORK/stores/$1")
  fi
}

# provision_store SITE: makes a failing_store work for small images.
provision_store() {
  if [ -n "$CEPH_DIR" ]; then create_pool "$1"; fi
}

# store_list SITE: the names in SITE's store, one per line, read past
# imagefs (rbd ls; the file store's directory). Fails the test when the
# store cannot be read; a pool not provisioned (failing_store) is empty.
store_list() {
  if [ -n "$CEPH_DIR" ]; then
    local listed
    if listed=$(rbd_at "$1" ls 2>&1); then
      [ -z "$listed" ] || echo "$listed"
    else
      case "$listed" in
        *"error opening pool '$POOL': (2)"*) ;;
        *) fail "cannot list the images of $1: $listed" ;;
      esac
    fi
  else
    ls -A "$STORES/$1" || fail "cannot list the store directory $STORES/$1"
  fi
}

# store_images SITE: ids of the images SITE's store holds, one per line.
store_images() {
  local uuid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  store_list "$1" | grep -E "$uuid" || true
}

# store_temporaries SITE: unpublished data in SITE's store, one per line.
store_temporaries() {
  if [ -n "$CEPH_DIR" ]; then
    store_list "$1" | grep '^imagefs-tmp\.' || true
  else
    ls -A "$STORES/$1/.tmp" || fail "cannot list the temporaries of $STORES/$1"
  fi
}

# store_data SITE ID: the bytes SITE's store holds for image ID, read past
# imagefs (rbd export of the protected snapshot; the file store's file).
store_data() {
  if [ -n "$CEPH_DIR" ]; then
    rbd_at "$1" snap ls "$2" | grep -q ' snap ' || fail "$1: $2 has no snapshot 'snap'"
    rbd_at "$1" info "$2@snap" | grep -q 'protected: True' || fail "$1: $2@snap is not protected"
    rbd_at "$1" export --no-progress "$2@snap" -
  else
    cat "$STORES/$1/$2"
  fi
}

# store_has SITE ID: SITE's store holds data of image ID.
store_has() { store_images "$1" | grep -qx "$2"; }

new_uuid() { cat /proc/sys/kernel/random/uuid; }

# elapsed FROM: seconds since FROM ($EPOCHREALTIME).
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# image_in_central_and_dcn0 MIB: a new image of MIB random MiB ($WORK/img),
# uploaded to central and copied to dcn0; sets id and md5.
image_in_central_and_dcn0() {
  random_file "$WORK/img" "$1"
  md5=$(md5sum < "$WORK/img" | cut -d' ' -f1)
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  cp "$WORK/img" "$MNT/sites/central/$id"
  cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
}

# random_file PATH MIB: a file of random data.
random_file() { head -c "$(($2 * 1024 * 1024))" /dev/urandom > "$1"; }

# glance_store_dir DIR N: a directory laid out as a Glance filesystem store,
# N files of 2 MiB of random data named by new image ids, dated
# 2024-05-01 12:00; their ids in STORE_IMAGES.
glance_store_dir() {
  mkdir "$1"
  STORE_IMAGES=()
  for _ in $(seq "$2"); do
    STORE_IMAGES+=("$(new_uuid)")
    random_file "$1/${STORE_IMAGES[-1]}" 2
  done
  touch -d '2024-05-01 12:00:00' "$1/"*
}

# catalog_leases: the import leases the catalog holds, one image per line
# (read past imagefs: SQLite's table, or the RADOS object's omap keys).
catalog_leases() {
  if [ -n "$CEPH_DIR" ]; then
    rados -c "$CEPH_DIR/central/ceph.conf" -p "$CATALOG_POOL" -N "$POOL" \
      listomapkeys imagefs.leases 2>/dev/null || true
  else
    python3 -c 'import sqlite3, sys
for (image,) in sqlite3.connect(sys.argv[1]).execute("SELECT image_id FROM leases"):
    print(image)' "$WORK/catalog.db"
  fi
}

# kept_to_resume SITE TEMPORARY: whether the temporary is kept for a copy
# to resume (docs/contract.md): it has a resume record, and its image no
# copy in SITE.
kept_to_resume() {
  local site=$1 name=$2 id
  if [ -n "$CEPH_DIR" ]; then
    id=${name#imagefs-tmp.}
    rados -c "$CEPH_DIR/$site/ceph.conf" -p "$POOL" stat "imagefs-resume.$name" > /dev/null 2>&1 ||
      return 1
  else
    getfattr -n user.imagefs.resume "$STORES/$site/.tmp/$name" > /dev/null 2>&1 || return 1
  fi
  id=${id:-$name}
  id=${id%%.*}
  [[ ",$(xattr "$id" stores 2> /dev/null || true)," != *",$site,"* ]]
}

# store_leftovers: what the stores hold that the catalog does not list,
# one line each: temporaries (but those kept for a copy to resume), and
# data of an image without a location there.
store_leftovers() {
  local ids id site name
  ids=$(ls "$MNT/images")
  for site in "${SITES[@]}"; do
    for name in $(store_temporaries "$site"); do
      kept_to_resume "$site" "$name" || echo "$site: temporary $name"
    done
    for id in $(store_images "$site"); do
      [[ ",$(xattr "$id" stores 2> /dev/null || true)," == *",$site,"* ]] ||
        echo "$site: data of $id without a location there"
    done
  done
}

# check_consistency: what no crash may leave, checked past imagefs where it
# can be (the stores directly, the catalog's leases), fails the test else:
# - every image settled (queued or active, nothing importing), and every
#   location's store holds the image with the record's size and md5;
# - no store holds a temporary, or data of an image without a location there;
# - no import lease left in the catalog.
check_consistency() {
  local ids id site status checksum size
  local -a stores
  # On rbd, data a killed daemon still had open stays until its watch
  # times out (30 s); recovery removes it then. Everything else is checked
  # at once.
  for _ in $(seq 90); do
    [ -z "$(store_leftovers)" ] && break
    sleep 0.5
  done
  assert_eq "$(store_leftovers)" "" "left in the stores"
  ids=$(ls "$MNT/images")
  for id in $ids; do
    status=$(xattr "$id" status)
    assert_eq "$(xattr "$id" os_glance_importing_to_stores || true)" "" "image $id: importing"
    case "$status" in
      queued) assert_eq "$(xattr "$id" stores || true)" "" "queued image $id: locations" ;;
      active)
        checksum=$(xattr "$id" checksum)
        size=$(xattr "$id" size)
        IFS=, read -ra stores <<< "$(xattr "$id" stores)"
        [ ${#stores[@]} -gt 0 ] || fail "active image $id has no location"
        for site in "${stores[@]}"; do
          store_data "$site" "$id" > "$WORK/held"
          assert_eq "$(md5sum < "$WORK/held" | cut -d' ' -f1)" "$checksum" "image $id: md5 in $site"
          assert_eq "$(stat -c %s "$WORK/held")" "$size" "image $id: size in $site"
        done
        ;;
      *) fail "image $id: status $status" ;;
    esac
  done
  assert_eq "$(catalog_leases)" "" "leases left in the catalog"
}

# serve_http DIR: serves DIR's files over HTTP on loopback (python3, which
# ceph-common brings) until the test ends; sets HTTP_URL to its root.
serve_http() {
  local out=$WORK/http.out
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" > "$out" 2>&1 &
  EXTRA_PIDS+=($!)
  for _ in $(seq 100); do
    HTTP_URL=$(sed -n 's|.*(\(http://127.0.0.1:[0-9]*/\)).*|\1|p' "$out")
    [ -n "$HTTP_URL" ] && return 0
    sleep 0.1
  done
  fail "the HTTP server did not start: $(cat "$out")"
}

# write_blocks FROM TO BLOCK...: copies the 1 MiB blocks of FROM into TO in
# the order given, through one descriptor (as a program writing out of
# order does); TO is committed when it closes.
write_blocks() {
  perl -e '
    my ($from, $to, @order) = @ARGV;
    open(my $in, "<", $from) or die "$from: $!";
    open(my $out, ">", $to) or die "$to: $!";
    for my $block (@order) {
      sysseek($in, $block << 20, 0) or die;
      sysread($in, my $data, 1 << 20) == 1 << 20 or die "$from: short read";
      sysseek($out, $block << 20, 0) or die;
      syswrite($out, $data) == 1 << 20 or die "$to: write: $!\n";
    }
    close($out) or die "$to: close: $!\n";' "$@"
}

assert_eq() {
  [ "$1" == "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}

# expect_error TEXT COMMAND...: the command fails and says TEXT (strerror).
expect_error() {
  local text=$1
  shift
  local output
  if output=$("$@" 2>&1); then fail "'$*' succeeded, expected '$text'"; fi
  case "$output" in
    *"$text"*) ;;
    *) fail "'$*' said '$output', expected '$text'" ;;
  esac
}

xattr() { getfattr --absolute-names --only-values -n "user.glance.$2" "$MNT/images/$1"; }
xattr2() { getfattr --absolute-names --only-values -n "user.glance.$2" "$MNT2/images/$1"; }

# wait_for_xattr IMAGE NAME VALUE: polls until the attribute has VALUE (10 s);
# wait_for_xattr2 the same on the second daemon. What one daemon changes
# shows on another within the attribute timeout (1 s: a rados catalog keeps
# inspected records that long, catalog.h).
wait_for_xattr() { wait_for_value xattr "$@"; }
wait_for_xattr2() { wait_for_value xattr2 "$@"; }
wait_for_value() {
  local read=$1
  shift
  for _ in $(seq 100); do
    [ "$("$read" "$1" "$2")" == "$3" ] && return 0
    sleep 0.1
  done
  fail "image $1: $2 is '$("$read" "$1" "$2")' ($read), expected '$3'"
}

# wait_until_rewritten FILE...: waits (up to 10 s) until every FILE was
# written again after this call, twice: the first write may have begun
# before the call (the metrics file, rewritten every metrics_interval).
wait_until_rewritten() {
  local mark file fresh round
  for round in 1 2; do
    mark=$(mktemp "$WORK/mark.XXXXXX")
    for _ in $(seq 100); do
      sleep 0.1
      fresh=1
      for file in "$@"; do [ "$file" -nt "$mark" ] || fresh=0; done
      [ "$fresh" -eq 1 ] && continue 2
    done
    fail "not written again within 10 s (round $round): $*"
  done
}

# The log line docs/contract.md promises for an error.
assert_logged() {
  grep -q -- "$1" "$LOG" || fail "no log line matching '$1'"
}

pass() { echo "PASS: $(basename "$0" .sh)"; }
