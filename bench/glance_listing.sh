#!/usr/bin/env bash
# `ls -l /images` of N images on the Glance catalog (issue 24's row: 2,000
# images under 1 s warm). A cloud on loopback (scripts/openstack-cloud.sh,
# file stores: listing needs no data), N images made through Glance's API
# (curl, one connection), a mount over it; then `ls -l` five times in a
# row (the first of a second after the mount's own listing, the rest
# answered from the 1 s cache or listed again), and once after 1.2 s idle
# (always listed again from Glance), with the time of one page of the
# listing straight from Glance beside it.
#
#   bench/glance_listing.sh [N]      N defaults to 2000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
W=$(mktemp -d /tmp/imagefs-glance-listing-XXXXXX)
mkdir -p "$W/mnt"
trap 'fusermount3 -uz "$W/mnt" 2> /dev/null || true; scripts/openstack-cloud.sh stop "$W/cloud"; rm -rf "$W"' EXIT
scripts/openstack-cloud.sh start "$W/cloud" > /dev/null
set -a
source "$W/cloud/env"
set +a
token=$(/usr/bin/python3 "$W/cloud/glance.py" token)
for i in $(seq "$N"); do
  printf 'url = "%s/v2/images"\nheader = "X-Auth-Token: %s"\n' "$GLANCE_URL" "$token"
  printf 'header = "Content-Type: application/json"\ndata = "{\\"name\\": \\"img%s\\"}"\n' "$i"
  printf 'output = "/dev/null"\nsilent\nnext\n'
done | sed '$d' > "$W/requests"
started=$EPOCHREALTIME
curl -K "$W/requests"
echo "made $N images in Glance in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
printf '[catalog]\nbackend = glance\nos_cloud = imagefs-test\n' > "$W/imagefs-glance.conf"
build/fs/imagefs --state-dir="$W/state" --log-file="$W/imagefs.log" \
  --config="$W/cloud/glance-api.conf" --config="$W/imagefs-glance.conf" "$W/mnt" -f &
for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
listed=$(ls "$W/mnt/images" | wc -l)
[ "$listed" -eq "$N" ] || { echo "the mount lists $listed images, not $N" >&2; exit 1; }
for round in 1 2 3 4 5; do
  /usr/bin/time -f "ls -l of $N images, round $round: %e s" ls -l "$W/mnt/images" > /dev/null
done
sleep 1.2
/usr/bin/time -f "ls -l of $N images after 1.2 s idle (listed again): %e s" \
  ls -l "$W/mnt/images" > /dev/null
/usr/bin/time -f "one page of 500 straight from Glance (curl): %e s" \
  curl -s -o /dev/null -H "X-Auth-Token: $token" "$GLANCE_URL/v2/images?limit=500"
