# What an upload really is, read from its content: real images made by
# qemu-img (qcow2, vmdk, vhd, vhdx, vdi) and genisoimage (iso) are
# recognised, their disk_format and virtual_size recorded; a disk_format
# that lies, an image that would make a hypervisor open another file, or a
# header that lies gets EIO at close and nothing is published. Then with
# [image_conversion] output_format = raw: non-raw uploads and web-downloads
# are stored as raw, byte-identical to a conversion by hand, thin, into one
# store or several.
source "$(dirname "$0")/lib.sh"
write_config "[import_filtering_opts]" "allowed_ports ="
mount_imagefs
MiB=1048576
random_file "$WORK/data.raw" 6
truncate -s 40M "$WORK/data.raw"
make() { qemu-img convert -q -f raw -O "$1" "${@:3}" "$WORK/data.raw" "$WORK/$2"; }
make qcow2 disk.qcow2
make vmdk disk.vmdk
make vmdk disk-stream.vmdk -o subformat=streamOptimized
make vpc disk.vhd -o force_size=on
make vhdx disk.vhdx
make vdi disk.vdi
mkdir "$WORK/iso"
cp "$WORK/data.raw" "$WORK/iso/"
genisoimage -quiet -o "$WORK/disk.iso" "$WORK/iso"
new_image() {
  local id
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  echo "$id"
}
md5() { md5sum < "$1" | cut -d' ' -f1; }

# upload FILE SITE: a new image uploaded from FILE into SITE; prints its id.
upload() {
  local id
  id=$(new_image)
  cp "$WORK/$1" "$MNT/images/$id/stores/$2/$1"
  echo "$id"
}

# Each format is what its content says, with the disk a guest sees.
iso_size=$(($(isosize -d 2048 "$WORK/disk.iso") * 2048))
for case in disk.qcow2:qcow2:41943040 disk.vmdk:vmdk:41943040 disk-stream.vmdk:vmdk:41943040 \
  disk.vhd:vhd:41943040 disk.vhdx:vhdx:41943040 disk.vdi:vdi:41943040 \
  "disk.iso:iso:$iso_size" data.raw:raw:41943040; do
  IFS=: read -r file format virtual <<< "$case"
  id=$(upload "$file" central)
  assert_eq "$(xattr "$id" status)" active "$file: status"
  assert_eq "$(xattr "$id" disk_format)" "$format" "$file: disk_format from the data"
  assert_eq "$(xattr "$id" virtual_size)" "$virtual" "$file: virtual_size"
  assert_eq "$(xattr "$id" checksum)" "$(md5 "$WORK/$file")" "$file: stored as it came"
  echo "ok: $file is $format, virtual size $virtual"
done

# refused FILE SITE TEXT [disk_format]: the upload fails at close with EIO,
# the log says TEXT, and nothing of it is left.
refused() {
  local id
  id=$(new_image)
  [ -z "${4:-}" ] || setfattr -n user.glance.disk_format -v "$4" "$MNT/images/$id"
  expect_error "Input/output error" cp "$WORK/$1" "$MNT/images/$id/stores/$2/$1"
  assert_eq "$(xattr "$id" status)" queued "$1: status after a refused upload"
  assert_eq "$(xattr "$id" stores)" "" "$1: nothing published"
  assert_eq "$(xattr "$id" os_glance_failed_import)" "$2" "$1: failed store"
  assert_logged "image $id: .*$3"
  for site in "${SITES[@]}"; do
    assert_eq "$(store_temporaries "$site")" "" "$1: temporaries in $site"
    ! store_has "$site" "$id" || fail "$1: $site holds data"
  done
  echo "ok: $1 refused ($3)"
}
# A disk_format that says something else than the data.
refused disk.qcow2 central "data is qcow2, disk_format is raw" raw
refused data.raw dcn0 "data is raw, disk_format is vmdk" vmdk
id=$(new_image)
setfattr -n user.glance.disk_format -v qcow2 "$MNT/images/$id"
cp "$WORK/disk.qcow2" "$MNT/images/$id/stores/central/"
assert_eq "$(xattr "$id" disk_format)" qcow2 "a disk_format that tells the truth"
# Images that would make a hypervisor open another file (CVE-2024-32498's
# class), whatever disk_format says.
qemu-img create -q -f qcow2 -b "$WORK/disk.qcow2" -F qcow2 "$WORK/backed.qcow2"
qemu-img create -q -f qcow2 -o data_file="$WORK/external.raw" "$WORK/datafile.qcow2" 40M
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 81920 FLAT "/etc/shadow" 0\n' > "$WORK/flat.vmdk"
refused backed.qcow2 central "qcow2 has a backing file"
refused backed.qcow2 dcn1 "qcow2 has a backing file" qcow2
refused datafile.qcow2 central "qcow2 has an external data file"
refused flat.vmdk central "vmdk descriptor file keeps its extents outside the file"
# A header that lies: the L1 table past the end of the file.
cp "$WORK/disk.qcow2" "$WORK/lying.qcow2"
printf '\x00\x00\x00\x01\x00\x00\x00\x00' | dd of="$WORK/lying.qcow2" bs=1 seek=40 conv=notrunc status=none
refused lying.qcow2 central "lies outside the file"
# A file that is two formats at once.
cp "$WORK/disk.iso" "$WORK/both.iso"
head -c 512 "$WORK/disk.vhd" | dd of="$WORK/both.iso" conv=notrunc status=none
refused both.iso central "data is vhd and iso at once"
unmount_imagefs

# Stored as raw: what Ceph clones and Nova boots from RBD.
write_config "[image_conversion]" "output_format = raw" "[import_filtering_opts]" "allowed_ports ="
mount_imagefs
qemu-img convert -f qcow2 -O raw "$WORK/disk.qcow2" "$WORK/by-hand.raw"
raw_md5=$(md5 "$WORK/by-hand.raw")
# converted ID SOURCE: the image is raw in every store it has, byte for
# byte what qemu-img gives by hand, and thin.
converted() {
  wait_for_xattr "$1" status active
  assert_eq "$(xattr "$1" disk_format)" raw "$2: disk_format after conversion"
  assert_eq "$(xattr "$1" size)" 41943040 "$2: size of the raw image"
  assert_eq "$(xattr "$1" virtual_size)" 41943040 "$2: virtual_size"
  assert_eq "$(xattr "$1" checksum)" "$raw_md5" "$2: md5 of the raw image"
  for site in $(xattr "$1" stores | tr , ' '); do
    store_data "$site" "$1" > "$WORK/stored.raw"
    qemu-img compare -q -f raw -F raw "$WORK/by-hand.raw" "$WORK/stored.raw" ||
      fail "$2: $site differs from the conversion by hand"
    cmp "$WORK/by-hand.raw" "$WORK/stored.raw" || fail "$2: $site is not byte-identical"
    if [ -n "$CEPH_DIR" ]; then
      used=$(rbd_at "$site" diff "$1@snap" --format json | python3 -c '
import json, sys
print(sum(extent["length"] for extent in json.load(sys.stdin)))')
    else
      used=$(($(stat -c %b "$STORES/$site/$1") * 512))
    fi
    [ "$used" -le $((8 * MiB)) ] || fail "$2: $site holds $used bytes of a 6 MiB image: not thin"
  done
  echo "ok: $2 stored as raw in $(xattr "$1" stores)"
}
id=$(upload disk.qcow2 central)
converted "$id" "qcow2 upload"
assert_logged "image $id: converted qcow2 ([0-9]* bytes) to raw (41943040 bytes)"
id=$(upload disk.qcow2 dcn0)
converted "$id" "qcow2 upload at an edge"
assert_eq "$(xattr "$id" stores)" central,dcn0 "the edge upload reached central first"
for file in disk.vmdk disk.vhdx disk.vdi disk.vhd; do
  id=$(upload "$file" central)
  converted "$id" "$file upload"
done
# A web-download of a qcow2, into two stores.
cp "$WORK/disk.qcow2" "$WORK/iso/"
serve_http "$WORK/iso"
id=$(new_image)
setfattr -n user.glance.import -v "{\"method\":{\"name\":\"web-download\",\"uri\":\"${HTTP_URL}disk.qcow2\"},\"stores\":[\"central\",\"dcn1\"]}" "$MNT/images/$id"
wait_for_xattr "$id" os_glance_importing_to_stores ""
converted "$id" "qcow2 web-download"
assert_eq "$(xattr "$id" stores)" central,dcn1 "the web-download's stores"
# Raw and iso stay as they are, and still stream; unsafe images are still
# refused before anything is converted.
id=$(upload data.raw central)
assert_eq "$(xattr "$id" checksum)" "$(md5 "$WORK/data.raw")" "raw stays raw"
! grep -q "image $id: converting" "$LOG" || fail "a raw upload was converted"
id=$(upload disk.iso central)
assert_eq "$(xattr "$id" disk_format)" iso "iso stays iso"
refused backed.qcow2 central "qcow2 has a backing file"
check_consistency
unmount_imagefs
pass
