#!/usr/bin/env bash
# `pgsidecar --check` as a user runs it: a broken file names every problem with its key
# path and line:column and exits non-zero; the shipped example is valid and exits 0.
set -u
binary=$1
source_dir=$2
status=0

fail() {
  echo "FAIL: $*" >&2
  status=1
}

out=$("$binary" --config "$source_dir/tests/unit/config/broken.toml" --check 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "--check on broken.toml exited 0"
for expected in \
  'listen.port (line 5, col 8): expected an integer' \
  'pool_defaults.max_idle (line 9, col 1): unknown key' \
  'pool_defaults.query_wait_timeout (line 10, col 22): invalid duration' \
  'databases[0].primary (line 19, col 11): expected a postgres:// or postgresql:// URL'; do
  grep -qF -- "$expected" <<<"$out" || fail "missing: $expected"
done

out=$(APP_PASSWORD=x ADMIN_PASSWORD=x SESSIONS_PASSWORD=x "$binary" --config "$source_dir/config/example.toml" --check 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "--check on config/example.toml exited $rc"
grep -q "configuration is valid" <<<"$out" || fail "no 'configuration is valid' for the example"

# An admin user that would log in with trust: the console open to anyone over TCP.
trust_admin=$(mktemp)
trap 'rm -f "$trust_admin"' EXIT
cat >"$trust_admin" <<'TOML'
[admin]
users = ["ops"]

[[users]]
name = "ops"
auth_method = "trust"

[[databases]]
name = "app"
primary = "postgres://db:5432/app"
TOML
out=$("$binary" --config "$trust_admin" --check 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "--check accepted an admin user with trust"
grep -qF 'admin.users[0] (line 2, col 10): admin user "ops" would log in with trust' <<<"$out" ||
  fail "missing: the admin trust problem"

"$binary" --version | grep -q '^pgsidecar [0-9]' || fail "--version"
"$binary" --help | grep -q -- '--check' || fail "--help does not mention --check"
"$binary" --no-such-option >/dev/null 2>&1 && fail "an unknown option exited 0"
exit "$status"
