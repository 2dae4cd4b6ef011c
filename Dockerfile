# pgsidecar container image: the Release binary on debian:bookworm-slim, its runtime
# libraries, a default configuration and nothing else. docs/operations.md ("Container
# image") says what is in it and how to run it.
#
#   docker build -t pgsidecar .                   # or: podman build --format docker -t pgsidecar .
#   docker run -e APP_PASSWORD=... -v $PWD/pgsidecar.toml:/etc/pgsidecar/pgsidecar.toml:ro \
#     -p 6432:6432 -p 9930:9930 pgsidecar
#
# podman's default image format (OCI) has no HEALTHCHECK: build with --format docker to
# keep it. scripts/container-test.sh builds and runs this image against the test cluster.

# ---- build: compilers and -dev packages; the test dependencies are not needed ----------
FROM debian:bookworm-slim AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libuv1-dev libpq-dev libssl-dev libtomlplusplus-dev libpg-query-dev \
      libsimdjson-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the pgsidecar target compiles, so that a change to docs/ or tests/ reuses
# the build layer.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY protocol/ protocol/
COPY config/ config/
COPY sql/ sql/
COPY proxy/ proxy/

# Parallel compile jobs; empty = one per core (scripts/container-test.sh passes 1).
ARG JOBS=
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPGSIDECAR_TESTS=OFF \
 && cmake --build build --target pgsidecar -j "${JOBS:-$(nproc)}"

# The default configuration is config/example.toml with [listen] and [http] on every
# address (a container's loopback is its own). It must stay valid: --check it here, with
# placeholder values for the ${VAR}s it reads.
RUN mkdir -p /out \
 && awk '/^\[/ { section = $1 }; \
         (section == "[listen]" || section == "[http]") && /^address = "127\.0\.0\.1"/ \
           { sub(/"127\.0\.0\.1"/, "\"0.0.0.0\"  "); sub(/ +$/, "") }; \
         { print }' config/example.toml >/out/pgsidecar.toml \
 && test "$(grep -c '^address = "0\.0\.0\.0"' /out/pgsidecar.toml)" -eq 2 \
 && APP_PASSWORD=placeholder ADMIN_PASSWORD=placeholder SESSIONS_PASSWORD=placeholder \
      build/pgsidecar --config /out/pgsidecar.toml --check

# ---- runtime: the shared libraries the binary links, and the binary ---------------------
FROM debian:bookworm-slim

# The Debian packages of every library the binary links (objdump -p: NEEDED) that
# bookworm-slim lacks; their own dependencies (Kerberos, LDAP, GnuTLS for libpq) come
# with them. libmicrohttpd12 serves [http] (/metrics, /healthz, /readyz).
#
# busybox is for HEALTHCHECK only: its wget (0.8 MB, linked against libc alone, kept
# with Debian's security updates) fetches /healthz and exits non-zero on any status but
# 2xx. The alternatives are worse: curl or GNU wget bring TLS and IDN libraries that
# nothing else here uses; `pgsidecar --check` only re-reads the configuration and says
# nothing about a process that is wedged; bash's /dev/tcp would mean parsing HTTP by hand.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libuv1 libpq5 libssl3 libtomlplusplus3 libpg-query1504.0 libsimdjson14 \
      libmicrohttpd12 busybox \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 pgsidecar \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin pgsidecar

COPY --from=build /src/build/pgsidecar /usr/local/bin/pgsidecar
# Root-owned and world-readable: it holds ${VAR} references, never the secrets.
COPY --from=build /out/pgsidecar.toml /etc/pgsidecar/pgsidecar.toml

# Fail the build, not the first start, when a library is missing.
RUN if ldd /usr/local/bin/pgsidecar | grep 'not found'; then exit 1; fi \
 && /usr/local/bin/pgsidecar --version

USER 10001:10001
# 6432: PostgreSQL clients ([listen] port). 9930: /metrics, /healthz, /readyz ([http] port).
EXPOSE 6432 9930
# pgsidecar is PID 1 and handles SIGTERM itself: /readyz fails, clients are drained
# (drain_timeout), then it exits 0. It starts no child processes, so needs no init.
STOPSIGNAL SIGTERM
# /healthz answers 200 while the process and its event loops run, whatever the databases
# do. -Y off: never through an http_proxy from the environment. No -T: busybox 1.35's
# wget crashes with it (SIGSEGV); --timeout bounds the check instead. The port is the
# default configuration's; a configuration with another [http] port needs --health-cmd
# (docker run) or its own HEALTHCHECK. Kubernetes ignores HEALTHCHECK and uses its probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/bin/busybox", "wget", "-q", "-Y", "off", "-O", "/dev/null", "http://127.0.0.1:9930/healthz"]

ENTRYPOINT ["/usr/local/bin/pgsidecar", "--config", "/etc/pgsidecar/pgsidecar.toml"]

LABEL org.opencontainers.image.title="pgsidecar" \
      org.opencontainers.image.description="PostgreSQL connection pooler and failover proxy, run as a sidecar"
