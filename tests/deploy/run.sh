#!/usr/bin/env bash
# Offline checks of the deployment files (ctest: unit.deploy). Needs the built binary,
# promtool (Debian package prometheus), node and tests/deploy/node/node_modules (npm ci;
# scripts/install-deps.sh installs all of them); no server, cluster or network.
#
#   tests/deploy/run.sh PGSIDECAR_BINARY SOURCE_DIR [PROMTOOL]
#
#   manifests    deploy/kubernetes against the Kubernetes API schemas, and the example's
#                wiring (validate_manifests.mjs); broken copies must fail
#                (validate_manifests.test.mjs)
#   config       the ConfigMap's pgsidecar.toml passes `pgsidecar --check` with the
#                variables the Secret provides, and fails without them
#   rules        promtool check rules + promtool test rules on deploy/prometheus
#   dashboard    deploy/grafana/pgsidecar.json: JSON, layout, queries (parsed by promtool),
#                metric names against docs/operations.md
#   scrape       prometheus-scrape.yaml through promtool check config
#   image        the Dockerfile's HEALTHCHECK and EXPOSE agree with config/example.toml
set -u
binary=$1
source_dir=$2
promtool=${3:-promtool}
deploy=$source_dir/deploy
here=$source_dir/tests/deploy

passed=0
failed=0
check() {  # check NAME COMMAND...: run COMMAND, count it, show its output on failure
  local name=$1 out status
  shift
  out=$("$@" 2>&1)
  status=$?
  if ((status == 0)); then
    passed=$((passed + 1))
    echo "PASS $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name (exit $status)"
    sed 's/^/    /' <<<"$out"
  fi
}

for tool in node "$promtool"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool not found: run scripts/install-deps.sh" >&2
    exit 1
  fi
done
if [[ ! -x $binary ]]; then
  echo "FAIL: $binary is not an executable pgsidecar" >&2
  exit 1
fi

work=$(mktemp -d /tmp/pgsidecar-deploy-test.XXXXXX)
trap 'rm -rf -- "$work"' EXIT

# --- manifests ---------------------------------------------------------------------------------
check "manifests: deploy/kubernetes valid against the Kubernetes schemas" \
  node "$here/validate_manifests.mjs" "$deploy/kubernetes" --config-out "$work/pgsidecar.toml"
check "manifests: broken copies fail (node --test)" \
  node --test "$here/validate_manifests.test.mjs"

# --- the ConfigMap's configuration ---------------------------------------------------------------
config_check() {
  [[ -s $work/pgsidecar.toml ]] || { echo "no pgsidecar.toml extracted from the ConfigMap"; return 1; }
  APP_PASSWORD=placeholder ADMIN_PASSWORD=placeholder "$binary" --config "$work/pgsidecar.toml" --check
}
config_needs_secrets() {
  local out
  if out=$(env -u APP_PASSWORD -u ADMIN_PASSWORD "$binary" --config "$work/pgsidecar.toml" --check 2>&1); then
    echo "--check passed without APP_PASSWORD and ADMIN_PASSWORD: $out"
    return 1
  fi
  grep -q 'APP_PASSWORD' <<<"$out" || { echo "no error names APP_PASSWORD: $out"; return 1; }
}
check "config: ConfigMap pgsidecar.toml passes --check" config_check
check "config: --check fails without the Secret's variables" config_needs_secrets

# --- Prometheus rules ------------------------------------------------------------------------------
check "rules: promtool check rules alerts.yml" "$promtool" check rules "$deploy/prometheus/alerts.yml"
check "rules: promtool test rules alerts_test.yml" "$promtool" test rules "$deploy/prometheus/alerts_test.yml"

# --- dashboard and scrape configuration --------------------------------------------------------
check "dashboard, alert metric names, scrape config" node "$here/check_observability.mjs" "$source_dir" "$work"
check "dashboard: queries parse (promtool check rules)" "$promtool" check rules "$work/dashboard_rules.yml"
check "scrape: promtool check config prometheus-scrape.yaml" "$promtool" check config "$work/prometheus-scrape.yml"

# --- image ------------------------------------------------------------------------------------------
image_agrees() {
  local http_port
  http_port=$(awk '/^\[/ { s = $1 } s == "[http]" && $1 == "port" { print $3 }' "$source_dir/config/example.toml")
  [[ -n $http_port ]] || { echo "config/example.toml has no [http] port"; return 1; }
  grep -q "^HEALTHCHECK .*" "$source_dir/Dockerfile" || { echo "Dockerfile has no HEALTHCHECK"; return 1; }
  grep -A1 '^HEALTHCHECK' "$source_dir/Dockerfile" | grep -q "127.0.0.1:$http_port/healthz" ||
    { echo "the HEALTHCHECK does not fetch 127.0.0.1:$http_port/healthz ([http] port of config/example.toml)"; return 1; }
  grep -Eq "^EXPOSE 6432 $http_port\$" "$source_dir/Dockerfile" || { echo "Dockerfile: expected EXPOSE 6432 $http_port"; return 1; }
  grep -q '^ENTRYPOINT \["/usr/local/bin/pgsidecar", "--config", "/etc/pgsidecar/pgsidecar.toml"\]' "$source_dir/Dockerfile" ||
    { echo "Dockerfile: unexpected ENTRYPOINT"; return 1; }
}
check "image: Dockerfile HEALTHCHECK, EXPOSE and ENTRYPOINT match the default config" image_agrees

echo "deploy: $passed passed, $failed failed"
((failed == 0))
