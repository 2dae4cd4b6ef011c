#!/usr/bin/env bash
# Installs what pgsidecar needs to build and test on Debian 12: compilers, libraries,
# PostgreSQL 15 (server binaries for the test cluster), PgBouncer and matplotlib (benchmarks
# and their charts), promtool
# (package prometheus: the unit tests lint the metrics exposition and check deploy/'s
# alert rules with it; its server is never used), the client libraries the client tests
# use, and the npm packages of the client and deployment tests. Idempotent: when
# everything is present it touches nothing and takes well under a second.
#
# The tests never use Debian's own PostgreSQL cluster ("main", port 5432) that the
# postgresql package may create and start: they run their own servers from
# /usr/lib/postgresql/15/bin in a temporary directory. This script leaves "main" alone.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang
  libuv1-dev libpq-dev libssl-dev libtomlplusplus-dev doctest-dev libpg-query-dev libsimdjson-dev
  libmicrohttpd-dev prometheus
  postgresql-15 postgresql-client-15 pgbouncer
  python3 python3-psycopg python3-psycopg2 python3-asyncpg python3-matplotlib
  libpostgresql-jdbc-java default-jdk-headless
  nodejs npm
)

# A package counts as present when dpkg has it installed, or when the command it exists
# for is already on PATH from elsewhere (e.g. Node.js with its bundled npm from another
# repository, whose nodejs package conflicts with Debian's npm).
declare -A satisfied_by_command=(
  [default-jdk-headless]=javac
  [nodejs]=node
  [npm]=npm
)

installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for pkg in "${packages[@]}"; do
  if installed "$pkg"; then
    continue
  fi
  cmd=${satisfied_by_command[$pkg]:-}
  if [[ -n $cmd ]] && command -v "$cmd" >/dev/null 2>&1; then
    continue
  fi
  missing+=("$pkg")
done

# npm packages, from the npm registry at the versions each package-lock.json pins:
# node-postgres for the client tests (tests/clients/node), and the Kubernetes schema
# models, YAML and TOML readers of the deployment checks (tests/deploy/node). A directory
# is skipped while its node_modules is newer than its lock file.
install_node_modules() {
  local root dir stamp
  root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
  for dir in "$root/tests/clients/node" "$root/tests/deploy/node"; do
    stamp=$dir/node_modules/.pgsidecar-installed
    if [[ -f $stamp && $stamp -nt $dir/package-lock.json && $stamp -nt $dir/package.json ]]; then
      continue
    fi
    echo "install-deps: npm ci in $dir"
    (cd -- "$dir" && npm ci --no-audit --no-fund) || {
      echo "install-deps: npm ci failed in $dir (is the npm registry reachable?)" >&2
      exit 1
    }
    touch -- "$stamp"
  done
}

if ((${#missing[@]} == 0)); then
  install_node_modules
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-deps: not root and no sudo: install as root: apt-get install ${missing[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
apt_get=("${sudo[@]}" apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${apt_get[@]}" update
"${apt_get[@]}" install --no-install-recommends "${missing[@]}" </dev/null

still_missing=()
for pkg in "${missing[@]}"; do
  installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} > 0)); then
  echo "install-deps: still not installed: ${still_missing[*]}" >&2
  exit 1
fi
install_node_modules
echo "install-deps: done"
