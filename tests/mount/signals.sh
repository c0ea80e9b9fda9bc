# Signals and metrics, as logrotate, systemd and a monitoring system use
# them:
# - logrotate renames the log and sends SIGHUP while an upload runs: the
#   mount stays, the upload finishes, the new file gets the new lines;
#   SIGHUP also reads log_level again;
# - the metrics file (Prometheus text) is rewritten every second here and
#   parses strictly; it counts a copy and a failed copy per store;
# - SIGTERM while a copy-image import runs: the daemon waits for it, and
#   it is published; SIGTERM while a file is half written: nothing is
#   half published; SIGTERM while an import cannot end (a web server that
#   trickles): the daemon stops after stop_timeout anyway, and recovery
#   settles the import at the next start.
source "$(dirname "$0")/lib.sh"
failing_store dcn1
METRICS=$WORK/imagefs.prom
write_config "metrics_file = $METRICS" "metrics_interval = 1" "stop_timeout = 20" \
  "[import_filtering_opts]" "allowed_ports ="
mount_imagefs

echo "--- logrotate: rename, SIGHUP, while an upload runs"
random_file "$WORK/img" 32
size=$(stat -c %s "$WORK/img")
md5=$(md5sum < "$WORK/img" | cut -d' ' -f1)
id=$(new_uuid)
mkdir "$MNT/images/$id"
exec 3> "$MNT/images/$id/stores/central/disk.raw"
head -c $((16 << 20)) "$WORK/img" >&3
mv "$LOG" "$LOG.1"
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do [ -f "$LOG" ] && break; sleep 0.1; done
[ -f "$LOG" ] || fail "SIGHUP did not open a new log file"
mountpoint -q "$MNT" || fail "SIGHUP unmounted"
tail -c +$(((16 << 20) + 1)) "$WORK/img" >&3
exec 3>&-
assert_eq "$(xattr "$id" status)" active "the upload across SIGHUP"
assert_eq "$(xattr "$id" checksum)" "$md5" "its md5"
grep -q "SIGHUP: log reopened" "$LOG" || fail "the new log lacks the reopen line"
grep -q "image $id: copy in central published" "$LOG" || fail "the new log lacks the upload's end"
grep -q "image $id: created" "$LOG.1" || fail "the old log lacks what came before"

# log_level read again: at warning, an image's creation (info) is not logged.
sed -i 's/^\[imagefs\]$/[imagefs]\nlog_level = warning/' "$WORK/imagefs.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
quiet=$(new_uuid)
mkdir "$MNT/images/$quiet"
! grep -q "image $quiet: created" "$LOG" || fail "log_level = warning was not read again on SIGHUP"
sed -i '/^log_level = warning$/d' "$WORK/imagefs.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5

echo "--- metrics after a copy and a failed copy"
cp "$MNT/sites/central/$id" "$MNT/sites/dcn0/$id"
expect_error "No space left on device" cp "$MNT/sites/central/$id" "$MNT/sites/dcn1/$id"
wait_until_rewritten "$METRICS"
python3 - "$METRICS" "$size" <<'EOF' || fail "the metrics file: $(cat "$METRICS")"
import math, re, sys
path, size = sys.argv[1], float(sys.argv[2])
types, samples = {}, {}
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$')
for number, line in enumerate(open(path), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert kind in ("counter", "gauge", "histogram"), line
        assert name not in types, f"line {number}: {name} described twice"
        types[name] = kind
        continue
    match = sample.match(line)
    assert match, f"line {number} is not a sample: {line!r}"
    name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
    family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
    assert family in types, f"line {number}: {name} has no TYPE"
    assert not math.isnan(value), line
    samples[name + labels] = value
def get(key):
    assert key in samples, f"missing {key}"
    return samples[key]
assert get('imagefs_imports_started_total{store="central"}') >= 1
assert get('imagefs_imports_succeeded_total{store="central"}') >= 1
assert get('imagefs_imports_succeeded_total{store="dcn0"}') == 1
assert get('imagefs_imports_failed_total{store="dcn1"}') == 1
assert get('imagefs_copied_bytes_total{store="dcn0"}') == size
assert get('imagefs_catalog_live') == 1
assert get('imagefs_leases_held') == 0
buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), v)
                 for k, v in samples.items()
                 if k.startswith('imagefs_operation_duration_seconds_bucket{operation="copy"'))
assert buckets and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
assert buckets[-1][1] == get('imagefs_operation_duration_seconds_count{operation="copy"}') == 2
print(f"metrics: {len(types)} families, {len(samples)} samples, all well formed")
EOF

echo "--- SIGTERM while a copy-image import runs"
random_file "$WORK/big" 64
big=$(new_uuid)
mkdir "$MNT/images/$big"
cp "$WORK/big" "$MNT/sites/central/$big"
setfattr -n user.glance.import -v '{"method":{"name":"copy-image"},"stores":["dcn0"]}' \
  "$MNT/images/$big"
started=$EPOCHREALTIME
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "imagefs did not exit cleanly on SIGTERM"
DAEMON_PID=
echo "stopped $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s after SIGTERM"
! mountpoint -q "$MNT" || fail "SIGTERM left the mount"
assert_logged "stopping: waiting up to 20 s for running commits"
mount_imagefs
assert_eq "$(xattr "$big" stores)" central,dcn0 "the import running at SIGTERM was finished"
cmp "$WORK/big" "$MNT/sites/dcn0/$big" || fail "its copy"

echo "--- SIGTERM while a file is half written"
half=$(new_uuid)
mkdir "$MNT/images/$half"
exec 3> "$MNT/images/$half/stores/central/disk.raw"
head -c $((8 << 20)) "$WORK/big" >&3
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "imagefs did not exit cleanly on SIGTERM"
DAEMON_PID=
exec 3>&- 2> /dev/null || true
mount_imagefs
assert_eq "$(xattr "$half" status)" queued "an upload cut by SIGTERM"
check_consistency

echo "--- SIGTERM while an import cannot end: stop_timeout bounds the stop"
# Headers, then 4 KiB a second: never done, never stalled.
python3 -u - > "$WORK/slow.port" <<'EOF' &
import socket, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
def trickle(connection):
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
    try:
        while True:
            connection.sendall(b"\0" * 4096)
            time.sleep(1)
    except OSError:
        pass
while True:
    connection, _ = server.accept()
    threading.Thread(target=trickle, args=(connection,), daemon=True).start()
EOF
EXTRA_PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/slow.port" ] && break; sleep 0.1; done
sed -i 's/^stop_timeout = 20$/stop_timeout = 3/' "$WORK/imagefs.conf"
unmount_imagefs
mount_imagefs
slow=$(new_uuid)
mkdir "$MNT/images/$slow"
uri="http://127.0.0.1:$(cat "$WORK/slow.port")/disk.raw"
setfattr -n user.glance.import -v "{\"method\":{\"name\":\"web-download\",\"uri\":\"$uri\"}}" \
  "$MNT/images/$slow"
wait_for_xattr "$slow" status importing
started=$EPOCHREALTIME
kill -TERM "$DAEMON_PID"
if wait "$DAEMON_PID"; then fail "a stop that left an import running exited 0"; fi
DAEMON_PID=
took=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
echo "stopped $took s after SIGTERM (stop_timeout = 3)"
awk -v t="$took" 'BEGIN { exit !(t >= 3 && t < 6) }' || fail "the stop took $took s"
! mountpoint -q "$MNT" || fail "the bounded stop left the mount"
assert_logged "operations still running after 3 s (stop_timeout); leaving them to recovery"
mount_imagefs  # after lease_ttl, the sweeper settles the import
for _ in $(seq 100); do [ "$(xattr "$slow" status)" == queued ] && break; sleep 0.5; done
assert_eq "$(xattr "$slow" status)" queued "the import cut by the bounded stop, after recovery"
check_consistency
unmount_imagefs
pass
