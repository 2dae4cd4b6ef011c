#!/usr/bin/env bash
# PostgreSQL's own regression suite (src/test/regress, parallel_schedule: 217 tests)
# through pgsidecar, against a test cluster of its own (tests/support/cluster.sh).
#
#   scripts/pg-regress.sh [PGSIDECAR_BINARY] [MODE...]
#
# MODE: session and/or transaction (default: both). For each mode it starts a proxy in
# front of the cluster's primary (pool size 30: a parallel group of the schedule has up
# to 20 clients), runs pg_regress through it as the cluster's superuser, and prints
# "MODE: N passed, M failed of T" and the names of the failed tests; their diffs stay in
# OUT_DIR/MODE/regression.diffs. Exits non-zero when something could not run
# or a floor (below) is not reached.
#
# The test sources come from Debian's postgresql-15 source package at the version of
# the installed server, and regress.so is built from them with the headers of the
# matching postgresql-server-dev-15 package; both are fetched with apt-get into
# CACHE_DIR (default ~/.cache/pgsidecar/pg-regress) through a private list of Debian
# source repositories (bookworm, bookworm-updates, bookworm-security): the system's
# apt configuration and installed packages are left alone.
#
# Environment: CACHE_DIR, OUT_DIR (default a new /tmp/pgsidecar-regress.XXXXXX), PG_BIN
# (default /usr/lib/postgresql/15/bin); MIN_PASSED_<mode> (e.g. MIN_PASSED_session=209):
# exit non-zero when fewer tests of that mode pass.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
binary=${1:-$root/build/pgsidecar}
shift || true
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(session transaction)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
CACHE_DIR=${CACHE_DIR:-${HOME:-/root}/.cache/pgsidecar/pg-regress}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/pgsidecar-regress.XXXXXX)}
pg_regress=$(dirname -- "$("$PG_BIN/pg_config" --pgxs)")/../test/regress/pg_regress
pkglibdir=$("$PG_BIN/pg_config" --pkglibdir)

die() {
  echo "pg-regress.sh: $*" >&2
  exit 1
}
[[ -x $binary ]] || die "no pgsidecar binary at $binary (give its path as the first argument)"
[[ -x $pg_regress ]] || die "no pg_regress at $pg_regress (package postgresql-15)"

# ---- sources and regress.so -------------------------------------------------------------

version=$(dpkg-query -W -f='${Version}' postgresql-15)
src=$CACHE_DIR/$version/src/test/regress
lib=$CACHE_DIR/$version/lib
if [[ ! -f $lib/regress.so ]]; then
  work=$CACHE_DIR/$version.fetch
  rm -rf -- "$work" "$CACHE_DIR/$version"
  mkdir -p -- "$work/lists/partial" "$work/src" "$work/dev"
  cat >"$work/sources.list" <<'EOF'
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  mkdir -p -- "$work/cache/archives/partial"
  apt-get "${apt_opts[@]}" -qq update
  (cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "postgresql-15=$version")
  (cd "$work/dev" && apt-get "${apt_opts[@]}" -qq download "postgresql-server-dev-15=$version")
  dpkg-source --no-check -x "$work"/src/postgresql-15_*.dsc "$work/pg" >/dev/null
  dpkg-deb -x "$work"/dev/postgresql-server-dev-15_*.deb "$work/dev/root"
  mkdir -p -- "$CACHE_DIR/$version/src/test" "$CACHE_DIR/$version/lib"
  cp -a -- "$work/pg/src/test/regress" "$CACHE_DIR/$version/src/test/"
  gcc -O2 -fPIC -shared -I "$work/dev/root/usr/include/postgresql/15/server" \
    -I "$work/dev/root/usr/include/postgresql/internal" -o "$lib/regress.so" "$src/regress.c"
  rm -rf -- "$work"
fi
# A copy the server can read (it runs as another user when this runs as root, and the
# cache may be in a home directory it cannot enter). The tests load regress.so, autoinc.so
# and refint.so from one directory.
mkdir -p -- "$OUT_DIR"
rm -rf -- "$OUT_DIR/regress" "$OUT_DIR/lib"
cp -a -- "$src" "$OUT_DIR/regress"
cp -a -- "$lib" "$OUT_DIR/lib"
src=$OUT_DIR/regress
lib=$OUT_DIR/lib
for so in autoinc refint; do ln -sf -- "$pkglibdir/$so.so" "$lib/$so.so"; done
chmod -R a+rX -- "$OUT_DIR"

# ---- cluster and proxy ------------------------------------------------------------------

state=$OUT_DIR/cluster
proxy_pid=
cleanup() {
  [[ -z $proxy_pid ]] || kill "$proxy_pid" 2>/dev/null || true
  bash "$root/tests/support/cluster.sh" stop "$state" >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash "$root/tests/support/cluster.sh" start "$state" >/dev/null
# shellcheck source=/dev/null
source "$state/env"
# The replica's hot_standby_feedback holds back the primary's vacuum horizon by up to a
# status interval, so the suite's VACUUM may leave pages not all-visible and plans that
# expect index-only scans (create_index) change, with or without pgsidecar. The suite
# expects a server of its own.
PGPASSWORD=$SUPERUSER_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$REPLICA_PORT" \
  -U "$SUPERUSER" -d postgres -c 'ALTER SYSTEM SET hot_standby_feedback = off' -c 'SELECT pg_reload_conf()' >/dev/null

free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 12001))
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  die "no free port"
}

# start_proxy MODE OUT: pgsidecar in MODE in front of the primary; sets port and proxy_pid.
start_proxy() {
  port=$(free_port)
  cat >"$2/pgsidecar.toml" <<EOF
[listen]
address = "127.0.0.1"
port = $port
workers = 2

[[users]]
name = "$SUPERUSER"
password = "$SUPERUSER_PASSWORD"

[pool_defaults]
mode = "$1"
size = 30
query_wait_timeout = "120s"

[[databases]]
name = "regression"
primary = "postgres://127.0.0.1:$PRIMARY_PORT/regression"
EOF
  "$binary" --config "$2/pgsidecar.toml" >"$2/pgsidecar.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  die "pgsidecar did not start: $(tail -n 5 "$2/pgsidecar.log")"
}

status=0
for mode in "${modes[@]}"; do
  out=$OUT_DIR/$mode
  rm -rf -- "$out"
  mkdir -p -- "$out/results"
  chmod a+rwx -- "$out" "$out/results"
  # A fresh database, made as pg_regress makes it, on the server itself: through
  # pgsidecar the proxy's health probe holds a connection to it.
  PGPASSWORD=$SUPERUSER_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PRIMARY_PORT" \
    -U "$SUPERUSER" -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regression WITH (FORCE);
CREATE DATABASE regression TEMPLATE = template0;
ALTER DATABASE regression SET lc_messages TO 'C';
ALTER DATABASE regression SET lc_monetary TO 'C';
ALTER DATABASE regression SET lc_numeric TO 'C';
ALTER DATABASE regression SET lc_time TO 'C';
ALTER DATABASE regression SET bytea_output TO 'hex';
ALTER DATABASE regression SET timezone_abbreviations TO 'Default';
-- The suite's expected plans assume PostgreSQL's default; the test cluster turns parallel
-- query off for the other tests' sake.
ALTER DATABASE regression SET max_parallel_workers_per_gather TO 2;
SQL
  port=$PRIMARY_PORT
  [[ $mode == direct ]] || start_proxy "$mode" "$out"
  started=$(date +%s)
  (cd "$out" && PGPASSWORD=$SUPERUSER_PASSWORD "$pg_regress" --host=127.0.0.1 --port="$port" \
    --user="$SUPERUSER" --bindir="$PG_BIN" --dlpath="$lib" --inputdir="$src" --outputdir="$out" \
    --schedule="$src/parallel_schedule" --max-connections=20 --use-existing >"$out/pg_regress.out" 2>&1) || true
  seconds=$(($(date +%s) - started))
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=
  fi
  passed=$(grep -cE '\.\.\. ok' "$out/pg_regress.out" || true)
  failed=$(grep -cE '\.\.\. FAILED' "$out/pg_regress.out" || true)
  total=$(grep -o 'test: .*' "$src/parallel_schedule" | wc -w)
  total=$((total - $(grep -c '^test:' "$src/parallel_schedule")))
  echo "$mode: $passed passed, $failed failed of $total (${seconds}s; diffs in $out)"
  grep -E '\.\.\. FAILED' "$out/pg_regress.out" | sed -E 's/^[^a-z_0-9]*(test )?([a-z_0-9]+) .*/  failed: \2/' || true
  [[ $((passed + failed)) -gt 0 ]] || { status=1; tail -n 20 "$out/pg_regress.out" >&2; }
  floor_var=MIN_PASSED_$mode
  if [[ -n ${!floor_var:-} ]] && ((passed < ${!floor_var})); then
    echo "pg-regress.sh: $mode: $passed passed, fewer than $floor_var=${!floor_var}" >&2
    status=1
  fi
done
exit "$status"
