# The daemon keeps an inode only while the kernel holds it (lookup counts
# and forget): over repeated `ls -lR` passes of many images, with images
# deleted and created between passes, its inode count and RSS stay flat,
# and when the kernel drops its caches the count falls back.
source "$(dirname "$0")/lib.sh"
write_config
mount_imagefs
IMAGES=${IMAGEFS_INODE_IMAGES:-2000}
[ -z "$CEPH_DIR" ] || IMAGES=${IMAGEFS_INODE_IMAGES:-600}  # a RADOS write per image
PASSES=${IMAGEFS_INODE_PASSES:-4}
inodes() { getfattr --absolute-names --only-values -n user.imagefs.inodes "$MNT"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
ids=()
for _ in $(seq "$IMAGES"); do ids+=("$(new_uuid)"); done
(cd "$MNT/images" && mkdir "${ids[@]}")
echo "$IMAGES images"
baseline=$(inodes)
first_inodes=
first_rss=
for pass in $(seq "$PASSES"); do
  ls -lR "$MNT" > /dev/null
  count=$(inodes)
  rss=$(rss_kib)
  echo "pass $pass: $count inodes, RSS $rss KiB"
  if [ -z "$first_inodes" ]; then
    first_inodes=$count
    first_rss=$rss
  fi
  # per image: its directory, stores/ and three store directories at most
  [ "$count" -le $((IMAGES * 5 + 100)) ] || fail "pass $pass: $count inodes for $IMAGES images"
  [ "$count" -le $((first_inodes + first_inodes / 10)) ] ||
    fail "pass $pass: the inode count grew from $first_inodes to $count"
  [ "$rss" -le $((first_rss + first_rss / 5 + 4096)) ] ||
    fail "pass $pass: RSS grew from $first_rss to $rss KiB"
  # Churn: a tenth of the images go, as many new ones come.
  gone=("${ids[@]:0:$((IMAGES / 10))}")
  ids=("${ids[@]:$((IMAGES / 10))}")
  (cd "$MNT/images" && rmdir "${gone[@]}")
  fresh=()
  for _ in $(seq $((IMAGES / 10))); do fresh+=("$(new_uuid)"); done
  (cd "$MNT/images" && mkdir "${fresh[@]}")
  ids+=("${fresh[@]}")
  echo 2 > /proc/sys/vm/drop_caches  # the kernel forgets what it held
  sleep 0.5
  after=$(inodes)
  echo "pass $pass: after the kernel dropped its caches: $after inodes"
  [ "$after" -le $((baseline + 50)) ] || fail "pass $pass: $after inodes kept after drop_caches"
done
unmount_imagefs
pass
