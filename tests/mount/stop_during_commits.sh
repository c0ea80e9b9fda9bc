# SIGTERM while 8 uploads commit, as systemd stops the mount in the middle
# of an operator's copies:
# - the daemon waits for the commits running (stop_timeout) and exits 0;
#   under AddressSanitizer (the sanitizer build runs the embedded mount
#   tests) without a use-after-free: running commits answer through the
#   filesystem, which goes after them;
# - each cp's close answered what happened: after a restart, an upload
#   whose cp succeeded is active with its data in central and dcn0, one
#   whose cp failed (the mount went away under it) is queued and no store
#   holds anything of it;
# - nothing is left half: no temporary, no lease, no location without data.
source "$(dirname "$0")/lib.sh"
# Conversion makes each commit long enough to be caught running: the data
# is staged, then converted with qemu-img at commit.
write_config "stop_timeout = 60" "[image_conversion]" "output_format = raw"
mount_imagefs

random_file "$WORK/disk.raw" 24
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
raw_md5=$(md5sum < "$WORK/disk.raw" | cut -d' ' -f1)

ids=()
for i in $(seq 8); do
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  ids+=("$id")
done
cps=()
for i in "${!ids[@]}"; do
  (
    status=0
    cp "$WORK/disk.qcow2" "$MNT/images/${ids[$i]}/stores/dcn0/disk.qcow2" 2> "$WORK/cp.$i.err" ||
      status=$?
    echo "$status" > "$WORK/cp.$i"
  ) &
  cps+=($!)
done

# A commit runs once its conversion started (logged by the commit's job).
for _ in $(seq 600); do
  grep -q "converting qcow2 data to raw" "$LOG" && break
  sleep 0.05
done
grep -q "converting qcow2 data to raw" "$LOG" || fail "no commit started within 30 s"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "imagefs did not exit cleanly on SIGTERM during commits"
DAEMON_PID=
for pid in "${cps[@]}"; do wait "$pid"; done
! mountpoint -q "$MNT" || fail "SIGTERM left the mount"

mount_imagefs
succeeded=0
for i in "${!ids[@]}"; do
  id=${ids[$i]}
  status=$(cat "$WORK/cp.$i")
  if [ "$status" -eq 0 ]; then
    succeeded=$((succeeded + 1))
    assert_eq "$(xattr "$id" status)" active "image $id: its cp succeeded"
    assert_eq "$(xattr "$id" stores)" central,dcn0 "image $id: its stores"
    assert_eq "$(xattr "$id" checksum)" "$raw_md5" "image $id: stored as raw"
  else
    assert_eq "$(xattr "$id" status)" queued "image $id: its cp failed ($(cat "$WORK/cp.$i.err"))"
    for site in "${SITES[@]}"; do
      ! store_has "$site" "$id" || fail "image $id: $site holds data of a failed upload"
    done
  fi
done
echo "$succeeded of 8 uploads committed before the stop"
[ "$succeeded" -ge 1 ] || fail "the commit running at SIGTERM was not waited for"
check_consistency
unmount_imagefs
echo "PASS stop_during_commits"
