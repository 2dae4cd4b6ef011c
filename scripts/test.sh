#!/usr/bin/env bash
# Builds pgsidecar and runs every test:
#   1. scripts/install-deps.sh (a no-op when everything is installed)
#   2. build-asan/: Debug with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. build/: Release, so that build/pgsidecar exists
#   4. scripts/fuzz.sh 20 when clang is available (each fuzz target for 20 s)
#   5. scripts/container-test.sh: the container image built with podman and run in front
#      of a test cluster (skipped with PGSIDECAR_SKIP_CONTAINER_TEST=1)
#   6. scripts/pg-regress.sh: PostgreSQL's regression suite through build/pgsidecar in
#      session and transaction mode, each at least a floor of passed tests (skipped with
#      PGSIDECAR_SKIP_PG_REGRESS=1)
#   7. ctest in build-asan: unit tests, then integration tests against a real PostgreSQL
#      primary + replica that the ctest fixture `cluster` starts and stops
#   8. build-tsan/: Debug with ThreadSanitizer, only the proxy and the integration tests,
#      running the multi-worker cases (ctest tsan.multi_worker: a pool shared by the
#      workers, reloads, switchover, SCRAM key derivation on the thread pool); skipped
#      with PGSIDECAR_SKIP_TSAN=1
# Exits non-zero when any step fails; ctest's summary is the last thing printed.
# Ctrl-C or SIGTERM stops the test cluster too.
set -euo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
root=$(pwd)
jobs=${JOBS:-2}
cluster_dir=$root/build-asan/cluster
tsan_cluster_dir=$root/build-tsan/cluster

step() { printf '\n=== %s\n' "$*"; }

# shellcheck disable=SC2317  # called from the traps
cleanup() {
  local dir
  for dir in "$cluster_dir" "$tsan_cluster_dir"; do
    if [[ -e $dir ]]; then
      bash "$root/tests/support/cluster.sh" stop "$dir" || true
    fi
  done
}
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM
trap cleanup EXIT

step "dependencies"
bash scripts/install-deps.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [[ -f $root/tests/support/lsan.supp ]]; then
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/support/lsan.supp:print_suppressions=0}
fi

step "build-asan: Debug, AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPGSIDECAR_SANITIZE=ON
cmake --build build-asan -j "$jobs"

step "build: Release"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPGSIDECAR_TESTS=OFF
cmake --build build -j "$jobs" --target pgsidecar

fuzz_status=0
step "fuzzing"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "test.sh: clang++ not found; skipping fuzzing"
elif [[ ! -f scripts/fuzz.sh ]]; then
  echo "test.sh: scripts/fuzz.sh not found; skipping fuzzing"
else
  bash scripts/fuzz.sh 20 || fuzz_status=$?
  if ((fuzz_status != 0)); then
    echo "test.sh: FAILED: scripts/fuzz.sh exited with status $fuzz_status" >&2
  fi
fi

container_status=0
step "container image"
if [[ ${PGSIDECAR_SKIP_CONTAINER_TEST:-0} == 1 ]]; then
  echo "test.sh: PGSIDECAR_SKIP_CONTAINER_TEST=1: skipping scripts/container-test.sh"
else
  bash scripts/container-test.sh || container_status=$?
  if ((container_status != 0)); then
    echo "test.sh: FAILED: scripts/container-test.sh exited with status $container_status" >&2
  fi
fi

regress_status=0
step "pg_regress through pgsidecar"
if [[ ${PGSIDECAR_SKIP_PG_REGRESS:-0} == 1 ]]; then
  echo "test.sh: PGSIDECAR_SKIP_PG_REGRESS=1: skipping scripts/pg-regress.sh"
else
  # Floors below the counts of docs/pooling.md: some tests depend on which server
  # connection a client gets.
  MIN_PASSED_session=214 MIN_PASSED_transaction=209 bash scripts/pg-regress.sh build/pgsidecar || regress_status=$?
  if ((regress_status != 0)); then
    echo "test.sh: FAILED: scripts/pg-regress.sh exited with status $regress_status" >&2
  fi
fi

step "ctest (build-asan)"
ctest_status=0
ctest --test-dir build-asan --output-on-failure || ctest_status=$?

tsan_status=0
step "build-tsan: ThreadSanitizer, multi-worker tests"
if [[ ${PGSIDECAR_SKIP_TSAN:-0} == 1 ]]; then
  echo "test.sh: PGSIDECAR_SKIP_TSAN=1: skipping the ThreadSanitizer build"
else
  # halt_on_error: a race fails the proxy at once, and with it the test that drove it.
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  tsan_started=$SECONDS
  {
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPGSIDECAR_SANITIZE_THREAD=ON &&
      cmake --build build-tsan -j "$jobs" --target pgsidecar integration_tests &&
      ctest --test-dir build-tsan --output-on-failure -R '^(cluster\.start|cluster\.stop|tsan\.multi_worker)$'
  } || tsan_status=$?
  echo "test.sh: ThreadSanitizer step took $((SECONDS - tsan_started)) s"
  if ((tsan_status != 0)); then
    echo "test.sh: FAILED: the ThreadSanitizer step exited with status $tsan_status" >&2
  fi
fi

if ((ctest_status != 0)); then
  exit "$ctest_status"
fi
if ((tsan_status != 0)); then
  exit "$tsan_status"
fi
if ((container_status != 0)); then
  exit "$container_status"
fi
if ((regress_status != 0)); then
  exit "$regress_status"
fi
exit "$fuzz_status"
