#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/*_fuzz.cpp) in build-fuzz with clang,
# ASan and UBSan, then runs each for N seconds from a small seed corpus.
#   usage: scripts/fuzz.sh [seconds-per-target]    (default 30)
# Exits non-zero if any target crashes; the crashing input is kept under
# build-fuzz/fuzz-artifacts/<target>/ and can be replayed with: build-fuzz/tests/fuzz/<target> <file>
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
python=/usr/bin/python3

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPGSIDECAR_FUZZ=ON -DPGSIDECAR_SANITIZE=ON >"$build.cmake.log" 2>&1 || {
  cat "$build.cmake.log" >&2
  exit 1
}
rm -f "$build.cmake.log"
make -C "$build" -j2 fuzz_targets

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seeds: a few well-formed inputs per target, so the fuzzer starts from real messages.
"$python" - "$work" "$root" <<'PY'
import os, struct, sys

work = sys.argv[1]
root = sys.argv[2]

def msg(tag, body):
    return tag.encode() + struct.pack("!i", len(body) + 4) + body

def cstr(s):
    return s.encode() + b"\0"

def untyped(body):
    return struct.pack("!i", len(body) + 4) + body

def write(target, name, data):
    d = os.path.join(work, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# framer_fuzz: Byte1(max-length selector) Byte1(chunk size) then messages.
prefix = b"\xff\x03"
write("framer_fuzz", "query", prefix + msg("Q", cstr("select 1")))
write("framer_fuzz", "extended", prefix
      + msg("P", cstr("s1") + cstr("select $1") + struct.pack("!hi", 1, 23))
      + msg("B", cstr("") + cstr("s1") + struct.pack("!hhi", 0, 1, 1) + b"7" + struct.pack("!h", 0))
      + msg("D", b"P" + cstr("")) + msg("E", cstr("") + struct.pack("!i", 0))
      + msg("C", b"S" + cstr("s1")) + msg("S", b""))
write("framer_fuzz", "auth", prefix + msg("p", cstr("secret"))
      + msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", 5) + b"n,,n=")
      + msg("p", b"c=biws,r=abc,p=xyz"))
write("framer_fuzz", "greeting", prefix
      + msg("R", struct.pack("!i", 0))
      + msg("R", struct.pack("!i", 10) + cstr("SCRAM-SHA-256") + b"\0")
      + msg("R", struct.pack("!i", 5) + b"salt")
      + msg("S", cstr("server_version") + cstr("15.4"))
      + msg("K", struct.pack("!ii", 1234, 5678))
      + msg("v", struct.pack("!ii", 0, 1) + cstr("_pq_.x"))
      + msg("Z", b"I"))
write("framer_fuzz", "results", prefix
      + msg("T", struct.pack("!h", 1) + cstr("c") + struct.pack("!ihihih", 0, 0, 25, -1, -1, 0))
      + msg("D", struct.pack("!hi", 2, 1) + b"a" + struct.pack("!i", -1))
      + msg("C", cstr("SELECT 1"))
      + msg("E", b"SERROR\0VERROR\0C42601\0Msyntax error\0P8\0\0")
      + msg("N", b"SWARNING\0VWARNING\0C01000\0Mcareful\0Hhint\0\0")
      + msg("Z", b"T"))
write("framer_fuzz", "bad_length", prefix + b"Q\0\0\0\x03")

# startup_fuzz: startup-phase packets.
v3 = struct.pack("!i", 196608)
write("startup_fuzz", "startup", untyped(v3 + cstr("user") + cstr("app") + cstr("database") + cstr("db")
                                         + cstr("application_name") + cstr("psql") + b"\0"))
write("startup_fuzz", "options", untyped(v3 + cstr("user") + cstr("u")
                                         + cstr("options") + cstr("-c a=b --c-d=e -c x=y\\ z -B 8 -ic q=1") + b"\0"))
write("startup_fuzz", "ssl_then_startup", untyped(struct.pack("!i", 80877103)) + untyped(v3 + cstr("user") + cstr("u") + b"\0"))
write("startup_fuzz", "gssenc", untyped(struct.pack("!i", 80877104)))
write("startup_fuzz", "cancel", untyped(struct.pack("!iii", 80877102, 42, 7)))
write("startup_fuzz", "v3_1", untyped(struct.pack("!i", 196609) + cstr("user") + cstr("u") + cstr("_pq_.x") + cstr("1") + b"\0"))
write("startup_fuzz", "v2", untyped(struct.pack("!i", 131072) + cstr("user") + cstr("u") + b"\0"))

# config_fuzz: TOML files.
write("config_fuzz", "example", open(os.path.join(root, "config", "example.toml"), "rb").read())
write("config_fuzz", "minimal", b'[[users]]\nname = "app"\npassword = "${SET}"\n[[databases]]\nname = "app"\n'
      b'primary = "postgres://127.0.0.1:5432/app"\nwrite_wait = "2s"\n')

# scram_server_fuzz: client-first-message NUL client-final-message NUL server-first-message.
proof = "p=" + "A" * 43 + "="
write("scram_server_fuzz", "exchange", b"n,,n=,r=abc\0c=biws,r=abcSERVERNONCE," + proof.encode()
      + b"\0r=fuzznonceXYZ,s=c2FsdHNhbHQ=,i=16")
write("scram_server_fuzz", "extensions", b"y,,n=user,r=abc,x=ext\0c=eSws,r=abcSERVERNONCE,x=1," + proof.encode()
      + b"\0r=fuzznonce1,s=QUJD,i=4096,e=1")
write("scram_server_fuzz", "refused", b"p=tls-server-end-point,,n=,r=x\0c=biws\0m=ext,r=fuzznonce2,s=QUJD,i=99999999")

# classify_fuzz: SQL text.
for i, sql in enumerate([b"SELECT * FROM t WHERE a = $1 FOR UPDATE", b"WITH x AS (DELETE FROM t RETURNING *) SELECT 1",
                         b"BEGIN READ ONLY; SELECT nextval('s'); COMMIT", b"EXPLAIN ANALYZE SELECT 1",
                         b"SET default_transaction_read_only = on"]):
    write("classify_fuzz", "sql%d" % i, sql)
PY

failed=()
for source in "$root"/tests/fuzz/*_fuzz.cpp; do
  name="$(basename "$source" .cpp)"
  binary="$build/tests/fuzz/$name"
  corpus="$work/$name"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  echo "== $name: ${seconds}s"
  if "$binary" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$work/$name.log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|Done [0-9]+ runs" "$work/$name.log" || true
  else
    echo "!! $name crashed; input saved under $artifacts" >&2
    tail -n 60 "$work/$name.log" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing clean"
