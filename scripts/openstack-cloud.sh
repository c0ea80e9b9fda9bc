#!/usr/bin/env bash
# A real OpenStack image cloud on loopback, from Debian's packages, for the
# tests of the Glance catalog: Keystone (SQLite, fernet tokens, a templated
# service catalog, served by keystone-wsgi-public) and glance-api (SQLite,
# multi-store, keystone auth, show_multiple_locations).
#
#   scripts/openstack-cloud.sh start DIR [--token-expiration SECONDS]
#                                        [--ceph CEPH_DIR POOL]
#   scripts/openstack-cloud.sh stop DIR
#
# start leaves in DIR:
#   clouds.yaml      cloud `imagefs-test` (user admin of project admin)
#   glance-api.conf  what glance-api runs with: three stores central, dcn0
#                    and dcn1, files under DIR/stores, or with --ceph rbd
#                    in pool POOL of the clusters scripts/ceph-cluster.sh
#                    started in CEPH_DIR; staging in DIR/staging
#   env              KEYSTONE_URL, GLANCE_URL, OS_CLIENT_CONFIG_FILE,
#                    OS_CLOUD, GLANCE_PID, KEYSTONE_PID
#   glance.py        Glance's Python client for the tests: /usr/bin/python3
#                    DIR/glance.py COMMAND ... (see the file)
# Both listen on 127.0.0.1, on free ports the kernel picks (env says which),
# so that several clouds, and tests run at once, never meet.
set -euo pipefail

command=${1:?usage: $0 start|stop DIR}
dir=${2:?usage: $0 start|stop DIR}
shift 2
here=$(cd "$(dirname "$0")" && pwd)

# A free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
  for pidfile in "$dir"/glance.pid "$dir"/keystone.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # glance-api forks a worker; both are in the process group it leads.
    kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null || true
    rm -f "$pidfile"
  done
}

# wait_http URL WHAT: until URL answers, 60 s at most.
wait_http() {
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not answer at $1 within 60 s" >&2
  tail -n 30 "$dir"/*.log >&2 || true
  return 1
}

if [ "$command" == stop ]; then
  stop
  exit 0
fi
[ "$command" == start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
expiration=3600
ceph_dir=
pool=
while [ $# -gt 0 ]; do
  case "$1" in
    --token-expiration) expiration=$2; shift 2 ;;
    --ceph) ceph_dir=$2; pool=$3; shift 3 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
stop
keystone_port=$(free_port)
glance_port=$(free_port)
while [ "$glance_port" == "$keystone_port" ]; do glance_port=$(free_port); done
keystone_url=http://127.0.0.1:$keystone_port/v3
glance_url=http://127.0.0.1:$glance_port
rm -rf "$dir"
mkdir -p "$dir"/{keystone,stores/central,stores/dcn0,stores/dcn1,staging,tasks}
dir=$(cd "$dir" && pwd)

# --- Keystone
cat > "$dir/keystone/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone/keystone.db
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $dir/keystone/fernet-keys
[fernet_receipts]
key_repository = $dir/keystone/fernet-keys
[credential]
key_repository = $dir/keystone/credential-keys
[identity]
# bcrypt's lowest cost: a test cloud's every password check took 1.6 s
password_hash_rounds = 4
CONF
{
  for interface in public internal admin; do
    echo "catalog.RegionOne.identity.${interface}URL = $keystone_url"
    echo "catalog.RegionOne.image.${interface}URL = $glance_url"
  done
  echo "catalog.RegionOne.identity.name = Identity Service"
  echo "catalog.RegionOne.image.name = Image Service"
} > "$dir/keystone/catalog.templates"
manage() { keystone-manage --config-file "$dir/keystone/keystone.conf" "$@" > /dev/null 2>&1; }
manage db_sync
manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage bootstrap --bootstrap-password adminpw --bootstrap-region-id RegionOne
# The service catalog then comes from a file: creating endpoints in
# keystone's SQLite database under keystone-wsgi-public fails with
# "database is locked", and bootstrap cannot write into a template.
cat >> "$dir/keystone/keystone.conf" <<CONF
[catalog]
driver = templated
template_file = $dir/keystone/catalog.templates
CONF
OS_KEYSTONE_CONFIG_FILES=$dir/keystone/keystone.conf setsid keystone-wsgi-public \
  --port "$keystone_port" --host 127.0.0.1 > "$dir/keystone-wsgi.log" 2>&1 &
echo $! > "$dir/keystone.pid"
wait_http "$keystone_url" keystone

cat > "$dir/clouds.yaml" <<YAML
clouds:
  imagefs-test:
    auth:
      auth_url: $keystone_url
      username: admin
      password: adminpw
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
YAML
cp "$here/openstack-glance.py" "$dir/glance.py"
# Glance's own service user, for its token validation.
OS_CLIENT_CONFIG_FILE=$dir/clouds.yaml OS_CLOUD=imagefs-test /usr/bin/python3 "$dir/glance.py" \
  service-user glance glancepw service

# --- glance-api
# store_section SITE: the store's section, file or rbd.
store_section() {
  echo "[$1]"
  if [ -n "$ceph_dir" ]; then
    echo "rbd_store_ceph_conf = $ceph_dir/$1/ceph.conf"
    echo "rbd_store_pool = $pool"
    echo "rbd_store_user = admin"
    echo "rbd_store_chunk_size = 4"
    echo "rados_connect_timeout = 10"
  else
    echo "filesystem_store_datadir = $dir/stores/$1"
  fi
}
driver=file
[ -z "$ceph_dir" ] || driver=rbd
cat > "$dir/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $glance_port
workers = 1
log_file = $dir/glance-api.log
enabled_backends = central:$driver, dcn0:$driver, dcn1:$driver
show_multiple_locations = True
show_image_direct_url = True
enabled_import_methods = [glance-direct,web-download,copy-image]
[database]
connection = sqlite:///$dir/glance.db
[glance_store]
default_backend = central
$(for site in central dcn0 dcn1; do store_section "$site"; done)
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
[paste_deploy]
flavor = keystone
[keystone_authtoken]
www_authenticate_uri = $keystone_url
auth_url = $keystone_url
auth_type = password
username = glance
password = glancepw
project_name = service
user_domain_id = default
project_domain_id = default
[oslo_policy]
enforce_new_defaults = False
enforce_scope = False
CONF
glance-manage --config-file "$dir/glance-api.conf" db_sync > "$dir/glance-manage.log" 2>&1
setsid glance-api --config-file "$dir/glance-api.conf" > "$dir/glance-api.out" 2>&1 &
echo $! > "$dir/glance.pid"
wait_http "$glance_url" glance-api

cat > "$dir/env" <<ENV
KEYSTONE_URL=$keystone_url
GLANCE_URL=$glance_url
OS_CLIENT_CONFIG_FILE=$dir/clouds.yaml
OS_CLOUD=imagefs-test
KEYSTONE_PID=$(cat "$dir/keystone.pid")
GLANCE_PID=$(cat "$dir/glance.pid")
ENV
