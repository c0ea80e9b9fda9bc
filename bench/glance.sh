# The Glance peer of bench/run.sh (sourced): Debian's glance-api,
# configured with the same stores on the same clusters (multi-store,
# SQLite database, no Keystone: the paste pipeline's `context` filter takes
# the identity headers each request sends, as admin).
#
#   glance_start DIR PORT SITE=CEPH_CONF...   installs, configures and
#                                              starts it; the first SITE is
#                                              the default store
#   glance_stop
#   glance_upload FILE                         a new image in the default
#                                              store; prints its id
#   glance_copy ID SITE...                     Glance's copy-image into the
#                                              SITEs; returns when done,
#                                              fails unless all succeeded
#   glance_delete_from ID SITE...              its copies there (DELETE
#                                              /v2/stores/SITE/ID)

GLANCE_URL=
GLANCE_PID=
GLANCE_HEADERS=(-H "X-Identity-Status: Confirmed" -H "X-User-Id: bench" -H "X-Tenant-Id: bench"
  -H "X-Roles: admin,member,reader")

glance_start() {
  local dir=$1 port=$2
  shift 2
  if ! command -v glance-api > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      glance-api python3-rbd python3-rados > /dev/null
  fi
  mkdir -p "$dir"/{staging,tasks}
  cp /etc/glance/glance-api-paste.ini "$dir/paste.ini"
  printf '\n[pipeline:glance-api-trusted]\n%s\n' \
    "pipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler context rootapp" \
    >> "$dir/paste.ini"
  local backends=() default=
  for site in "$@"; do
    backends+=("${site%%=*}:rbd")
    [ -n "$default" ] || default=${site%%=*}
  done
  {
    cat <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 1
enabled_backends = $(IFS=,; echo "${backends[*]}" | sed 's/,/, /g')
enabled_import_methods = [glance-direct,web-download,copy-image]
log_file = $dir/glance-api.log
[database]
connection = sqlite:///$dir/glance.sqlite
[paste_deploy]
flavor = trusted
config_file = $dir/paste.ini
[glance_store]
default_backend = $default
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
CONF
    for site in "$@"; do
      printf '[%s]\nrbd_store_ceph_conf = %s\nrbd_store_pool = images\nrbd_store_user = admin\n' \
        "${site%%=*}" "${site#*=}"
    done
  } > "$dir/glance-api.conf"
  GLANCE_URL=http://127.0.0.1:$port
  if curl -s "$GLANCE_URL/" > /dev/null; then
    echo "glance: something already answers on port $port" >&2
    return 1
  fi
  glance-manage --config-file "$dir/glance-api.conf" db_sync > "$dir/db_sync.log" 2>&1
  glance-api --config-file "$dir/glance-api.conf" > "$dir/glance-api.out" 2>&1 &
  GLANCE_PID=$!
  for _ in $(seq 100); do
    curl -sf "$GLANCE_URL/" > /dev/null && return 0
    sleep 0.2
  done
  echo "glance-api did not start; $dir/glance-api.out says:" >&2
  tail -n 20 "$dir/glance-api.out" >&2
  return 1
}

glance_stop() {  # the parent and the worker it forked
  [ -n "$GLANCE_PID" ] || return 0
  pkill -P "$GLANCE_PID" 2> /dev/null || true
  kill "$GLANCE_PID" 2> /dev/null || true
  GLANCE_PID=
}

glance_api() {  # METHOD PATH [curl arguments...]: the body of the answer; fails on an HTTP error
  local method=$1 path=$2 answer status
  shift 2
  answer=$(curl -s -w '\n%{http_code}' "${GLANCE_HEADERS[@]}" -X "$method" "$GLANCE_URL$path" "$@")
  status=${answer##*$'\n'}
  [[ $status =~ ^[0-9]+$ ]] || status=000  # curl itself failed
  answer=${answer%$'\n'*}
  if [ "$status" -ge 400 ] || [ "$status" = 000 ]; then
    echo "glance: $method $path: HTTP $status: $answer" >&2
    return 1
  fi
  printf '%s' "$answer"
}

glance_image() {  # ID FIELD: the field of the image (lists joined by commas)
  glance_api GET "/v2/images/$1" | python3 -c 'import json, sys
value = json.load(sys.stdin).get(sys.argv[1])
print(",".join(value) if isinstance(value, list) else value or "")' "$2"
}

glance_upload() {
  local id
  id=$(cat /proc/sys/kernel/random/uuid)
  glance_api POST /v2/images -H "Content-Type: application/json" \
    -d "{\"id\":\"$id\",\"name\":\"bench\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}" > /dev/null
  # -T streams the file (--data-binary would hold all of it in memory).
  glance_api PUT "/v2/images/$id/file" -H "Content-Type: application/octet-stream" -T "$1" \
    > /dev/null
  [ "$(glance_image "$id" status)" = active ] || { echo "glance: upload of $1 failed" >&2; return 1; }
  echo "$id"
}

glance_copy() {
  local id=$1
  shift
  local stores
  stores=$(printf '"%s",' "$@")
  glance_api POST "/v2/images/$id/import" -H "Content-Type: application/json" \
    -d "{\"method\":{\"name\":\"copy-image\"},\"stores\":[${stores%,}]}" > /dev/null
  # Glance's task marks the stores importing once it runs, after the
  # answer: done when every target is a store of the image or a failed
  # one, and the task let go of the image. Polled by curl and sed every 0.1 s (a python per poll would take
  # CPU from Glance).
  local image field done=no
  while [ $done = no ]; do
    sleep 0.1
    image=$(glance_api GET "/v2/images/$id")
    done=yes
    # The task holds the image until it ends (another import is refused).
    ! grep -q '"os_glance_import_task"' <<< "$image" || { done=no; continue; }
    for site in "$@"; do
      for field in stores os_glance_failed_import; do
        sed -n "s/.*\"$field\": \"\([^\"]*\)\".*/,\1,/p" <<< "$image" | grep -q ",$site," &&
          continue 2
      done
      done=no
    done
  done
  local failed
  failed=$(glance_image "$id" os_glance_failed_import)
  [ -z "$failed" ] || { echo "glance: copy-image of $id to $failed failed" >&2; return 1; }
}

glance_delete_from() {
  local id=$1
  shift
  for site in "$@"; do glance_api DELETE "/v2/stores/$site/$id" > /dev/null; done
}
