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
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imagefs-mount-XXXXXX")
MNT=$WORK/mnt
STATE=$WORK/state
LOG=$WORK/imagefs.log
DAEMON_PID=
SITES=(central dcn0 dcn1)
CEPH_DIR=${IMAGEFS_TEST_CEPH_DIR:-}
TEST_NAME=$(basename "$0" .sh)
POOL=imagefs-$TEST_NAME-$(basename "$WORK" | cut -d- -f3 | tr 'A-Z' 'a-z')
STORES=$STATE/stores  # file stores: where the data lives (write_config changes it)
CONFIG_ARGS=()
mkdir -p "$MNT"

cleanup() {
  local status=$?
  if mountpoint -q "$MNT"; then fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
  if [ -n "$DAEMON_PID" ]; then kill -9 "$DAEMON_PID" 2>/dev/null || true; fi
  for extra in "${EXTRA_MOUNTS[@]:-}"; do [ -n "$extra" ] && umount -l "$extra" 2>/dev/null || true; done
  if [ -n "$CEPH_DIR" ]; then
    for site in "${SITES[@]}"; do
      ceph_at "$site" osd pool rm "$POOL" "$POOL" --yes-i-really-really-mean-it > /dev/null 2>&1 || true
    done
  fi
  if [ $status -ne 0 ] && [ -f "$LOG" ]; then
    echo "--- last lines of the daemon log ($LOG)"
    tail -n 40 "$LOG"
  fi
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
EXTRA_MOUNTS=()

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# mount_imagefs [imagefs options...]: mounts on $MNT, daemon in foreground mode
# in the background so the test can kill it. Uses the test's configuration
# when write_config made one (always on ceph), else the embedded default.
mount_imagefs() {
  if [ -n "$CEPH_DIR" ] && [ ${#CONFIG_ARGS[@]} -eq 0 ]; then write_config; fi
  "$IMAGEFS" --state-dir="$STATE" --log-file="$LOG" "${CONFIG_ARGS[@]}" "$@" "$MNT" -f &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    mountpoint -q "$MNT" && [ -d "$MNT/images" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "imagefs exited before mounting"
    sleep 0.1
  done
  fail "imagefs did not mount within 10 s"
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
    if [ -n "$CEPH_DIR" ]; then
      echo "enabled_backends = central:rbd, dcn0:rbd, dcn1:rbd"
    else
      echo "enabled_backends = central:file, dcn0:file, dcn1:file"
    fi
    echo "[glance_store]"
    echo "default_backend = central"
    for site in "${SITES[@]}"; do
      echo "[$site]"
      if [ -n "$CEPH_DIR" ]; then
        echo "rbd_store_ceph_conf = $CEPH_DIR/$site/ceph.conf"
        echo "rbd_store_pool = $POOL"
        echo "rbd_store_chunk_size = 4"
        echo "rados_connect_timeout = 10"
        echo "rados_op_timeout = 30"
      else
        echo "filesystem_store_datadir = $WORK/stores/$site"
      fi
    done
    if [ -n "$CEPH_DIR" ]; then
      echo "[catalog]"
      echo "backend = rados"
      echo "rados_pool = imagefs-tests"
      echo "rados_namespace = $POOL"
    fi
    echo "[imagefs]"
    printf '%s\n' "$@"
  } > "$WORK/imagefs.conf"
  if [ -n "$CEPH_DIR" ]; then
    for site in "${SITES[@]}"; do
      [[ " ${UNPROVISIONED[*]:-} " == *" $site "* ]] || create_pool "$site"
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

# store_images SITE: ids of the images SITE's store holds, one per line.
store_images() {
  local uuid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  if [ -n "$CEPH_DIR" ]; then
    rbd_at "$1" ls | grep -E "$uuid" || true
  else
    ls -A "$STORES/$1" 2>/dev/null | grep -E "$uuid" || true
  fi
}

# store_temporaries SITE: unpublished data in SITE's store, one per line.
store_temporaries() {
  if [ -n "$CEPH_DIR" ]; then
    rbd_at "$1" ls | grep '^imagefs-tmp\.' || true
  else
    ls -A "$STORES/$1/.tmp" 2>/dev/null || true
  fi
}

# store_has SITE ID: SITE's store holds data of image ID.
store_has() { store_images "$1" | grep -qx "$2"; }

new_uuid() { cat /proc/sys/kernel/random/uuid; }

# random_file PATH MIB: a file of random data.
random_file() { head -c "$(($2 * 1024 * 1024))" /dev/urandom > "$1"; }

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

xattr() { getfattr --only-values -n "user.glance.$2" "$MNT/images/$1"; }

# wait_for_xattr IMAGE NAME VALUE: polls until the attribute has VALUE (10 s).
wait_for_xattr() {
  for _ in $(seq 100); do
    [ "$(xattr "$1" "$2")" == "$3" ] && return 0
    sleep 0.1
  done
  fail "image $1: $2 is '$(xattr "$1" "$2")', expected '$3'"
}

# The log line the SPEC promises for an error.
assert_logged() {
  grep -q -- "$1" "$LOG" || fail "no log line matching '$1'"
}

pass() { echo "PASS: $(basename "$0" .sh)"; }
