# Many processes on two daemons at once (as at two sites sharing the
# catalog and the stores): copies, deletes, property changes, import
# requests, uploads and image deletes on the same and on different images.
# Every operation either works or fails with an errno docs/contract.md gives for a
# conflict; at the end the catalog and the stores agree (check_consistency:
# every location's data verified, no orphan, no temporary, no lease) and
# both daemons show the same records.
source "$(dirname "$0")/lib.sh"
write_config "lease_ttl = 5"
mount_imagefs
mount_second
WORKERS=${WORKERS:-8}
ROUNDS=${ROUNDS:-25}
SEED=${SEED:-$$}
echo "seed $SEED, $WORKERS workers, $ROUNDS operations each"

images=()
for n in 1 2 3 4; do
  random_file "$WORK/img$n" 4
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  cp "$WORK/img$n" "$MNT/sites/central/$id"
  images+=("$id")
done

# worker N: ROUNDS random operations, each through mount A or B; prints
# one line per failed operation ("errno-text: operation").
worker() {
  local n=$1 mnt id site op own=()
  RANDOM=$((SEED + n))
  for _ in $(seq "$ROUNDS"); do
    if ((RANDOM % 2)); then mnt=$MNT; else mnt=$MNT2; fi
    id=${images[$((RANDOM % ${#images[@]}))]}
    site=$(((RANDOM % 2)) && echo dcn0 || echo dcn1)
    op=$((RANDOM % 7))
    case $op in
      0) try cp "$mnt/sites/central/$id" "$mnt/sites/$site/$id" || true ;;
      1) try rm "$mnt/sites/$site/$id" || true ;;
      2) try setfattr -n user.glance.hw_worker -v "$n" "$mnt/images/$id" || true ;;
      3) try setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"all_stores":true}' \
        "$mnt/images/$id" || true ;;
      4) try rm "$mnt/sites/central/$id" || true ;;
      5)
        local mine
        mine=$(new_uuid)
        if try mkdir "$mnt/images/$mine" &&
          try cp "$WORK/img$((n % 4 + 1))" "$mnt/sites/$site/$mine"; then
          own+=("$mine")
        fi
        ;;
      6)
        if [ ${#own[@]} -gt 0 ] && try rmdir "$mnt/images/${own[-1]}"; then unset 'own[-1]'; fi
        ;;
    esac
  done
}
# try COMMAND...: runs it; when it fails, prints "<strerror>: COMMAND".
try() {
  local out
  if out=$("$@" 2>&1); then return 0; fi
  echo "$(sed -n 's/.*: \([A-Z][a-z ]*[a-z]\)$/\1/p' <<< "$out" | tail -1): $*"
  return 1
}

pids=()
for n in $(seq "$WORKERS"); do
  worker "$n" > "$WORK/worker$n" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

# The errnos a conflict may give (docs/contract.md): busy (an import or delete of the
# image running), exists (the site has it), gone (deleted meanwhile), not
# permitted (last copy, or central while edges hold copies), invalid (an
# import request for an image not active yet).
allowed="Device or resource busy|File exists|No such file or directory|Operation not permitted|Invalid argument"
failures=$(cat "$WORK"/worker*)
unexpected=$(grep -vE "^($allowed): " <<< "$failures" || true)
[ -z "$unexpected" ] || fail "unexpected failures: $unexpected"
echo "$((WORKERS * ROUNDS)) operations, $(grep -c . <<< "$failures" || true) refused:" \
  "$(cut -d: -f1 <<< "$failures" | sort | uniq -c | sed 's/^ *//' | paste -sd,)"

# Imports requested last may still run: let them end.
for _ in $(seq 600); do
  busy=0
  for id in $(ls "$MNT/images"); do
    [ -z "$(xattr "$id" os_glance_importing_to_stores 2> /dev/null || true)" ] || busy=1
  done
  [ $busy -eq 0 ] && break
  sleep 0.1
done
check_consistency
sleep 1.1  # what one daemon changed shows on the other within the attribute timeout
# attribute_of READ ID NAME: the value, or "(none)" when the image has no
# such attribute; returns 1 when reading it fails otherwise.
attribute_of() {
  local out
  if out=$("$1" "$2" "$3" 2>&1); then
    echo "$out"
  elif [[ "$out" == *"No such attribute"* ]]; then
    echo "(none)"
  else
    echo "$out" >&2
    return 1
  fi
}
for id in $(ls "$MNT/images"); do
  for name in status stores checksum hw_worker; do
    second=$(attribute_of xattr2 "$id" "$name") || fail "image $id: $name on the second daemon"
    first=$(attribute_of xattr "$id" "$name") || fail "image $id: $name on the first daemon"
    assert_eq "$second" "$first" "image $id: $name on the two daemons"
  done
done
for n in 1 2 3 4; do
  id=${images[$((n - 1))]}
  cmp "$WORK/img$n" <(store_data central "$id") || fail "source $id damaged"
done
unmount_second
unmount_imagefs
pass
