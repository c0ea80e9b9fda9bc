#!/usr/bin/env bash
# Starts and stops real, throwaway Ceph clusters on loopback: one ceph-mon,
# one ceph-osd on memstore and one ceph-mgr per cluster, pool `images` ready
# for RBD and pool `imagefs` for a catalog. Used by the tests, the benchmark and anyone who
# wants to try imagefs on Ceph.
#
#   ceph-cluster.sh start DIR NAME[@ADDRESS]... [--cephx] [--memstore-bytes N] [--no-mgr]
#       one cluster per NAME under DIR/NAME (ceph.conf there), started in
#       parallel; prints "NAME DIR/NAME/ceph.conf" per cluster. Each
#       listens on ADDRESS, a loopback address (default 127.0.0.1): sites
#       on addresses of their own are links tc can shape (bench/run.sh
#       --wan-mbit). --no-mgr: without the manager (no `ceph df`), seconds
#       sooner.
#   ceph-cluster.sh stop DIR [NAME...]
#       stops every cluster under DIR, or only the NAMEd ones
#   ceph-cluster.sh status DIR       one line per cluster: name, fsid, state
#
# With --cephx each cluster requires cephx and DIR/NAME/keyring holds
# client.admin; a client.imagefs key with rbd caps on `images` and `imagefs`
# is in DIR/NAME/client.imagefs.keyring. Without it, auth is none.
set -euo pipefail

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# A free TCP port on loopback address $1 (the kernel picks it).
free_port() {
  python3 -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

# start_one DIR NAME CEPHX BYTES MGR ADDRESS: one cluster, returns when pool
# `images` takes writes.
start_one() {
  local dir=$1 name=$2 cephx=$3 bytes=$4 mgr=$5 address=$6
  local auth=none
  [ "$cephx" = yes ] && auth=cephx
  rm -rf "$dir" && mkdir -p "$dir"/{run,log,mon.a,osd.0}
  local fsid port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  port=$(free_port "$address")
  cat > "$dir/ceph.conf" <<EOF
# Throwaway cluster "$name" made by imagefs scripts/ceph-cluster.sh.
[global]
fsid = $fsid
mon_host = v2:$address:$port
public_addr = $address
ms_bind_msgr1 = false
auth_cluster_required = $auth
auth_service_required = $auth
auth_client_required = $auth
keyring = $dir/keyring
run_dir = $dir/run
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
mon_data = $dir/mon.\$id
osd_data = $dir/osd.\$id
osd_objectstore = memstore
memstore_device_bytes = $bytes
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
auth_allow_insecure_global_id_reclaim = false
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1
# Commit monitor changes (pool and snapshot removal) at once, not every second.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
# Pool statistics (ceph df, from the manager) within a second, not five.
mgr_stats_period = 1
mon_mgr_digest_period = 1
[mon]
admin_socket = $dir/run/\$name.asok
[osd]
admin_socket = $dir/run/\$name.asok
keyring = $dir/osd.\$id/keyring
[mgr]
mgr_data = $dir/mgr.\$id
admin_socket = $dir/run/\$name.asok
keyring = $dir/mgr.\$id/keyring
EOF
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' > /dev/null
  ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' > /dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:$address:$port]" "$dir/monmap" > /dev/null
  ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring"
  ceph-mon -c "$dir/ceph.conf" -i a
  local c=(ceph -c "$dir/ceph.conf" --connect-timeout 20)
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  local id
  id=$("${c[@]}" osd new "$osd_uuid")
  [ "$id" = 0 ] || { echo "$name: expected osd.0, got osd.$id" >&2; return 1; }
  if [ "$cephx" = yes ]; then
    "${c[@]}" auth get-or-create osd.0 mon 'allow profile osd' osd 'allow *' \
      mgr 'allow profile osd' -o "$dir/osd.0/keyring"
  fi
  ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" 2> "$dir/log/osd-mkfs.err"
  ceph-osd -c "$dir/ceph.conf" -i 0
  # The manager: every cluster has one, and `ceph df` (a store's room, df
  # through imagefs) comes from it.
  mkdir -p "$dir/mgr.a"
  if [ "$cephx" = yes ]; then
    "${c[@]}" auth get-or-create mgr.a mon 'allow profile mgr' osd 'allow *' \
      -o "$dir/mgr.a/keyring"
  fi
  [ "$mgr" = no ] || ceph-mgr -c "$dir/ceph.conf" -i a
  "${c[@]}" osd pool create images 8 8 > /dev/null 2>&1
  "${c[@]}" osd pool application enable images rbd > /dev/null
  "${c[@]}" osd pool create imagefs 8 8 > /dev/null 2>&1
  "${c[@]}" osd pool application enable imagefs imagefs > /dev/null
  # A write returns once the pool's placement groups are active.
  timeout 60 rados -c "$dir/ceph.conf" -p images put imagefs-ready /dev/null
  rados -c "$dir/ceph.conf" -p images rm imagefs-ready
  # And once the manager reports the pools' room.
  for _ in $(seq 300); do
    [ "$mgr" = yes ] || break
    "${c[@]}" df --format json 2> /dev/null |
      python3 -c 'import json, sys
pools = {p["name"]: p["stats"] for p in json.load(sys.stdin)["pools"]}
sys.exit(0 if pools.get("images", {}).get("max_avail", 0) > 0 else 1)' && break
    sleep 0.2
  done
  if [ "$cephx" = yes ]; then
    "${c[@]}" auth get-or-create client.imagefs mon 'profile rbd' \
      osd 'profile rbd pool=images, allow rwx pool=imagefs' -o "$dir/client.imagefs.keyring"
  fi
  echo "$name" > "$dir/name"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case "$cmd" in
  start)
    base=${1:?DIR}
    shift
    names=()
    addresses=()
    cephx=no
    mgr=yes
    bytes=$((2 * 1024 * 1024 * 1024))
    while [ $# -gt 0 ]; do
      case "$1" in
        --cephx) cephx=yes ;;
        --no-mgr) mgr=no ;;
        --memstore-bytes) bytes=$2; shift ;;
        -*) usage ;;
        *@*) names+=("${1%@*}"); addresses+=("${1#*@}") ;;
        *) names+=("$1"); addresses+=(127.0.0.1) ;;
      esac
      shift
    done
    [ ${#names[@]} -gt 0 ] || usage
    mkdir -p "$base"
    pids=()
    for i in "${!names[@]}"; do
      name=${names[$i]}
      start_one "$base/$name" "$name" "$cephx" "$bytes" "$mgr" "${addresses[$i]}" \
        > "$base/$name.start.log" 2>&1 &
      pids+=($!)
    done
    failed=0
    for i in "${!names[@]}"; do
      if ! wait "${pids[$i]}"; then
        echo "cluster ${names[$i]} did not start; $base/${names[$i]}.start.log says:" >&2
        tail -n 20 "$base/${names[$i]}.start.log" >&2
        failed=1
      fi
    done
    if [ $failed -ne 0 ]; then
      "$0" stop "$base"
      exit 1
    fi
    for name in "${names[@]}"; do echo "$name $base/$name/ceph.conf"; done
    ;;
  stop)
    base=${1:?DIR}
    shift
    dirs=()
    if [ $# -eq 0 ]; then
      dirs=("$base"/*/)
    else
      for name in "$@"; do dirs+=("$base/$name/"); done
    fi
    pids=()
    for dir in "${dirs[@]}"; do
      for pidfile in "$dir"run/*.pid; do [ -f "$pidfile" ] && pids+=("$(cat "$pidfile")"); done
    done
    [ ${#pids[@]} -gt 0 ] || exit 0
    kill "${pids[@]}" 2>/dev/null || true
    # memstore keeps everything in memory, nothing to flush: give them all
    # two seconds together (an OSD may linger on SIGTERM), then kill.
    for _ in $(seq 20); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive -eq 1 ] || break
      sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    ;;
  status)
    base=${1:?DIR}
    for conf in "$base"/*/ceph.conf; do
      [ -f "$conf" ] || continue
      dir=$(dirname "$conf")
      fsid=$(sed -n 's/^fsid = //p' "$conf")
      if timeout 10 ceph -c "$conf" --connect-timeout 5 osd stat > /dev/null 2>&1; then
        state=up
      else
        state=down
      fi
      echo "$(cat "$dir/name" 2>/dev/null || basename "$dir") $fsid $state"
    done
    ;;
  *) usage ;;
esac
