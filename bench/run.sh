#!/usr/bin/env bash
# Runs the whole benchmark in one go (about 16 minutes on 2 cores, plus the build when the
# binary is missing):
#   - builds the Release pgsidecar when $PGSIDECAR_BIN (default build/pgsidecar) is missing
#   - starts a PostgreSQL 15 primary with tests/support/cluster.sh (always stopped again)
#   - pgbench select-only and TPC-B-like, -M simple / extended / prepared, at 1, 50 and
#     500 clients: direct, through pgsidecar and through PgBouncer (pool of 20 each)
#   - over a slow link (a delay relay between PostgreSQL and each target, 1 and 5 ms each
#     way): TPC-B-like and an ORM-shaped transaction, 1 and 20 clients, latency and
#     round trips per transaction, with the ratios to direct
#   - 5,000 idle authenticated clients through each proxy: memory per client
#   - a client reading a 1 GB result slowly through each proxy: the proxy's peak RSS
#   - TLS points: TLS on the client side, then on the server side, through each proxy with
#     the same certificates, and memory per idle TLS client (bench/lib/tls_points.py)
# Prints markdown tables at the end; CSV files and PNG charts go to bench/results/<UTC time>/.
#
#   bench/run.sh [--duration SECONDS] [--clients 1,50,500] [--workloads select-only,tpcb-like]
#                [--modes simple,extended,prepared] [--idle-clients N] [--slow-seconds S]
#                [--link 1,5] [--link-clients 1,20] [--link-duration S]
#                [--skip points,link,idle,slow,tls] [--tls-only] [--tls-clients 1,50]
#                [--baseline EARLIER_PGSIDECAR_BINARY] [--link-scale N]
#
# Environment: PGSIDECAR_BIN (the binary to test), FAULT_RELAY_BIN (the delay relay;
# default BUILD_DIR/tests/fault_relay), BUILD_DIR (where to build them when
# missing; default build), REBUILD=1 (run make even when the binary exists), JOBS (make -j;
# default 2).
set -euo pipefail

root=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
binary=${PGSIDECAR_BIN:-$build_dir/pgsidecar}
relay=${FAULT_RELAY_BIN:-$build_dir/tests/fault_relay}
python=/usr/bin/python3

die() { echo "bench/run.sh: $*" >&2; exit 1; }

for tool in pgbench pgbouncer cmake make openssl; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
"$python" -c 'import psycopg2' 2>/dev/null ||
  die "$python cannot import psycopg2 (apt-get install python3-psycopg2)"

if [[ ! -x $binary || ${REBUILD:-0} == 1 ]]; then
  echo "bench/run.sh: building the Release binary in $build_dir"
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  make -C "$build_dir" -j "${JOBS:-2}" pgsidecar >/dev/null
  [[ -x $binary ]] || die "the build did not produce $binary"
fi
if [[ ! -x $relay ]]; then
  echo "bench/run.sh: building the delay relay (fault_relay) in $build_dir"
  # It is a test-support program: its target exists only with the tests configured.
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPGSIDECAR_TESTS=ON >/dev/null
  make -C "$build_dir" -j "${JOBS:-2}" fault_relay >/dev/null
  [[ -x $relay ]] || die "the build did not produce $relay"
fi
"$python" -c 'import matplotlib' 2>/dev/null ||
  echo "bench/run.sh: warning: no matplotlib (apt-get install python3-matplotlib): no charts" >&2
binary=$(realpath -- "$binary")
echo "bench/run.sh: testing $binary (built $(date -u -r "$binary" '+%Y-%m-%d %H:%M UTC'))"

# 5,000 idle clients hold 5,000 sockets in the client and in the proxy (and PgBouncer is
# configured for max_client_conn = 6000); every child inherits this limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 8000)); then
  echo "bench/run.sh: warning: only $(ulimit -n) file descriptors per process;" \
    "the idle-clients test needs about 6100" >&2
fi

workdir=$(mktemp -d /tmp/pgsidecar-bench.XXXXXX)
chmod 755 "$workdir"  # the servers and PgBouncer run as an unprivileged user when we are root
cluster_dir=$workdir/cluster
results_dir=$root/bench/results/$(date -u +%Y%m%d-%H%M%S)

bench_pid=
# shellcheck disable=SC2317  # called from the traps
cleanup() {
  local pid dir i
  # The orchestrator stops its proxies and pgbench itself on SIGTERM; give it 20 s.
  if [[ -n $bench_pid ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      kill -0 "$bench_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$bench_pid" 2>/dev/null || true
  fi
  # Proxies left behind by an interrupted run: each line is "PID DIR"; a PID is only
  # signalled while its command line still names that run's directory.
  if [[ -f $workdir/proxy-pids ]]; then
    while read -r pid dir; do
      if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$workdir/proxy-pids"
  fi
  bash "$root/tests/support/cluster.sh" stop "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf -- "$workdir"
}
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
trap cleanup EXIT

echo "bench/run.sh: starting the PostgreSQL cluster in $cluster_dir"
bash "$root/tests/support/cluster.sh" start "$cluster_dir"

# In the background, so that the traps run at once on Ctrl-C or SIGTERM rather than after
# the orchestrator has finished (bash defers traps while a foreground command runs).
"$python" "$root/bench/lib/bench.py" --cluster-dir "$cluster_dir" --workdir "$workdir" \
  --results-dir "$results_dir" --pgsidecar "$binary" --fault-relay "$(realpath -- "$relay")" "$@" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=
exit "$status"
