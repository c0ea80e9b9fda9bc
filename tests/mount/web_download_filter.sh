# Which URIs a web-download may fetch: Glance's [import_filtering_opts]
# with its defaults (http and https, ports 80 and 443 only), then with
# lists of an operator's own. A refused URI gets EPERM at setfattr with a
# log line naming the rule; a redirect to a refused URI fails the import
# the same way (nothing published, the stores listed as failed), while a
# redirect that passes is followed.
source "$(dirname "$0")/lib.sh"
mkdir "$WORK/www"
random_file "$WORK/www/disk.raw" 2
serve_http "$WORK/www"
files_port=$(echo "$HTTP_URL" | sed 's|.*:\([0-9]*\)/|\1|')
# A server that answers every GET with a redirect to the URI in its path
# (/to/<uri>), on a port of its own.
python3 -u -c '
import http.server, urllib.parse
class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", urllib.parse.unquote(self.path[len("/to/"):]))
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"moved")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
print(server.server_address[1])
server.serve_forever()' > "$WORK/redirect.out" &
EXTRA_PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/redirect.out" ] && break; sleep 0.1; done
redirect_port=$(head -1 "$WORK/redirect.out")
redirector="http://127.0.0.1:$redirect_port/to"
import() { setfattr -n user.glance.import -v "$2" "$MNT/images/$1"; }
web() { echo "{\"method\":{\"name\":\"web-download\",\"uri\":\"$1\"}${2:-}}"; }
new_image() {
  local id
  id=$(new_uuid)
  mkdir "$MNT/images/$id"
  echo "$id"
}
refused="Operation not permitted"

# Glance's defaults: the loopback servers' ports are not 80 or 443.
write_config
mount_imagefs
id=$(new_image)
expect_error "$refused" import "$id" "$(web "${HTTP_URL}disk.raw")"
assert_logged "image $id: web-download: '${HTTP_URL}disk.raw' refused by \\[import_filtering_opts\\]: port $files_port is not in allowed_ports"
expect_error "$refused" import "$id" "$(web "gopher://127.0.0.1/disk.raw")"
assert_logged "scheme gopher is not in allowed_schemes"
assert_eq "$(xattr "$id" status)" queued "a refused request changes nothing"
unmount_imagefs

# An operator's lists: the two servers' ports, one host.
write_config "[import_filtering_opts]" "allowed_ports = $files_port, $redirect_port" \
  "allowed_hosts = 127.0.0.1" "disallowed_hosts = 127.0.0.1"
mount_imagefs
id=$(new_image)
import "$id" "$(web "${HTTP_URL}disk.raw" ',"stores":["central","dcn0"]')"
wait_for_xattr "$id" os_glance_importing_to_stores ""
assert_eq "$(xattr "$id" stores)" central,dcn0 "allowed host and port (allowed_hosts wins over disallowed_hosts)"
other=$(new_image)
expect_error "$refused" import "$other" "$(web "http://localhost:$files_port/disk.raw")"
assert_logged "host localhost is not in allowed_hosts"

# A redirect that passes the filter is followed.
followed=$(new_image)
import "$followed" "$(web "$redirector/${HTTP_URL}disk.raw")"
wait_for_xattr "$followed" os_glance_importing_to_stores ""
assert_eq "$(xattr "$followed" status)" active "a redirect the filter allows"
assert_eq "$(xattr "$followed" checksum)" "$(md5sum < "$WORK/www/disk.raw" | cut -d' ' -f1)" \
  "md5 after the redirect (its body is not data)"
# A redirect to a port, a host or a scheme the filter refuses is not.
for target in "http://127.0.0.1:9/disk.raw" "http://localhost:$files_port/disk.raw" \
  "ftp://127.0.0.1:$files_port/disk.raw"; do
  bounced=$(new_image)
  import "$bounced" "$(web "$redirector/$target" ',"stores":["central","dcn1"]')"
  wait_for_xattr "$bounced" os_glance_importing_to_stores ""
  assert_eq "$(xattr "$bounced" status)" queued "redirect to $target: status"
  assert_eq "$(xattr "$bounced" os_glance_failed_import)" central,dcn1 "redirect to $target: failed"
  assert_logged "'$target' refused by \\[import_filtering_opts\\]: .* (a redirect from $redirector/$target)"
  echo "ok: a redirect to $target is refused"
done
for site in "${SITES[@]}"; do
  assert_eq "$(store_temporaries "$site")" "" "temporaries in $site"
done
unmount_imagefs
pass
