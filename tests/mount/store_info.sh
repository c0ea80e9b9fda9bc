# What `glance stores-info` and a monitoring check ask, with plain tools:
# `df` of each site is that store's room (file: its directory's
# filesystem; rbd: its pool on its cluster, as `ceph df` says), `df` of the
# mount is central's; each site directory tells its store (id, type,
# default, Glance's store_description, and for rbd the cluster's fsid and
# the pool), and each image file its location and store.
source "$(dirname "$0")/lib.sh"
write_config
mount_imagefs
random_file "$WORK/img" 4
id=$(new_uuid)
mkdir "$MNT/images/$id"
cp "$WORK/img" "$MNT/sites/central/$id"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"

# df: size and available bytes, as df prints them.
room() { df -B1 --output=size,avail "$1" | tail -1; }
# near A B: within 2 % (a store's room moves a little as others write).
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b / 50) }'; }
# pool_room SITE: the room `ceph df` reports for the test's pool there,
# once the manager has reported the pool (a pool just made takes a second).
pool_room() {
  for _ in $(seq 50); do
    ceph_at "$1" df --format json | python3 -c 'import json, sys
for pool in json.load(sys.stdin)["pools"]:
    if pool["name"] == sys.argv[1]: print(pool["stats"]["max_avail"]); sys.exit(0)
sys.exit(1)' "$POOL" && return 0
    sleep 0.2
  done
  fail "ceph df at $1 does not report pool $POOL"
}
[ -z "$CEPH_DIR" ] || for site in "${SITES[@]}"; do pool_room "$site" > /dev/null; done
for site in "${SITES[@]}"; do
  read -r size avail <<< "$(room "$MNT/sites/$site")"
  [ "$size" -gt 0 ] && [ "$avail" -gt 0 ] && [ "$avail" -le "$size" ] ||
    fail "df of $site: size $size, available $avail"
  if [ -n "$CEPH_DIR" ]; then
    expected=$(pool_room "$site")
  else
    expected=$(df -B1 --output=avail "$STORES/$site" | tail -1)
  fi
  near "$avail" "$expected" || fail "df of $site says $avail bytes available, the store $expected"
  echo "df $site: $size bytes, $avail available (the store says $expected)"
  # The same store under /images/<id>/stores/<site> and in its image files.
  read -r size2 _ <<< "$(room "$MNT/images/$id/stores/$site")"
  near "$size2" "$size" || fail "df of stores/$site: $size2 bytes, of sites/$site: $size"
done
read -r root_size _ <<< "$(room "$MNT")"
read -r central_size _ <<< "$(room "$MNT/sites/central")"
near "$root_size" "$central_size" || fail "df of the mount: $root_size bytes, of central: $central_size"

# Store information.
store_attr() { getfattr --absolute-names --only-values -n "user.glance.store.$2" "$1"; }
type=file
[ -z "$CEPH_DIR" ] || type=rbd
for dir in "$MNT/sites/dcn0" "$MNT/images/$id/stores/dcn0"; do
  assert_eq "$(store_attr "$dir" id)" dcn0 "$dir: id"
  assert_eq "$(store_attr "$dir" type)" "$type" "$dir: type"
  assert_eq "$(store_attr "$dir" default)" false "$dir: default"
  assert_eq "$(store_attr "$dir" description)" "the dcn0 site" "$dir: description"
done
assert_eq "$(store_attr "$MNT/sites/central" default)" true "central is the default store"
if [ -n "$CEPH_DIR" ]; then
  assert_eq "$(store_attr "$MNT/sites/dcn0" fsid)" "$(ceph_at dcn0 fsid)" "dcn0's fsid"
  assert_eq "$(store_attr "$MNT/sites/dcn0" pool)" "$POOL" "dcn0's pool"
fi
getfattr -d "$MNT/sites/dcn1" | grep -q '^user.glance.store.id="dcn1"' ||
  fail "getfattr -d of a site: $(getfattr -d "$MNT/sites/dcn1")"

# Each image file: its copy's location and store.
file_attr() { getfattr --absolute-names --only-values -n "user.glance.$2" "$1"; }
for file in "$MNT/sites/dcn0/$id" "$MNT/images/$id/stores/dcn0/$id"; do
  location=$(file_attr "$file" location)
  assert_eq "$(file_attr "$file" store)" dcn0 "$file: store"
  xattr "$id" locations | grep -qF "\"url\":\"$location\"" ||
    fail "$file: location $location is not in the image's locations $(xattr "$id" locations)"
done
if [ -n "$CEPH_DIR" ]; then
  assert_eq "$(file_attr "$MNT/sites/dcn0/$id" location)" \
    "rbd://$(ceph_at dcn0 fsid)/$POOL/$id/snap" "the dcn0 copy's location"
fi
unmount_imagefs
pass
