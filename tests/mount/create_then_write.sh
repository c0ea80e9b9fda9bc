# Programs that create a file first and write it later, and the ordinary
# copiers: each gives an active image whose sha512 is that of the source
# data. A file closed before any data was written (created, truncated or
# fallocated only) is not committed: a later open for writing continues
# the same upload; left alone past idle_upload_timeout it is discarded,
# with a log line, the image queued again and the store listed as failed.
source "$(dirname "$0")/lib.sh"
write_config "idle_upload_timeout = 3"
mount_imagefs
mkdir "$WORK/www"
random_file "$WORK/www/src.raw" 12
truncate -s 40M "$WORK/www/src.raw"  # a disk: data, then zeros
src=$WORK/www/src.raw
sha=$(sha512sum < "$src" | cut -d' ' -f1)
qemu-img convert -q -f raw -O qcow2 "$src" "$WORK/src.qcow2"
serve_http "$WORK/www"

# check NAME ID: the image is active and holds the source data.
check() {
  wait_for_xattr "$2" status active
  assert_eq "$(xattr "$2" os_hash_value)" "$sha" "$1: sha512"
  assert_eq "$(xattr "$2" size)" "$(stat -c %s "$src")" "$1: size"
  for site in $(xattr "$2" stores | tr , ' '); do
    cmp "$src" <(store_data "$site" "$2") || fail "$1: data in $site"
  done
  echo "ok: $1"
}
new_image() {
  local id
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  echo "$id"
}

# qemu-img convert creates the file to its size, closes it, and writes it
# through a second open; with -W its writes come out of order.
id=$(new_image)
qemu-img convert -f qcow2 -O raw "$WORK/src.qcow2" "$MNT/images/$id/stores/central/disk.raw"
check "qemu-img convert" "$id"
id=$(new_image)
qemu-img convert -W -f qcow2 -O raw "$WORK/src.qcow2" "$MNT/images/$id/stores/dcn0/disk.raw"
check "qemu-img convert -W (into an edge)" "$id"
id=$(new_image)
qemu-img create -q -f raw "$MNT/sites/central/$id" 40M
assert_eq "$(xattr "$id" status)" uploading "created by qemu-img create, not yet written"
qemu-img dd -f raw -O raw bs=1M if="$src" of="$MNT/sites/central/$id"
check "qemu-img create + qemu-img dd" "$id"
id=$(new_image)
qemu-img create -q -f raw "$MNT/sites/central/$id" 40M
dd if="$src" of="$MNT/sites/central/$id" bs=1M conv=notrunc status=none
check "qemu-img create + dd conv=notrunc" "$id"
id=$(new_image)
truncate -s 40M "$MNT/images/$id/stores/central/disk.raw"
assert_eq "$(stat -c %s "$MNT/images/$id/stores/central/disk.raw")" 41943040 "size after truncate"
dd if="$src" of="$MNT/images/$id/stores/central/disk.raw" bs=4M conv=notrunc status=none
check "truncate -s + dd conv=notrunc" "$id"
id=$(new_image)
fallocate -l 40M "$MNT/sites/central/$id"
dd if="$src" of="$MNT/sites/central/$id" bs=1M conv=notrunc status=none
check "fallocate + dd" "$id"

# The ordinary copiers.
id=$(new_image)
cp "$src" "$MNT/sites/central/$id"
check "cp" "$id"
id=$(new_image)
(cd "$WORK/www" && tar -cf "$WORK/src.tar" src.raw)
tar -xf "$WORK/src.tar" -C "$MNT/images/$id/stores/central/"
check "tar -x" "$id"
id=$(new_image)
curl -sSf -o "$MNT/images/$id/stores/central/src.raw" "${HTTP_URL}src.raw"
check "curl -o" "$id"
id=$(new_image)
wget -q -O "$MNT/sites/central/$id" "${HTTP_URL}src.raw"
check "wget -O" "$id"
id=$(new_image)
mkdir "$WORK/rsync"
cp "$src" "$WORK/rsync/$id"
rsync -a "$WORK/rsync/" "$MNT/sites/central/"
check "rsync" "$id"

# Truncated, never written: discarded once left alone for 3 s.
idle=$(new_image)
truncate -s 10M "$MNT/images/$idle/stores/dcn0/never.raw"
assert_eq "$(xattr "$idle" status)" uploading "waiting for its data"
for _ in $(seq 100); do
  [ "$(xattr "$idle" status)" == queued ] && break
  sleep 0.1
done
assert_eq "$(xattr "$idle" status)" queued "an upload never written, after the idle time"
assert_eq "$(xattr "$idle" os_glance_failed_import)" dcn0 "the store of the discarded upload"
assert_logged "image $idle: discarded 'never.raw', left closed for 3 s and never written"
[ ! -e "$MNT/images/$idle/stores/dcn0/never.raw" ] || fail "the discarded file is still listed"
for site in "${SITES[@]}"; do
  assert_eq "$(store_temporaries "$site")" "" "temporaries in $site"
done
# ...and one that comes back in time goes on.
late=$(new_image)
truncate -s 40M "$MNT/sites/dcn1/$late"
sleep 1
dd if="$src" of="$MNT/sites/dcn1/$late" bs=1M conv=notrunc status=none
check "truncate, 1 s, then dd" "$late"
assert_eq "$(xattr "$late" stores)" central,dcn1 "an edge upload reaches central first"
check_consistency
unmount_imagefs
pass
