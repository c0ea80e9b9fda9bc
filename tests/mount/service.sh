# imagefs run as an operator runs a mounted service, from `cmake --install`:
# the man page renders; --version names the version and revision;
# `mount -t fuse.imagefs` and `mount DIR` from an fstab file mount it (with
# fstab's _netdev and nofail); the installed unit passes
# `systemd-analyze verify`; the daemon tells systemd READY only once the
# mount serves, STATUS while recovery runs, STOPPING on SIGTERM; after a
# kill -9 the unit's own commands and the README's scripts/mount.sh mount
# again; under journald the log lines carry syslog priorities.
#
# mount(8) runs helpers without $PATH, so imagefs must sit where installed
# programs do: the test runs in a mount namespace of its own and mounts its
# install over /usr/local there, leaving the machine as it was.
if [ -z "${IMAGEFS_IN_NAMESPACE:-}" ]; then
  exec unshare --mount --propagation private env IMAGEFS_IN_NAMESPACE=1 bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$(dirname "$IMAGEFS")/.." && pwd)
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log"
for file in bin/imagefs share/man/man8/imagefs.8 lib/systemd/system/imagefs@.service \
            share/doc/imagefs/README.md share/doc/imagefs/imagefs-ceph.conf.example; do
  [ -f "$PREFIX/$file" ] || fail "cmake --install did not install $file"
done
mount --bind "$PREFIX" /usr/local
INSTALLED=/usr/local/bin/imagefs

echo "--- man page and version"
man_text=$(MANWIDTH=80 man -l -P cat /usr/local/share/man/man8/imagefs.8 2> "$WORK/man.err")
[ ! -s "$WORK/man.err" ] || fail "man reports: $(cat "$WORK/man.err")"
for section in NAME SYNOPSIS FSTAB SYSTEMD SIGNALS "WHEN CENTRAL IS UNREACHABLE" METRICS; do
  grep -q "^$section" <<< "$man_text" || fail "imagefs(8) has no section $section"
done
version=$(sed -n 's/^project(imagefs VERSION \([0-9.]*\).*/\1/p' "$SOURCE_DIR/CMakeLists.txt")
reported=$("$INSTALLED" --version | grep '^imagefs ')
[[ "$reported" =~ ^imagefs\ $version\ \(([0-9a-f]{12}(-dirty)?|unknown)\)$ ]] ||
  fail "--version says '$reported' (project version $version)"
echo "$reported"

echo "--- the unit"
mkdir -p "$WORK/units"
cp /usr/local/lib/systemd/system/imagefs@.service "$WORK/units/imagefs@mnt-imagefs.service"
grep -q "^ExecStart=$INSTALLED " "$WORK/units/imagefs@mnt-imagefs.service" ||
  fail "the unit does not run the installed imagefs"
grep -q "^Type=notify$" "$WORK/units/imagefs@mnt-imagefs.service" || fail "the unit is not Type=notify"
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
  "$WORK/units/imagefs@mnt-imagefs.service" > "$WORK/verify.log" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$WORK/verify.log")"

echo "--- mount -t fuse.imagefs, and from fstab"
mount -t fuse.imagefs default "$MNT" -o "state_dir=$STATE,log_file=$LOG,_netdev,nofail"
mountpoint -q "$MNT" || fail "mount -t fuse.imagefs did not mount"
id=$(new_uuid)
mkdir "$MNT/images/$id"
random_file "$WORK/img" 4
cp "$WORK/img" "$MNT/sites/central/$id"
umount "$MNT"
! mountpoint -q "$MNT" || fail "umount left the mount"
echo "default $MNT fuse.imagefs state_dir=$STATE,log_file=$LOG,_netdev,x-systemd.automount 0 0" \
  > "$WORK/fstab"
mount -T "$WORK/fstab" "$MNT"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "the fstab mount does not serve the image"
umount "$MNT"

echo "--- systemd's notifications"
NOTIFY=$WORK/notify.sock
python3 -u - "$NOTIFY" "$MNT" > "$WORK/notified" <<'EOF' &
import os, socket, subprocess, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
while True:
    message = sock.recv(4096).decode()
    mounted = subprocess.run(["mountpoint", "-q", sys.argv[2]]).returncode == 0
    for line in message.splitlines():
        print(("mounted " if mounted else "unmounted ") + line)
    if "STOPPING=1" in message:
        break
EOF
listener=$!
EXTRA_PIDS+=("$listener")
for _ in $(seq 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$NOTIFY "$INSTALLED" -f default "$MNT" -o "state_dir=$STATE,log_file=$LOG" &
DAEMON_PID=$!
for _ in $(seq 100); do grep -q "STATUS=serving$" "$WORK/notified" && break; sleep 0.1; done
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "imagefs did not exit cleanly on SIGTERM"
DAEMON_PID=
wait "$listener" || true
cat "$WORK/notified"
grep -qx "mounted READY=1" "$WORK/notified" || fail "READY=1 not sent, or before the mount served"
grep -q "^mounted STATUS=serving; recovering" "$WORK/notified" || fail "no STATUS while recovering"
grep -qx "mounted STATUS=serving" "$WORK/notified" || fail "no STATUS once recovery was done"
grep -q "STOPPING=1" "$WORK/notified" || fail "no STOPPING=1 on SIGTERM"

echo "--- kill -9, then the unit's commands, then scripts/mount.sh"
unit=/usr/local/lib/systemd/system/imagefs@.service
printf '[DEFAULT]\nenabled_backends = central:file, dcn0:file, dcn1:file\n[glance_store]\ndefault_backend = central\n[central]\nfilesystem_store_datadir = %s\n[dcn0]\nfilesystem_store_datadir = %s\n[dcn1]\nfilesystem_store_datadir = %s\n' \
  "$STATE/stores/central" "$STATE/stores/dcn0" "$STATE/stores/dcn1" > "$WORK/unit.conf"
# The unit's ExecStartPre and ExecStart, for instance $MNT: %f is the
# mountpoint; the configuration and state directory are the test's.
unit_command() {
  sed -n "s/^$1=//p" "$unit" | sed -e "s|%f|$MNT|g" -e "s|\${IMAGEFS_CONFIG}|$WORK/unit.conf|g" \
    -e "s|/var/lib/imagefs|$STATE|g"
}
start_by_unit() {
  local pre
  pre=$(unit_command ExecStartPre)
  if [[ "$pre" == -* ]]; then ${pre#-} 2> /dev/null || true; else $pre; fi  # "-": may fail
  $(unit_command ExecStart) --log-file="$LOG" &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    grep -q "imagefs\[$DAEMON_PID\] info: serving" "$LOG" && [ -d "$MNT/images" ] && return 0
    kill -0 "$DAEMON_PID" 2> /dev/null || fail "the unit's command exited: $(tail -3 "$LOG")"
    sleep 0.1
  done
  fail "the unit's command did not mount $MNT"
}
start_by_unit
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "the unit's mount does not serve the image"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2> /dev/null || true
expect_error "Transport endpoint is not connected" stat "$MNT"
start_by_unit
assert_logged "clearing the stale mount of a daemon that is gone"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "the restarted mount does not serve the image"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2> /dev/null || true
DAEMON_PID=
IMAGEFS_STATE_DIR=$STATE "$SOURCE_DIR/scripts/mount.sh" "$MNT" > "$WORK/mount.sh.log" 2>&1 ||
  fail "scripts/mount.sh after kill -9: $(tail -5 "$WORK/mount.sh.log")"
cmp "$WORK/img" "$MNT/sites/central/$id" || fail "scripts/mount.sh's mount does not serve the image"
fusermount3 -u "$MNT"

echo "--- journald"
# stderr is the journal's stream when $JOURNAL_STREAM names its device:inode.
: > "$WORK/journal"
exec 4>> "$WORK/journal"
JOURNAL_STREAM=$(stat -c '%d:%i' "$WORK/journal") "$INSTALLED" -f default "$MNT" \
  -o "state_dir=$STATE" 2>&4 &
DAEMON_PID=$!
exec 4>&-
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
expect_error "Operation not permitted" rm "$MNT/sites/central/$id"  # the last copy
cp "$WORK/img" "$WORK/wrong"  # the image's size, other data
perl -e 'open(my $f, "+<", $ARGV[0]) or die; syswrite($f, "~" x 64);' "$WORK/wrong"
! cp "$WORK/wrong" "$MNT/sites/dcn0/$id" 2> /dev/null || fail "wrong data was copied"
fusermount3 -u "$MNT"
wait "$DAEMON_PID" || fail "imagefs exited with an error"
DAEMON_PID=
cat "$WORK/journal"
grep -q '^<6>info: serving ' "$WORK/journal" || fail "no <6> info line"
grep -q "^<4>warning: unlink: .*is the last one" "$WORK/journal" ||
  fail "the refused delete is not a <4> warning"
grep -q "^<3>error: image $id: import to store dcn0 failed" "$WORK/journal" ||
  fail "the failed copy is not a <3> error"
! grep -vq '^<[0-7]>' "$WORK/journal" || fail "a line without a priority: $(grep -v '^<' "$WORK/journal")"
pass
