# Writers that a signal ends before they close never publish: cp, dd, a
# shell redirection (cat f > dst) and a Python writer are killed with
# SIGKILL, SIGINT and SIGTERM at random points of an upload (SIGINT only
# where the program leaves it to its default action: dd and Python catch
# it and close the file themselves). Each trial is checked past imagefs:
# an image that became active holds the whole source in every store, one
# that did not is queued with the store listed as failed and a log line
# naming the process and the signal, and no store keeps a temporary.
# Writers that end normally still commit: one that exits without closing,
# and the safe way for programs that catch signals (a dotted temporary
# committed at its rename).
source "$(dirname "$0")/lib.sh"
write_config
mount_imagefs
TRIALS=${IMAGEFS_INTERRUPT_TRIALS:-30}
MIB=64
[ -z "$CEPH_DIR" ] || MIB=32  # memstore keeps every byte in memory
random_file "$WORK/src" "$MIB"
src_md5=$(md5sum < "$WORK/src" | cut -d' ' -f1)

# writer NAME DST: starts writer NAME copying the source to DST in the
# background, in a process group of its own (job control); sets WRITER_PID.
# The signal goes to that whole group, as Ctrl-C sends SIGINT to the
# foreground job (for the redirection: the shell and its cat).
set -m
writer() {
  case "$1" in
    cp) cp "$WORK/src" "$2" & ;;
    dd) dd if="$WORK/src" of="$2" bs=1M status=none & ;;
    redirection) bash -c 'cat "$1" > "$2"' _ "$WORK/src" "$2" & ;;
    python) python3 -c '
import shutil, sys
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$WORK/src" "$2" & ;;
  esac
  WRITER_PID=$!
}

# How long an upload takes here: the kill points spread over it.
probe=$(new_uuid)
mkdir "$MNT/images/$probe"
started=$EPOCHREALTIME
cp "$WORK/src" "$MNT/sites/central/$probe"
span_ms=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "an upload of $MIB MiB takes $span_ms ms; kill points spread over it"
rmdir "$MNT/images/$probe"

combos=(cp:KILL cp:INT cp:TERM dd:KILL dd:TERM redirection:KILL redirection:INT redirection:TERM
        python:KILL python:TERM)
sites=(central dcn0)
discarded=0
committed=0
for trial in $(seq "$TRIALS"); do
  combo=${combos[$(((trial - 1) % ${#combos[@]}))]}
  program=${combo%%:*}
  signal=${combo##*:}
  site=${sites[$((RANDOM % 2))]}
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  delay_ms=$((RANDOM % (span_ms + 1)))
  writer "$program" "$MNT/images/$id/stores/$site/disk.raw"
  sleep "$(awk -v ms="$delay_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  kill -"$signal" -- "-$WRITER_PID" 2> /dev/null || true
  wait "$WRITER_PID" 2> /dev/null || true
  for _ in $(seq 100); do
    case "$(xattr "$id" status)" in uploading | importing) sleep 0.1 ;; *) break ;; esac
  done
  status=$(xattr "$id" status)
  case "$status" in
    active)
      committed=$((committed + 1))
      assert_eq "$(xattr "$id" checksum)" "$src_md5" "trial $trial ($combo): md5 of an active image"
      IFS=, read -ra held <<< "$(xattr "$id" stores)"
      for where in "${held[@]}"; do
        assert_eq "$(store_data "$where" "$id" | md5sum | cut -d' ' -f1)" "$src_md5" \
          "trial $trial ($combo): data in $where"
      done
      ;;
    queued)
      assert_eq "$(xattr "$id" stores)" "" "trial $trial ($combo): locations of a queued image"
      if [ -n "$(xattr "$id" os_glance_failed_import)" ]; then
        discarded=$((discarded + 1))
        assert_eq "$(xattr "$id" os_glance_failed_import)" "$site" "trial $trial: failed store"
        assert_logged "image $id: upload into $site discarded: process [0-9]* ([a-z0-9]*) was killed by SIG$signal"
      fi
      ;;
    *) fail "trial $trial ($combo): status $status" ;;
  esac
  for where in "${SITES[@]}"; do
    assert_eq "$(store_temporaries "$where")" "" "trial $trial ($combo): temporaries in $where"
  done
  echo "trial $trial: $program killed by SIG$signal after $delay_ms ms: $status"
  rmdir "$MNT/images/$id"
done
set +m
echo "$TRIALS trials: $discarded interrupted uploads discarded, $committed complete ones published"
[ "$discarded" -ge $((TRIALS / 3)) ] || fail "only $discarded of $TRIALS trials interrupted an upload"

# A writer that wrote everything and exits 0 without closing commits.
exits=$(new_uuid)
mkdir "$MNT/images/$exits"
python3 -c '
import os, sys
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT)
os.write(fd, open(sys.argv[1], "rb").read())
os._exit(0)' "$WORK/src" "$MNT/sites/dcn0/$exits"
wait_for_xattr "$exits" status active
assert_eq "$(xattr "$exits" checksum)" "$src_md5" "md5 of a writer that exited without closing"

# The safe way for a program that catches signals: a dotted temporary is
# committed only at its rename, so a killed copy publishes nothing, even
# one that closes the file itself on the way out.
safe=$(new_uuid)
mkdir "$MNT/images/$safe"
python3 -c '
import signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # closes its files on the way out
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    dst.write(src.read(1 << 20))
    dst.flush()
    signal.pause()' "$WORK/src" "$MNT/images/$safe/stores/central/.disk.raw.part" &
pid=$!
for _ in $(seq 50); do
  [ "$(stat -c %s "$MNT/images/$safe/stores/central/.disk.raw.part" 2> /dev/null)" == 1048576 ] && break
  sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || true
assert_eq "$(xattr "$safe" status)" uploading "a closed temporary waits for its rename"
rm "$MNT/images/$safe/stores/central/.disk.raw.part"
assert_eq "$(xattr "$safe" status)" queued "the temporary, removed, published nothing"
cp "$WORK/src" "$MNT/images/$safe/stores/central/.disk.raw.part"
mv "$MNT/images/$safe/stores/central/.disk.raw.part" "$MNT/images/$safe/stores/central/disk.raw"
assert_eq "$(xattr "$safe" status)" active "committed at the rename"
assert_eq "$(xattr "$safe" checksum)" "$src_md5" "md5 of the renamed temporary"
check_consistency
unmount_imagefs
pass
