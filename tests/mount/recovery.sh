# kill -9 of the daemon at random points of uploads (streamed, at central
# and at an edge), copies (server-side cp, and import requests to two
# stores), and deletes (of a copy, of a whole image): 20 trials. After each
# restart, recovery must leave every location with verified data (size and
# md5 read back from the store), no temporary or orphan in any store, no
# lease in the catalog, the source copy intact, and the image usable again.
source "$(dirname "$0")/lib.sh"
write_config "lease_ttl = 3"
TRIALS=${TRIALS:-20}

restart() {
  kill -9 "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
  fusermount3 -uz "$MNT"
  local done_before
  done_before=$(grep -c "recovery at start done" "$LOG" || true)
  mount_imagefs
  for _ in $(seq 300); do
    [ "$(grep -c "recovery at start done" "$LOG")" -gt "$done_before" ] && return 0
    sleep 0.1
  done
  fail "recovery did not finish within 30 s"
}

# milliseconds COMMAND...: how long it took.
milliseconds() {
  local start=$EPOCHREALTIME
  "$@"
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 + 1 }'
}

mount_imagefs
random_file "$WORK/img" 24
source_id=$(new_uuid)
mkdir "$MNT/images/$source_id"
# Kill points are spread over how long each kind of operation takes here.
upload_ms=$(milliseconds cp "$WORK/img" "$MNT/sites/central/$source_id")
copy_ms=$(milliseconds cp "$MNT/sites/central/$source_id" "$MNT/sites/dcn0/$source_id")
delete_ms=$(milliseconds rm "$MNT/sites/dcn0/$source_id")
source_md5=$(xattr "$source_id" checksum)
SEED=${SEED:-$$}
RANDOM=$SEED
echo "seed $SEED; upload ${upload_ms} ms, copy ${copy_ms} ms, delete ${delete_ms} ms"

kinds=(upload-central upload-edge copy import delete-copy delete-image)
in_flight=0
for trial in $(seq "$TRIALS"); do
  kind=${kinds[$(((trial - 1) % ${#kinds[@]}))]}
  case "$kind" in
    upload-*) span=$upload_ms ;;
    copy | import) span=$copy_ms ;;
    *) span=$((delete_ms * 2)) ;;
  esac
  delay=$(awk -v r="$RANDOM" -v span="$span" 'BEGIN { printf "%.3f", r / 32768 * span / 1000 }')
  victim=$(new_uuid)
  mkdir "$MNT/images/$victim"
  case "$kind" in
    delete-copy | delete-image)
      cp "$WORK/img" "$MNT/sites/central/$victim"
      cp "$MNT/sites/central/$victim" "$MNT/sites/dcn0/$victim"
      ;;
  esac
  case "$kind" in
    upload-central) (cp "$WORK/img" "$MNT/sites/central/$victim" 2> /dev/null || true) & ;;
    upload-edge) (cp "$WORK/img" "$MNT/sites/dcn1/$victim" 2> /dev/null || true) & ;;
    copy) (cp "$MNT/sites/central/$source_id" "$MNT/sites/dcn0/$source_id" 2> /dev/null || true) & ;;
    import)
      (setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0","dcn1"]}' \
        "$MNT/images/$source_id" 2> /dev/null || true) &
      ;;
    delete-copy) (rm "$MNT/sites/dcn0/$victim" 2> /dev/null || true) & ;;
    delete-image) (rmdir "$MNT/images/$victim" 2> /dev/null || true) & ;;
  esac
  worker=$!
  sleep "$delay"
  # Mid-operation: its tool still waits, or the image is still importing.
  if kill -0 "$worker" 2>/dev/null ||
    [ -n "$(xattr "$source_id" os_glance_importing_to_stores 2>/dev/null || true)" ]; then
    in_flight=$((in_flight + 1))
  fi
  restart
  wait "$worker" || true
  check_consistency
  assert_eq "$(xattr "$source_id" checksum)" "$source_md5" "trial $trial: source checksum"
  cmp "$WORK/img" <(store_data central "$source_id") || fail "trial $trial: source data damaged"
  assert_eq "$(ls -A "$STATE/staging")" "" "trial $trial: staging not emptied"
  # Nothing stays locked: both images take new operations at once.
  if [ -e "$MNT/sites/dcn0/$source_id" ]; then rm "$MNT/sites/dcn0/$source_id"; fi
  if [ -e "$MNT/sites/dcn1/$source_id" ]; then rm "$MNT/sites/dcn1/$source_id"; fi
  cp "$MNT/sites/central/$source_id" "$MNT/sites/dcn0/$source_id" ||
    fail "trial $trial: copy after recovery failed"
  cmp "$WORK/img" "$MNT/sites/dcn0/$source_id" || fail "trial $trial: new copy differs"
  rm "$MNT/sites/dcn0/$source_id"
  if [ -d "$MNT/images/$victim" ]; then
    rmdir "$MNT/images/$victim" || fail "trial $trial: the $kind image cannot be deleted"
  fi
  echo "trial $trial ($kind): killed after ${delay}s, recovered, consistent"
done
echo "$TRIALS trials, $in_flight killed mid-operation"
[ "$in_flight" -ge $((TRIALS / 3)) ] || fail "only $in_flight of $TRIALS trials hit an operation in flight"
check_consistency
unmount_imagefs
pass
