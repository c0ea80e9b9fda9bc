# Glance's web-download import through setfattr: the image's data comes from
# an http URI (a server on loopback here) and streams into every store the
# request names at once, central first; allow-failure and must-succeed as
# for copy-image. Bad requests fail at once with the errno docs/contract.md gives and a log
# line; a failed download leaves the image queued, its stores listed failed.
source "$(dirname "$0")/lib.sh"
# The servers here listen on loopback ports that Glance's default filter
# refuses (80 and 443 only): this test lets every port through;
# web_download_filter.sh tests the filter.
write_config "web_download_stall_timeout = 2" "[import_filtering_opts]" "allowed_ports ="
mount_imagefs
mkdir "$WORK/www"
random_file "$WORK/www/disk.raw" 6
truncate -s 20M "$WORK/www/sparse.raw"
dd if=/dev/urandom of="$WORK/www/sparse.raw" bs=1M seek=17 count=1 conv=notrunc status=none
serve_http "$WORK/www"
import() { setfattr -n user.glance.import -v "$2" "$MNT/images/$1"; }
web() { echo "{\"method\":{\"name\":\"web-download\",\"uri\":\"$1\"}${2:-}}"; }
md5() { md5sum < "$1" | cut -d' ' -f1; }

# Into central and an edge at once.
id=$(new_uuid)
mkdir "$MNT/images/$id"
import "$id" "$(web "${HTTP_URL}disk.raw" ',"stores":["dcn0","central"]')"
wait_for_xattr "$id" os_glance_importing_to_stores ""
assert_eq "$(xattr "$id" status)" active "status after the download"
assert_eq "$(xattr "$id" stores)" central,dcn0 "stores, central first"
assert_eq "$(xattr "$id" checksum)" "$(md5 "$WORK/www/disk.raw")" "md5 of the download"
assert_eq "$(xattr "$id" size)" 6291456 "size of the download"
for site in central dcn0; do
  cmp "$WORK/www/disk.raw" <(store_data "$site" "$id") || fail "$site holds other data"
done
assert_logged "image $id: web-download from ${HTTP_URL}disk.raw to central,dcn0"

# Into all stores, with a sparse file: its holes hashed, never written.
all=$(new_uuid)
mkdir "$MNT/images/$all"
import "$all" "$(web "${HTTP_URL}sparse.raw" ',"all_stores":true,"all_stores_must_succeed":true')"
wait_for_xattr "$all" os_glance_importing_to_stores ""
assert_eq "$(xattr "$all" stores)" central,dcn0,dcn1 "all stores"
assert_eq "$(xattr "$all" checksum)" "$(md5 "$WORK/www/sparse.raw")" "md5 of the sparse download"
cmp "$WORK/www/sparse.raw" "$MNT/sites/dcn1/$all" || fail "dcn1 reads other data"

# A download that fails (404): nothing published, the image queued again,
# its stores listed as failed, no temporary left.
gone=$(new_uuid)
mkdir "$MNT/images/$gone"
import "$gone" "$(web "${HTTP_URL}missing.raw" ',"stores":["central","dcn1"]')"
wait_for_xattr "$gone" os_glance_importing_to_stores ""
assert_eq "$(xattr "$gone" status)" queued "status after a failed download"
assert_eq "$(xattr "$gone" os_glance_failed_import)" central,dcn1 "failed stores"
assert_logged "web-download of ${HTTP_URL}missing.raw failed"
for site in "${SITES[@]}"; do
  assert_eq "$(store_temporaries "$site")" "" "temporaries in $site"
  ! store_has "$site" "$gone" || fail "$site holds data of the failed download"
done
# It can be tried again.
import "$gone" "$(web "${HTTP_URL}disk.raw")"
wait_for_xattr "$gone" status active

# A server that stops sending (1 MiB of 8, then nothing): the download
# fails after the stall timeout (2 s here), and nothing stays.
python3 -u -c '
import http.server, time
class Stall(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(8 << 20))
        self.end_headers()
        self.wfile.write(b"x" * (1 << 20))
        self.wfile.flush()
        time.sleep(120)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stall)
print("http://127.0.0.1:%d/" % server.server_address[1])
server.serve_forever()' > "$WORK/stall.out" &
EXTRA_PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/stall.out" ] && break; sleep 0.1; done
stall_url=$(head -1 "$WORK/stall.out")
stalled=$(new_uuid)
mkdir "$MNT/images/$stalled"
started=$EPOCHREALTIME
import "$stalled" "$(web "${stall_url}disk.raw" ',"stores":["central","dcn0"]')"
for _ in $(seq 200); do
  [ -z "$(xattr "$stalled" os_glance_importing_to_stores)" ] && break
  sleep 0.1
done
# curl averages the speed over its last 5 s: the burst of 1 MiB counts
# that long before the 2 s below the limit do.
awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 12) }' ||
  fail "the stalled download was not given up within its timeout"
assert_eq "$(xattr "$stalled" status)" queued "status after a stalled download"
assert_eq "$(xattr "$stalled" os_glance_failed_import)" central,dcn0 "failed stores (stall)"
assert_logged "web-download of ${stall_url}disk.raw failed after 1048576 bytes"
for site in central dcn0; do
  assert_eq "$(store_temporaries "$site")" "" "temporaries in $site after the stall"
done

# Bad requests: the contract's errno at once, and a log line.
bad=$(new_uuid)
mkdir "$MNT/images/$bad"
expect_error "Operation not permitted" import "$bad" "$(web "ftp://127.0.0.1/disk.raw")"
assert_logged "refused by \[import_filtering_opts\]: scheme ftp is not in allowed_schemes"
expect_error "Invalid argument" import "$bad" "$(web "http:///disk.raw")"
expect_error "Invalid argument" import "$bad" '{"method":{"name":"web-download"}}'
expect_error "Invalid argument" import "$bad" "$(web "${HTTP_URL}disk.raw" ',"stores":["dcn0"],"all_stores":true')"
expect_error "No such file or directory" import "$bad" "$(web "${HTTP_URL}disk.raw" ',"stores":["dcn9"]')"
expect_error "Invalid argument" import "$id" "$(web "${HTTP_URL}disk.raw")"
assert_logged "web-download needs a queued image (status active)"
assert_eq "$(xattr "$bad" status)" queued "a refused request changes nothing"
unmount_imagefs
pass
