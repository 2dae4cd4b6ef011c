#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what pgsidecar needs, build it, start a
# demo PostgreSQL 15 primary + streaming replica on free loopback ports, and run pgsidecar
# in front of them in the foreground, printing the DATABASE_URL to use.
# Ctrl-C (or SIGTERM) stops pgsidecar and the demo servers.
set -euo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
root=$(pwd)
port=${PGSIDECAR_PORT:-6432}
state=$(mktemp -d /tmp/pgsidecar-demo.XXXXXX)
cluster_dir=$state/cluster

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${JOBS:-2}" --target pgsidecar

proxy_pid=
cleanup() {
  if [[ -n $proxy_pid ]] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  bash "$root/tests/support/cluster.sh" stop "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash tests/support/cluster.sh start "$cluster_dir"
# shellcheck disable=SC1091
source "$cluster_dir/env"

cat >"$state/pgsidecar.toml" <<TOML
[listen]
address = "127.0.0.1"
port = $port
unix_socket_dir = "$state"

[admin]
users = ["admin"]

[[users]]
name = "$APP_USER"
password = "\${APP_PASSWORD}"

[[users]]
name = "admin"
password = "\${APP_PASSWORD}"

[pool_defaults]
mode = "transaction"
size = 20

[[databases]]
name = "app"
primary = "postgres://127.0.0.1:$PRIMARY_PORT/$DATABASE"
replicas = ["postgres://127.0.0.1:$REPLICA_PORT/$DATABASE"]
TOML

export APP_PASSWORD
build/pgsidecar --config "$state/pgsidecar.toml" --check
build/pgsidecar --config "$state/pgsidecar.toml" &
proxy_pid=$!
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done

cat <<MSG

pgsidecar is running in front of a demo primary (127.0.0.1:$PRIMARY_PORT) and replica (127.0.0.1:$REPLICA_PORT).

  DATABASE_URL=postgres://$APP_USER:$APP_PASSWORD@127.0.0.1:$port/app

  try:  psql "postgres://$APP_USER:$APP_PASSWORD@127.0.0.1:$port/app" -c 'select now()'
  config: $state/pgsidecar.toml

Press Ctrl-C to stop pgsidecar and the demo servers.
MSG
wait "$proxy_pid"
