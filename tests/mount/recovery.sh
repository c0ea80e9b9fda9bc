# kill -9 of the daemon during uploads and copies: after a restart nothing
# is published without data, no temporary or orphan stays, no lock outlives
# its lease, and the source copy is intact.
source "$(dirname "$0")/lib.sh"
write_config "lease_ttl = 3"

# consistent: every image's stores equal the stores holding its data, and
# no store holds a temporary or data of an image it does not list.
consistent() {
  local id site listed held
  for site in central dcn0 dcn1; do
    [ -z "$(store_temporaries "$site")" ] || return 1
    for id in $(store_images "$site"); do
      [ -d "$MNT/images/$id" ] || return 1
    done
  done
  for id in $(ls "$MNT/images"); do
    listed=$(xattr "$id" stores)
    held=$(for site in central dcn0 dcn1; do store_has "$site" "$id" && echo "$site"; done | paste -sd,)
    [ "$(echo "$listed" | tr , '\n' | sort | paste -sd,)" == "$(echo "$held" | tr , '\n' | sort | paste -sd,)" ] || return 1
    [ -z "$(xattr "$id" os_glance_importing_to_stores)" ] || return 1
  done
}

mount_imagefs
random_file "$WORK/img" 96
source_id=$(new_uuid)
mkdir "$MNT/images/$source_id"
cp "$WORK/img" "$MNT/sites/central/$source_id"

trials=6
for trial in $(seq $trials); do
  delay=$(awk -v t="$trial" 'BEGIN { srand(t); printf "%.2f", 0.05 + rand() * 0.6 }')
  if [ $((trial % 2)) -eq 0 ]; then
    upload=$(new_uuid)
    mkdir "$MNT/images/$upload"
    (cp "$WORK/img" "$MNT/sites/dcn1/$upload" 2>/dev/null || true) &
  else
    (cp "$MNT/sites/central/$source_id" "$MNT/sites/dcn0/$source_id" 2>/dev/null || true) &
  fi
  writer=$!
  sleep "$delay"
  kill -9 "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
  wait "$writer" || true
  fusermount3 -uz "$MNT"
  mount_imagefs
  for _ in $(seq 150); do
    consistent && break
    sleep 0.1
  done
  consistent || fail "trial $trial (killed after ${delay}s): not consistent after recovery"
  cmp "$WORK/img" "$MNT/sites/central/$source_id" || fail "trial $trial: source damaged"
  [ -z "$(ls -A "$STATE/staging")" ] || fail "trial $trial: staging not emptied"
  # No lock outlives its lease: the copy can be made (again) now.
  if [ -e "$MNT/sites/dcn0/$source_id" ]; then rm "$MNT/sites/dcn0/$source_id"; fi
  cp "$MNT/sites/central/$source_id" "$MNT/sites/dcn0/$source_id" || fail "trial $trial: copy after recovery failed"
  cmp "$WORK/img" "$MNT/sites/dcn0/$source_id" || fail "trial $trial: new copy differs"
  rm "$MNT/sites/dcn0/$source_id"
  echo "trial $trial: killed after ${delay}s, recovered"
done
unmount_imagefs
pass
