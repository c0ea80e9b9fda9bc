# Shared harness for the real-mount tests. Each test sources this with the
# imagefs binary as $1; it gets its own work directory and mountpoint, and
# the mount is force-unmounted however the test ends.
set -euo pipefail

IMAGEFS=${1:?usage: $0 path/to/imagefs}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imagefs-mount-XXXXXX")
MNT=$WORK/mnt
STATE=$WORK/state
LOG=$WORK/imagefs.log
DAEMON_PID=
mkdir -p "$MNT"

cleanup() {
  local status=$?
  if mountpoint -q "$MNT"; then fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
  if [ -n "$DAEMON_PID" ]; then kill -9 "$DAEMON_PID" 2>/dev/null || true; fi
  for extra in "${EXTRA_MOUNTS[@]:-}"; do [ -n "$extra" ] && umount -l "$extra" 2>/dev/null || true; done
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
# in the background so the test can kill it.
mount_imagefs() {
  "$IMAGEFS" --state-dir="$STATE" --log-file="$LOG" "$@" "$MNT" -f &
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

# write_config [LINE...]: $WORK/imagefs.conf with three file stores under
# $WORK/stores; the lines go into its [imagefs] section.
write_config() {
  {
    echo "[DEFAULT]"
    echo "enabled_backends = central:file, dcn0:file, dcn1:file"
    echo "[glance_store]"
    echo "default_backend = central"
    for site in central dcn0 dcn1; do
      echo "[$site]"
      echo "filesystem_store_datadir = $WORK/stores/$site"
    done
    echo "[imagefs]"
    printf '%s\n' "$@"
  } > "$WORK/imagefs.conf"
}

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
