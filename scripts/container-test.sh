#!/usr/bin/env bash
# Builds the container image from the Dockerfile and runs its pgsidecar in front of the
# test cluster, with no registry and no container daemon:
#   1. debian:bookworm-slim, made here: debootstrap --variant=minbase bookworm from the
#      Debian mirror this machine's apt uses, trimmed like the official slim image and
#      cached as build-container/debian-bookworm-minbase.tar (delete it to refresh),
#      then `podman import`ed as localhost/debian:bookworm-slim, which the Dockerfile's
#      FROM resolves to (--pull=never: nothing is pulled);
#   2. podman build --isolation chroot --format docker -t localhost/pgsidecar:test .
#   3. checks of the image: non-root user, ports, entrypoint, HEALTHCHECK, and that its
#      default configuration passes --check;
#   4. the image's pgsidecar, run with `buildah run --isolation chroot` (host network),
#      in front of the test cluster (tests/support/cluster.sh): a query through it with
#      psql; the image's HEALTHCHECK command succeeds on a 200 and fails on a 404 (from
#      a stand-in server); GET /metrics answers 200 with pgsidecar_ metrics and the
#      HEALTHCHECK succeeds against pgsidecar's /healthz; SIGTERM makes it exit 0.
# Prints how long each step took. Stops what it started (by PID), removes its working
# container, the test cluster and its temporary files, also on failure or Ctrl-C; the
# images and the base tarball stay, so that a second run is quick.
#
# Needs root, podman, buildah and debootstrap (installed here when missing), and
# PostgreSQL 15 and psql (scripts/install-deps.sh). scripts/test.sh runs it before ctest.
#
# PGSIDECAR_CONTAINER_SKIP_HTTP=1 skips the checks of pgsidecar's own HTTP endpoint
# (/metrics, and the HEALTHCHECK against its /healthz), for debugging the image alone.
set -euo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
root=$(pwd)
cache_dir=$root/build-container
base_tar=$cache_dir/debian-bookworm-minbase.tar
base_image=localhost/debian:bookworm-slim
image=localhost/pgsidecar:test
skip_http=${PGSIDECAR_CONTAINER_SKIP_HTTP:-0}

log() { printf 'container-test: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  print_timings >&2
  exit 1
}

script_start=$SECONDS
step_start=$SECONDS
timings=()
step() {
  local now=$SECONDS
  if [[ $current_step != start ]]; then
    timings+=("$(printf '%4ds  %s' $((now - step_start)) "$current_step")")
  fi
  current_step=$*
  step_start=$now
  printf '\n=== %s\n' "$*"
}
current_step=start
print_timings() {
  printf '\nTimings:\n'
  printf '%s\n' "${timings[@]}"
  printf '%4ds  %s\n' $((SECONDS - step_start)) "$current_step"
  printf '%4ds  total\n' $((SECONDS - script_start))
}

# --- cleanup: only what this run started ------------------------------------------------
work_dir=
rootfs=
container=
runner_pid=
standin_pid=
cluster_dir=

# descendants PID: PID's child processes, their children, ... (by parent PID).
descendants() {
  local pid=$1 child
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

stop_runner() {
  [[ -n $runner_pid ]] || return 0
  if kill -0 "$runner_pid" 2>/dev/null; then
    local pids pid i
    pids=$(descendants "$runner_pid")
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
      kill -0 "$runner_pid" 2>/dev/null || break
      sleep 0.2
    done
    for pid in $pids "$runner_pid"; do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  wait "$runner_pid" 2>/dev/null || true
  runner_pid=
}

unmount_under() {
  local dir=$1 mnt
  # Deepest first; debootstrap mounts proc and sys inside the target while it works.
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r mnt; do
      umount -l -- "$mnt" 2>/dev/null || true
    done
}

# shellcheck disable=SC2317  # called from the traps
cleanup() {
  local status=$?
  stop_runner
  if [[ -n $standin_pid ]]; then
    kill -TERM "$standin_pid" 2>/dev/null || true
    wait "$standin_pid" 2>/dev/null || true
  fi
  if [[ -n $container ]]; then
    buildah rm "$container" >/dev/null 2>&1 || log "could not remove working container $container"
  fi
  if [[ -n $cluster_dir && -e $cluster_dir ]]; then
    bash "$root/tests/support/cluster.sh" stop "$cluster_dir" >/dev/null 2>&1 || true
  fi
  if [[ -n $rootfs && -d $rootfs ]]; then
    unmount_under "$rootfs"
    rm -rf --one-file-system -- "$rootfs"
  fi
  if [[ -n $work_dir && -d $work_dir ]]; then
    rm -rf -- "$work_dir"
  fi
  return "$status"
}
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, podman and buildah need it)"

# --- tools --------------------------------------------------------------------------------
step "tools: podman, buildah, debootstrap"
missing=()
for pkg in podman buildah debootstrap; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -y -q update >/dev/null
  apt-get -y -q install --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
for tool in podman buildah debootstrap psql; do
  command -v "$tool" >/dev/null || die "$tool not found (psql: run scripts/install-deps.sh)"
done
log "$(podman --version), $(buildah --version | cut -d' ' -f1-3)"

work_dir=$(mktemp -d /tmp/pgsidecar-container-test.XXXXXX)
chmod 755 "$work_dir"

# --- base image -----------------------------------------------------------------------------
# debian_mirror SUITE: the archive this machine's apt fetches SUITE from.
debian_mirror() {
  # shellcheck disable=SC2016  # $(SITE) is apt's format syntax
  apt-get indextargets --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
    awk -v suite="$1" '$2 == suite && !found { print $1; found = 1 }'
}

make_base_tarball() {
  local mirror security
  mirror=$(debian_mirror bookworm)
  [[ -n $mirror ]] || die "no bookworm source in this machine's apt sources (apt-get indextargets)"
  security=$(debian_mirror bookworm-security)
  [[ -n $security ]] || security=${mirror%/debian}/debian-security
  log "debootstrap --variant=minbase bookworm from $mirror"
  rootfs=$(mktemp -d /var/tmp/pgsidecar-rootfs.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work_dir/debootstrap.log" 2>&1 || {
    tail -n 30 "$work_dir/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  }
  # As the official debian:bookworm-slim: the same apt sources, no documentation,
  # manual pages or translations now or from later installs, no apt lists or caches.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian}/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/* "$rootfs"/root/.bash_history
  : >"$rootfs/etc/resolv.conf"
  unmount_under "$rootfs"
  mkdir -p "$cache_dir"
  tar -C "$rootfs" --numeric-owner --xattrs -cf "$base_tar.tmp" .
  mv -f -- "$base_tar.tmp" "$base_tar"
  rm -rf --one-file-system -- "$rootfs"
  rootfs=
}

step "base image $base_image"
if [[ -s $base_tar ]]; then
  log "using the cached $base_tar"
else
  make_base_tarball
fi
podman import --quiet --change 'CMD ["bash"]' "$base_tar" "$base_image" >/dev/null
log "imported $base_image ($(du -m "$base_tar" | cut -f1) MB tarball)"

# --- image ----------------------------------------------------------------------------------
step "podman build $image"
previous_image=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
if ! podman build --isolation chroot --pull=never --format docker --force-rm \
  --build-arg JOBS=1 -t "$image" . >"$work_dir/build.log" 2>&1; then
  tail -n 40 "$work_dir/build.log" >&2
  die "podman build failed (last lines above)"
fi
grep -q 'HEALTHCHECK is not supported' "$work_dir/build.log" && die "the HEALTHCHECK was dropped"
log "built $image: $(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
# The image this tag named before, now untagged: remove it, unless something still uses it.
if [[ -n $previous_image && $previous_image != "$(podman image inspect --format '{{.Id}}' "$image")" ]]; then
  podman rmi "$previous_image" >/dev/null 2>&1 || true
fi

step "image configuration"
inspect() { podman image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
[[ $user == 10001:10001 ]] || die "image user is '$user', expected 10001:10001"
# shellcheck disable=SC2016  # a Go template
ports=$(inspect '{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}')
ports=${ports% }
[[ $ports == *6432/tcp* && $ports == *9930/tcp* ]] || die "exposed ports are '$ports'"
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
[[ $entrypoint == '["/usr/local/bin/pgsidecar","--config","/etc/pgsidecar/pgsidecar.toml"]' ]] ||
  die "entrypoint is $entrypoint"
healthcheck=$(inspect '{{json .Config.Healthcheck.Test}}')
[[ $healthcheck == *'/healthz'* ]] || die "HEALTHCHECK is '$healthcheck'"
log "user $user, ports $ports, entrypoint $entrypoint"
log "healthcheck $healthcheck"

container=$(buildah from --pull-never --name "pgsidecar-container-test-$$" "$image")
run_in() { buildah run --isolation chroot --network host "$container" -- "$@"; }
uid=$(run_in id -u)
[[ $uid == 10001 ]] || die "processes in the image run as uid $uid"
for name in APP_PASSWORD ADMIN_PASSWORD SESSIONS_PASSWORD; do
  buildah config --env "$name=placeholder" "$container"
done
run_in /usr/local/bin/pgsidecar --config /etc/pgsidecar/pgsidecar.toml --check ||
  die "the image's default configuration fails --check"
run_in /usr/local/bin/pgsidecar --version

# --- the image's pgsidecar in front of the test cluster --------------------------------------
step "test cluster"
cluster_dir=$work_dir/cluster
bash tests/support/cluster.sh start "$cluster_dir" >"$work_dir/cluster.log" 2>&1 || {
  cat "$work_dir/cluster.log" >&2
  die "tests/support/cluster.sh start failed"
}
# shellcheck disable=SC1091
source "$cluster_dir/env"

port_free() {
  local hex
  hex=$(printf ':%04X ' "$1")
  ! grep -q -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# Below 32768, the kernel's ephemeral range, like the test cluster's ports.
pick_port() {  # pick_port [EXCLUDED...]
  local port excluded
  while :; do
    port=$((20000 + RANDOM % 12000))
    port_free "$port" || continue
    for excluded in "$PRIMARY_PORT" "$REPLICA_PORT" "$@"; do
      [[ $port == "$excluded" ]] && continue 2
    done
    echo "$port"
    return
  done
}
listen_port=$(pick_port)
http_port=$(pick_port "$listen_port")

step "pgsidecar from $image"
mkdir -p "$work_dir/etc"
cat >"$work_dir/etc/pgsidecar.toml" <<EOF
[listen]
address = "127.0.0.1"
port = $listen_port
drain_timeout = "2s"

[http]
address = "127.0.0.1"
port = $http_port

[[users]]
name = "$APP_USER"
password = "\${APP_PASSWORD}"

[health]
interval = "200ms"

[[databases]]
name = "$DATABASE"
primary = "postgres://127.0.0.1:$PRIMARY_PORT/$DATABASE"
replicas = ["postgres://127.0.0.1:$REPLICA_PORT/$DATABASE"]
EOF
chmod -R a+rX "$work_dir/etc"
buildah config --env "APP_PASSWORD=$APP_PASSWORD" "$container"
buildah run --isolation chroot --network host \
  --volume "$work_dir/etc/pgsidecar.toml:/etc/pgsidecar/test.toml:ro" "$container" -- \
  /usr/local/bin/pgsidecar --config /etc/pgsidecar/test.toml >"$work_dir/pgsidecar.log" 2>&1 &
runner_pid=$!

psql_app() {
  PGPASSWORD=$APP_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -A -t -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$listen_port" -U "$APP_USER" -d "$DATABASE" "$@"
}
ready=0
for ((i = 0; i < 150; i++)); do
  kill -0 "$runner_pid" 2>/dev/null || break
  if psql_app -c 'SELECT 1' >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.2
done
if ((ready == 0)); then
  tail -n 30 "$work_dir/pgsidecar.log" >&2
  die "pgsidecar in the container did not accept a query on 127.0.0.1:$listen_port within 30 s"
fi
log "pgsidecar (uid 10001, in $image) listens on 127.0.0.1:$listen_port"

step "query through pgsidecar with psql"
out=$(psql_app -c 'SELECT current_user, current_database(), pg_is_in_recovery(), 6 * 7')
[[ $out == "$APP_USER|$DATABASE|f|42" ]] || die "query through pgsidecar answered '$out'"
out=$(psql_app -c 'CREATE TABLE IF NOT EXISTS container_test (n int)' \
  -c 'INSERT INTO container_test VALUES (1), (2)' -c 'SELECT sum(n) FROM container_test' \
  -c 'DROP TABLE container_test')
[[ $out == 3 ]] || die "write and read through pgsidecar answered '$out'"
log "psql through pgsidecar: read and write on the primary work"

# health_command PORT PATH: the image's HEALTHCHECK command (exec form, without "CMD"),
# one word a line, its URL pointed at 127.0.0.1:PORT/PATH.
health_command() {
  podman image inspect --format '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$image" |
    sed -e '/^$/d' -e "s#http://127\.0\.0\.1:9930/healthz#http://127.0.0.1:$1/$2#"
}

step "HEALTHCHECK command against a stand-in /healthz"
# The image's own health check client, whatever pgsidecar serves: it must succeed on a
# 200 and fail on an error status. A static file server on the host stands in.
mkdir -p "$work_dir/www"
echo ok >"$work_dir/www/healthz"
standin_port=$(pick_port "$listen_port" "$http_port")
python3 -m http.server "$standin_port" --bind 127.0.0.1 --directory "$work_dir/www" \
  >"$work_dir/standin.log" 2>&1 &
standin_pid=$!
for ((i = 0; i < 50; i++)); do
  curl -s -o /dev/null --noproxy '*' "http://127.0.0.1:$standin_port/healthz" && break
  sleep 0.1
done
mapfile -t health_cmd < <(health_command "$standin_port" healthz)
[[ ${health_cmd[0]:-} == CMD ]] || die "HEALTHCHECK is not in exec form: ${health_cmd[*]}"
run_in "${health_cmd[@]:1}" || die "the HEALTHCHECK command failed on a 200: ${health_cmd[*]:1}"
mapfile -t health_cmd < <(health_command "$standin_port" missing)
if run_in "${health_cmd[@]:1}" 2>/dev/null; then
  die "the HEALTHCHECK command succeeded on a 404: ${health_cmd[*]:1}"
fi
kill -TERM "$standin_pid" 2>/dev/null || true
wait "$standin_pid" 2>/dev/null || true
standin_pid=
log "HEALTHCHECK command: exit 0 on 200, non-zero on 404"

step "HTTP: GET /metrics, and the HEALTHCHECK against pgsidecar"
http_status=skipped
if [[ $skip_http == 1 ]]; then
  log "SKIPPED (PGSIDECAR_CONTAINER_SKIP_HTTP=1): GET /metrics and the HEALTHCHECK against pgsidecar's /healthz"
else
  code=$(curl -s -o "$work_dir/metrics.txt" -w '%{http_code}' --max-time 5 --noproxy '*' \
    "http://127.0.0.1:$http_port/metrics") || code=000
  if [[ $code == 000 ]]; then
    tail -n 20 "$work_dir/pgsidecar.log" >&2
    die "nothing answers HTTP on 127.0.0.1:$http_port, the [http] port of the configuration"
  fi
  [[ $code == 200 ]] || die "GET /metrics answered $code"
  count=$(grep -c '^pgsidecar_' "$work_dir/metrics.txt" || true)
  ((count > 0)) || die "GET /metrics has no pgsidecar_ series"
  log "GET /metrics: 200, $count pgsidecar_ samples"
  mapfile -t health_cmd < <(health_command "$http_port" healthz)
  run_in "${health_cmd[@]:1}" || die "the HEALTHCHECK command failed against pgsidecar: ${health_cmd[*]:1}"
  log "HEALTHCHECK against pgsidecar (${health_cmd[*]:1}): ok"
  http_status=checked
fi

step "SIGTERM: drain and exit 0"
sidecar_pid=
for pid in $(descendants "$runner_pid"); do
  if [[ $(cat /proc/"$pid"/comm 2>/dev/null) == pgsidecar ]]; then
    sidecar_pid=$pid
  fi
done
[[ -n $sidecar_pid ]] || die "no pgsidecar process under buildah run (PID $runner_pid)"
kill -TERM "$sidecar_pid"
exit_status=
for ((i = 0; i < 100; i++)); do
  if ! kill -0 "$runner_pid" 2>/dev/null; then
    exit_status=0
    wait "$runner_pid" || exit_status=$?
    runner_pid=
    break
  fi
  sleep 0.1
done
[[ -n $exit_status ]] || die "pgsidecar still runs 10 s after SIGTERM (drain_timeout is 2 s)"
[[ $exit_status == 0 ]] || {
  tail -n 20 "$work_dir/pgsidecar.log" >&2
  die "pgsidecar exited $exit_status after SIGTERM"
}
log "exited 0 after SIGTERM"

print_timings
if [[ $http_status == skipped ]]; then
  printf '\ncontainer-test: PASSED, HTTP checks SKIPPED (PGSIDECAR_CONTAINER_SKIP_HTTP=1)\n'
else
  printf '\ncontainer-test: PASSED\n'
fi
