#!/usr/bin/env bash
# Runs the PostgreSQL 15 primary + streaming-replication hot standby that the
# integration tests talk to, in a state directory of its own on free loopback ports.
#
#   cluster.sh start STATE_DIR      fresh primary + replica; writes STATE_DIR/env
#   cluster.sh stop STATE_DIR       stop both and remove STATE_DIR (idempotent)
#   cluster.sh status STATE_DIR     one line per node; exit 0 only when both run
#   cluster.sh env STATE_DIR        print STATE_DIR/env
#   cluster.sh {stop|kill|start|restart}-{primary|replica} STATE_DIR
#                                   stop = fast shutdown, kill = immediate (crash-like)
#   cluster.sh promote-replica STATE_DIR
#   cluster.sh reset STATE_DIR      back to the starting topology: primary up, replica a
#                                   streaming standby of it (re-cloned if it was promoted),
#                                   its WAL replay running (resumed if a test paused it)
#   cluster.sh start-green STATE_DIR
#                                   an independent second server ("green", for switchover
#                                   tests): its own initdb'd data directory (made on first
#                                   use, kept until stop), the app role and database as on
#                                   the primary; adds GREEN_PORT and GREEN_LOG to STATE_DIR/env
#   cluster.sh stop-green STATE_DIR fast shutdown of green; its data directory stays
#   cluster.sh start-tls STATE_DIR  an independent server with ssl = on, made on first use
#                                   like green: a test CA made with the openssl CLI, a server
#                                   certificate for localhost and 127.0.0.1, a client
#                                   certificate for the role certuser (hba: cert), a second CA that signed
#                                   none of them; the app role and database as on the primary;
#                                   plain connections allowed, except to the database
#                                   tlsonly (owned by app; hba: hostnossl reject). Adds TLS_PORT, TLS_DIR
#                                   (ca.crt, server.crt/key, client.crt/key, other-ca.crt)
#                                   and TLS_LOG to STATE_DIR/env
#
# PostgreSQL refuses to run as root, so as root the servers run as the system user
# pgsidecar-test (created on first use). Every wait is bounded; a failure names what
# went wrong and prints the tail of the server log.
set -euo pipefail

readonly PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
readonly RUN_USER=pgsidecar-test
readonly APP_USER=app APP_PASSWORD=app-secret DATABASE=app
readonly SUPERUSER=harness SUPERUSER_PASSWORD=harness-secret
readonly CERT_USER=certuser
readonly TLS_ONLY_DATABASE=tlsonly
readonly REPLICATION_USER=replicator REPLICATION_PASSWORD=replicator-secret
readonly SLOT=pgsidecar_replica
readonly SERVER_TIMEOUT=60   # seconds for a server to start, stop, promote or catch up
SCRIPT_PATH=$(realpath -- "${BASH_SOURCE[0]}")
readonly SCRIPT_PATH

usage() {
  sed -n '2,/^set -euo pipefail/p' "$SCRIPT_PATH" | sed -n 's/^# \{0,1\}//p' >&2
  exit 2
}

log() { echo "cluster.sh: $*" >&2; }

# die MESSAGE [LOG_FILE...]: report, show each server log's tail, exit non-zero.
die() {
  local message=$1
  shift
  log "error: $message"
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      echo "----- last lines of $f -----" >&2
      tail -n 40 -- "$f" >&2
      echo "-----" >&2
    fi
  done
  exit 1
}

[[ $# -eq 2 ]] || usage
readonly COMMAND=$1
STATE_DIR=$(realpath -m -- "$2")
readonly STATE_DIR
[[ $STATE_DIR != / ]] || die "refusing to use / as the state directory"
# pg_ctl warns when it cannot read the working directory (e.g. /root as another user).
cd /

[[ -x $PG_BIN/postgres ]] || die "PostgreSQL 15 not found in $PG_BIN: run scripts/install-deps.sh"

# RUN_DIR holds the data directories, sockets and logs. It is STATE_DIR/run, or a link
# from there to a directory under /tmp when the server user cannot reach STATE_DIR or a
# socket path there would pass the 107-byte limit of sun_path.
RUN_DIR=$STATE_DIR/run

is_root() { [[ $(id -u) -eq 0 ]]; }

# as_pg CMD...: run CMD as the user the servers run as.
as_pg() {
  # 9>&-: the postmaster must not inherit the lock descriptor (see take_lock).
  if is_root; then
    runuser -u "$RUN_USER" -- "$@" 9>&-
  else
    "$@" 9>&-
  fi
}

ensure_run_user() {
  is_root || return 0
  id -u "$RUN_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$RUN_USER" 2>/dev/null ||
    id -u "$RUN_USER" >/dev/null 2>&1 ||  # created meanwhile by a concurrent start
    die "could not create the system user $RUN_USER"
}

# Serialise commands on one state directory: ctest may run a disturbing test's
# cluster.sh call while another process is still stopping or starting a node. A flock
# lives as long as any process holds the descriptor, so as_pg closes it for children.
take_lock() {
  mkdir -p -- "$(dirname -- "$STATE_DIR")"
  exec 9>"$STATE_DIR.lock"
  flock -w 300 9 || die "timed out waiting for the lock $STATE_DIR.lock"
}

port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  # Local address is the 2nd column, "ADDR:PORT" in hex, in both files; any state counts
  # (a TIME_WAIT or connected client socket on that port still makes bind fail).
  awk -v p="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == p) found = 1 }
                   END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port [EXCLUDED...]: a random free port in 20000..32000, below the kernel's
# ephemeral range (32768+) so that no client socket can be holding it already.
pick_port() {
  local try port excluded
  for ((try = 0; try < 500; try++)); do
    port=$((20000 + RANDOM % 12001))
    for excluded in "$@"; do
      [[ $port -ne $excluded ]] || continue 2
    done
    port_in_use "$port" && continue
    echo "$port"
    return 0
  done
  die "no free port found in 20000..32000"
}

# is_postmaster PID DATA_DIR: true when PID is a live postgres whose command line names
# DATA_DIR. Guards every signal we send: a stale postmaster.pid from an earlier boot
# may name a PID that now belongs to an unrelated process.
is_postmaster() {
  local pid=$1 dir=$2 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *postgres* && $cmdline == *"$dir"* ]]
}

node_pid() {
  local dir=$1
  [[ -f $dir/postmaster.pid ]] || return 1
  head -n 1 -- "$dir/postmaster.pid" 2>/dev/null
}

node_running() {
  local dir=$1 pid
  pid=$(node_pid "$dir") || return 1
  is_postmaster "$pid" "$dir"
}

wait_gone() {
  local pid=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.1
  done
  return 1
}

# stop_node DATA_DIR MODE: MODE is fast or immediate. A fast stop that takes longer than
# 10 s becomes immediate; a postmaster that ignores that too is killed.
stop_node() {
  local dir=$1 mode=$2 pid
  node_running "$dir" || return 0
  pid=$(node_pid "$dir")
  if as_pg "$PG_BIN/pg_ctl" -D "$dir" -m "$mode" -t 10 -w stop >/dev/null 2>&1; then
    return 0
  fi
  if [[ $mode != immediate ]]; then
    log "fast shutdown of $dir took more than 10 s; stopping it immediately"
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -t 10 -w stop >/dev/null 2>&1 && return 0
  fi
  if is_postmaster "$pid" "$dir"; then
    log "postmaster $pid of $dir did not stop; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    # Backends notice the postmaster's death and exit by themselves.
    wait_gone "$pid" 10 || die "postmaster $pid of $dir survived SIGKILL"
  fi
}

# node_port DATA_DIR: the port written into the node's own settings file.
node_port() {
  sed -n "s/^port = \([0-9]*\)$/\1/p" "$1/pgsidecar_node.conf" 2>/dev/null | tail -n 1
}

# start_node DATA_DIR LOG: start and wait until it accepts connections.
start_node() {
  local dir=$1 logfile=$2 port
  if node_running "$dir"; then
    return 0
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$logfile" -w -t "$SERVER_TIMEOUT" start >/dev/null 2>&1; then
    return 1
  fi
  port=$(node_port "$dir")
  wait_ready "$port" "$SERVER_TIMEOUT" || return 1
}

wait_ready() {
  local port=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 && return 0
    sleep 0.1
  done
  return 1
}

# sql PORT QUERY: run QUERY as the superuser on database postgres; prints rows unaligned.
sql() {
  PGPASSWORD=$SUPERUSER_PASSWORD PGCONNECT_TIMEOUT=5 PGOPTIONS='-c statement_timeout=20000' \
    "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$SUPERUSER" \
    -d postgres -c "$2"
}

# wait_sql PORT QUERY EXPECTED SECONDS: poll until QUERY prints EXPECTED.
wait_sql() {
  local port=$1 query=$2 expected=$3 seconds=$4 i out
  for ((i = 0; i < seconds * 5; i++)); do
    out=$(sql "$port" "$query" 2>/dev/null) || out=
    [[ $out == "$expected" ]] && return 0
    sleep 0.2
  done
  return 1
}

load_env() {
  [[ -f $STATE_DIR/env ]] || die "no cluster in $STATE_DIR (missing $STATE_DIR/env): run '$SCRIPT_PATH start $STATE_DIR' first"
  PRIMARY_PORT=$(sed -n 's/^PRIMARY_PORT=\([0-9]*\)$/\1/p' "$STATE_DIR/env")
  REPLICA_PORT=$(sed -n 's/^REPLICA_PORT=\([0-9]*\)$/\1/p' "$STATE_DIR/env")
  [[ -n $PRIMARY_PORT && -n $REPLICA_PORT ]] || die "$STATE_DIR/env names no ports"
  RUN_DIR=$(realpath -- "$STATE_DIR/run")
}

write_env() {
  local tmp=$STATE_DIR/env.tmp
  {
    printf 'PRIMARY_PORT=%q\n' "$PRIMARY_PORT"
    printf 'REPLICA_PORT=%q\n' "$REPLICA_PORT"
    printf 'PGHOST=%q\n' 127.0.0.1
    printf 'APP_USER=%q\n' "$APP_USER"
    printf 'APP_PASSWORD=%q\n' "$APP_PASSWORD"
    printf 'SUPERUSER=%q\n' "$SUPERUSER"
    printf 'SUPERUSER_PASSWORD=%q\n' "$SUPERUSER_PASSWORD"
    printf 'REPLICATION_USER=%q\n' "$REPLICATION_USER"
    printf 'REPLICATION_PASSWORD=%q\n' "$REPLICATION_PASSWORD"
    printf 'DATABASE=%q\n' "$DATABASE"
    printf 'STATE_DIR=%q\n' "$STATE_DIR"
    printf 'SOCKET_DIR=%q\n' "$RUN_DIR/sock"
    printf 'PRIMARY_LOG=%q\n' "$RUN_DIR/primary.log"
    printf 'REPLICA_LOG=%q\n' "$RUN_DIR/replica.log"
    printf 'PG_BIN=%q\n' "$PG_BIN"
    printf 'CLUSTER_SCRIPT=%q\n' "$SCRIPT_PATH"
  } >"$tmp"
  chmod 644 "$tmp"
  mv -f -- "$tmp" "$STATE_DIR/env"
}

# Stops whatever runs from STATE_DIR (also a left-over of a killed run) and removes it.
destroy() {
  local run dir
  [[ -e $STATE_DIR || -L $STATE_DIR ]] || return 0
  run=$STATE_DIR/run
  if [[ -d $run ]]; then
    run=$(realpath -- "$run")
    for dir in "$run/tls" "$run/green" "$run/replica" "$run/primary"; do
      if [[ -d $dir ]]; then
        stop_node "$dir" fast
      fi
    done
  fi
  if [[ -L $STATE_DIR/run && $run == /tmp/pgsidecar-cluster.* ]]; then
    rm -rf -- "$run"
  fi
  rm -rf -- "$STATE_DIR"
}

choose_run_dir() {
  local sock_path="$STATE_DIR/run/sock/.s.PGSQL.32000.lock"
  if ((${#sock_path} < 100)) && as_pg test -w "$STATE_DIR"; then
    RUN_DIR=$STATE_DIR/run
    as_pg mkdir -m 755 -- "$RUN_DIR"
  else
    RUN_DIR=$(mktemp -d /tmp/pgsidecar-cluster.XXXXXX)
    chmod 755 "$RUN_DIR"
    if is_root; then
      chown "$RUN_USER:" "$RUN_DIR"
    fi
    ln -s -- "$RUN_DIR" "$STATE_DIR/run"
  fi
  as_pg mkdir -m 755 -- "$RUN_DIR/sock"
}

write_primary_config() {
  local dir=$1
  as_pg tee -a "$dir/postgresql.conf" >/dev/null <<EOF

# --- pgsidecar test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN_DIR/sock'
password_encryption = 'scram-sha-256'
max_connections = 300
shared_buffers = 32MB
huge_pages = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = 2GB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
# Tests count acknowledged writes after a crash: they must survive an immediate stop.
synchronous_commit = on
# Only an OS crash loses data with fsync off; an immediate stop or SIGKILL does not.
fsync = off
full_page_writes = off
max_parallel_workers_per_gather = 0
lc_messages = 'C'
timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
# Per-node settings (port, standby connection) live here so that a clone can differ.
include_if_exists = 'pgsidecar_node.conf'
EOF
  as_pg tee "$dir/pg_hba.conf" >/dev/null <<EOF
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
local   replication  all                 scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
EOF
}

write_node_config() {
  local dir=$1 port=$2 primary_port=${3:-}
  {
    echo "port = $port"
    if [[ -n $primary_port ]]; then
      echo "primary_conninfo = 'host=127.0.0.1 port=$primary_port user=$REPLICATION_USER password=$REPLICATION_PASSWORD application_name=$SLOT'"
      echo "primary_slot_name = '$SLOT'"
    fi
  } | as_pg tee "$dir/pgsidecar_node.conf" >/dev/null
}

# init_node DATA_DIR INITDB_LOG: a new data directory with the superuser and the test
# cluster's settings (not started).
init_node() {
  local dir=$1 initdb_log=$2 pwfile=$RUN_DIR/superuser.pw
  # shellcheck disable=SC2016  # $1 is for the inner shell
  as_pg sh -c 'umask 077; cat >"$1"' sh "$pwfile" <<<"$SUPERUSER_PASSWORD"
  as_pg timeout 120 "$PG_BIN/initdb" -D "$dir" -U "$SUPERUSER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C \
    --no-sync >"$initdb_log" 2>&1 || die "initdb of $dir failed" "$initdb_log"
  rm -f -- "$pwfile"
  write_primary_config "$dir"
}

# start_on_free_port DATA_DIR LOG EXCLUDED_PORTS PRIMARY_PORT: pick a port (not one of the
# space-separated EXCLUDED_PORTS), start; a port taken between the check and the bind is
# retried on another.
start_on_free_port() {
  local dir=$1 logfile=$2 excluded=$3 primary_port=$4 attempt port seen
  for attempt in 1 2 3 4 5; do
    # shellcheck disable=SC2086  # EXCLUDED_PORTS may name several ports
    port=$(pick_port $excluded)
    write_node_config "$dir" "$port" "$primary_port"
    seen=0
    if [[ -f $logfile ]]; then
      seen=$(wc -l <"$logfile")
    fi
    if start_node "$dir" "$logfile"; then
      echo "$port"
      return 0
    fi
    if tail -n "+$((seen + 1))" -- "$logfile" 2>/dev/null | grep -q 'could not bind\|Address already in use'; then
      log "port $port was taken meanwhile (attempt $attempt); trying another"
      stop_node "$dir" immediate
      continue
    fi
    stop_node "$dir" immediate
    die "server in $dir did not start within ${SERVER_TIMEOUT}s" "$logfile"
  done
  die "server in $dir found no free port after 5 attempts" "$logfile"
}

# clone_replica: pg_basebackup the primary into RUN_DIR/replica and start it as a hot
# standby streaming through the replication slot.
clone_replica() {
  local replica=$RUN_DIR/replica log=$RUN_DIR/replica.log
  # The walsender of a replica stopped a moment ago may still hold the slot.
  wait_sql "$PRIMARY_PORT" "SELECT count(*) FROM pg_replication_slots
                            WHERE slot_name = '$SLOT' AND active" 0 "$SERVER_TIMEOUT" ||
    die "replication slot $SLOT stays in use" "$RUN_DIR/primary.log"
  sql "$PRIMARY_PORT" "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots
                       WHERE slot_name = '$SLOT'" >/dev/null ||
    die "could not drop the old replication slot" "$RUN_DIR/primary.log"
  as_pg env PGPASSWORD="$REPLICATION_PASSWORD" PGCONNECT_TIMEOUT=10 \
    timeout 300 "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$REPLICATION_USER" \
    -D "$replica" -X stream -C -S "$SLOT" -c fast -N >"$RUN_DIR/basebackup.log" 2>&1 ||
    die "pg_basebackup from the primary failed" "$RUN_DIR/basebackup.log" "$RUN_DIR/primary.log"
  as_pg touch "$replica/standby.signal"
  if [[ -n ${REPLICA_PORT:-} ]]; then
    write_node_config "$replica" "$REPLICA_PORT" "$PRIMARY_PORT"
    start_node "$replica" "$log" || die "replica did not start within ${SERVER_TIMEOUT}s" "$log"
  else
    REPLICA_PORT=$(start_on_free_port "$replica" "$log" "$PRIMARY_PORT" "$PRIMARY_PORT")
  fi
  wait_streaming
}

wait_streaming() {
  wait_sql "$PRIMARY_PORT" "SELECT count(*) FROM pg_stat_replication
                            WHERE application_name = '$SLOT' AND state = 'streaming'" 1 "$SERVER_TIMEOUT" ||
    die "replica is not streaming from the primary after ${SERVER_TIMEOUT}s" \
      "$RUN_DIR/replica.log" "$RUN_DIR/primary.log"
}

cmd_start() {
  if [[ -e $STATE_DIR || -L $STATE_DIR ]]; then
    log "removing the left-over cluster in $STATE_DIR"
    destroy
  fi
  ensure_run_user
  mkdir -p -- "$STATE_DIR"
  chmod 755 "$STATE_DIR"
  if is_root; then
    chown "$RUN_USER:" "$STATE_DIR"
  fi
  choose_run_dir

  local primary=$RUN_DIR/primary
  init_node "$primary" "$RUN_DIR/initdb.log"

  PRIMARY_PORT=$(start_on_free_port "$primary" "$RUN_DIR/primary.log" 0 "")
  local statement
  for statement in \
    "CREATE ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD'" \
    "CREATE ROLE $REPLICATION_USER LOGIN REPLICATION PASSWORD '$REPLICATION_PASSWORD'" \
    "CREATE DATABASE $DATABASE OWNER $APP_USER"; do
    sql "$PRIMARY_PORT" "$statement" >/dev/null ||
      die "setup statement failed: $statement" "$RUN_DIR/primary.log"
  done

  REPLICA_PORT=
  clone_replica
  write_env
  log "primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT (streaming); env in $STATE_DIR/env"
}

cmd_stop() {
  destroy
  log "stopped; removed $STATE_DIR"
}

node_dir() { echo "$RUN_DIR/$1"; }

cmd_status() {
  load_env
  local node port dir state rc=0 recovery
  for node in primary replica; do
    dir=$(node_dir "$node")
    port=$PRIMARY_PORT
    [[ $node == replica ]] && port=$REPLICA_PORT
    if node_running "$dir"; then
      recovery=$(sql "$port" "SELECT pg_is_in_recovery()" 2>/dev/null) || recovery='?'
      case $recovery in
        t) state="running, in recovery (standby)" ;;
        f) state="running, read-write" ;;
        *) state="running, not answering" ;;
      esac
    else
      state=stopped
      rc=3
    fi
    echo "$node 127.0.0.1:$port $state"
  done
  # Green runs only for the tests that start it: it does not count for the exit status.
  dir=$(node_dir green)
  if [[ -d $dir ]]; then
    port=$(node_port "$dir")
    if node_running "$dir"; then state=running; else state=stopped; fi
    echo "green 127.0.0.1:$port $state"
  fi
  return "$rc"
}

cmd_node() {  # ACTION NODE
  local action=$1 node=$2 dir logfile
  load_env
  dir=$(node_dir "$node")
  logfile=$RUN_DIR/$node.log
  case $action in
    stop) stop_node "$dir" fast ;;
    kill) stop_node "$dir" immediate ;;
    start) start_node "$dir" "$logfile" || die "$node did not start within ${SERVER_TIMEOUT}s" "$logfile" ;;
    restart)
      stop_node "$dir" fast
      start_node "$dir" "$logfile" || die "$node did not restart within ${SERVER_TIMEOUT}s" "$logfile"
      ;;
  esac
  log "$action-$node done"
}

cmd_promote() {
  load_env
  local dir=$RUN_DIR/replica
  node_running "$dir" || die "replica is not running; cannot promote it" "$RUN_DIR/replica.log"
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -w -t "$SERVER_TIMEOUT" promote >/dev/null 2>&1 ||
    die "pg_ctl promote failed" "$RUN_DIR/replica.log"
  wait_sql "$REPLICA_PORT" "SELECT pg_is_in_recovery()" f "$SERVER_TIMEOUT" ||
    die "replica still in recovery ${SERVER_TIMEOUT}s after promote" "$RUN_DIR/replica.log"
  log "replica 127.0.0.1:$REPLICA_PORT promoted"
}

cmd_reset() {
  load_env
  local primary=$RUN_DIR/primary replica=$RUN_DIR/replica recovery
  start_node "$primary" "$RUN_DIR/primary.log" || die "primary did not start" "$RUN_DIR/primary.log"
  recovery=$(sql "$PRIMARY_PORT" "SELECT pg_is_in_recovery()") ||
    die "primary does not answer" "$RUN_DIR/primary.log"
  [[ $recovery == f ]] || die "primary is in recovery; cannot reset" "$RUN_DIR/primary.log"
  start_node "$replica" "$RUN_DIR/replica.log" || true
  recovery=$(sql "$REPLICA_PORT" "SELECT pg_is_in_recovery()" 2>/dev/null) || recovery='?'
  # A standby that still streams is kept; a promoted one (or one that cannot follow the
  # primary's timeline any more) is cloned afresh on the same port.
  if [[ $recovery == t ]] && wait_sql "$PRIMARY_PORT" "SELECT count(*) FROM pg_stat_replication
       WHERE application_name = '$SLOT' AND state = 'streaming'" 1 15; then
    # A test may have paused WAL replay (pg_wal_replay_pause) to make the replica lag.
    sql "$REPLICA_PORT" "SELECT pg_wal_replay_resume()" >/dev/null ||
      die "could not resume WAL replay on the replica" "$RUN_DIR/replica.log"
    log "reset: primary and streaming replica already in place"
    return 0
  fi
  log "reset: re-cloning the replica from the primary"
  stop_node "$replica" immediate
  as_pg rm -rf -- "$replica"
  clone_replica
  log "reset: replica 127.0.0.1:$REPLICA_PORT streaming again"
}

# set_env_value KEY VALUE: add or replace one line of STATE_DIR/env, atomically.
set_env_value() {
  local key=$1 value=$2 tmp=$STATE_DIR/env.tmp
  {
    grep -v "^$key=" -- "$STATE_DIR/env" || true
    printf '%s=%q\n' "$key" "$value"
  } >"$tmp"
  chmod 644 "$tmp"
  mv -f -- "$tmp" "$STATE_DIR/env"
}

# running_node_port DIR LOGFILE: the port of an independent node made before (green, tls),
# started again if it stopped. Its old port may have been taken while it was down: then it
# moves to another.
running_node_port() {
  local dir=$1 logfile=$2 port
  port=$(node_port "$dir")
  if ! node_running "$dir"; then
    if port_in_use "$port" || ! start_node "$dir" "$logfile"; then
      stop_node "$dir" immediate
      port=$(start_on_free_port "$dir" "$logfile" "$PRIMARY_PORT $REPLICA_PORT" "")
    fi
  fi
  echo "$port"
}

cmd_start_green() {
  load_env
  local dir=$RUN_DIR/green logfile=$RUN_DIR/green.log port statement
  if [[ ! -f $dir/PG_VERSION ]]; then
    as_pg rm -rf -- "$dir"
    init_node "$dir" "$RUN_DIR/green-initdb.log"
    port=$(start_on_free_port "$dir" "$logfile" "$PRIMARY_PORT $REPLICA_PORT" "")
    for statement in \
      "CREATE ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD'" \
      "CREATE DATABASE $DATABASE OWNER $APP_USER"; do
      sql "$port" "$statement" >/dev/null || die "setup statement failed on green: $statement" "$logfile"
    done
  else
    port=$(running_node_port "$dir" "$logfile")
  fi
  set_env_value GREEN_PORT "$port"
  set_env_value GREEN_LOG "$logfile"
  log "green 127.0.0.1:$port running"
}

# make_tls_files DIR: the test CA, server and client certificates, and an unrelated CA.
make_tls_files() {
  local dir=$1
  mkdir -p -- "$dir"
  (
    cd -- "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pgsidecar test CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=unrelated CA" \
      -keyout other-ca.key -out other-ca.crt 2>/dev/null
    local name subject ext
    for name in server client; do
      subject="/CN=localhost"
      ext="subjectAltName=DNS:localhost,IP:127.0.0.1"
      if [[ $name == client ]]; then
        subject="/CN=$CERT_USER"
        ext="extendedKeyUsage=clientAuth"
      fi
      openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$name.key" -out "$name.csr" 2>/dev/null
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile <(echo "$ext") -out "$name.crt" 2>/dev/null
    done
    chmod 755 .
    chmod 644 ./*.crt
    chmod 600 ./*.key
  ) || die "could not make the test certificates in $dir"
}

cmd_start_tls() {
  load_env
  local dir=$RUN_DIR/tls logfile=$RUN_DIR/tls.log files=$RUN_DIR/tls-files port statement
  if [[ ! -f $dir/PG_VERSION ]]; then
    as_pg rm -rf -- "$dir"
    rm -rf -- "$files"
    make_tls_files "$files"
    init_node "$dir" "$RUN_DIR/tls-initdb.log"
    as_pg tee "$dir/server.key" <"$files/server.key" >/dev/null
    as_pg chmod 600 "$dir/server.key"
    as_pg tee -a "$dir/postgresql.conf" >/dev/null <<EOF
ssl = on
ssl_cert_file = '$files/server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = '$files/ca.crt'
EOF
    # CERT_USER logs in with a client certificate of the test CA alone.
    as_pg tee "$dir/pg_hba.conf" >/dev/null <<EOF
hostnossl $TLS_ONLY_DATABASE all  127.0.0.1/32  reject
hostssl all          $CERT_USER  127.0.0.1/32  cert
local   all          all                 scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
EOF
    port=$(start_on_free_port "$dir" "$logfile" "$PRIMARY_PORT $REPLICA_PORT" "")
    for statement in \
      "CREATE ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD'" \
      "CREATE ROLE $CERT_USER LOGIN" \
      "CREATE DATABASE $DATABASE OWNER $APP_USER" \
      "CREATE DATABASE $TLS_ONLY_DATABASE OWNER $APP_USER"; do
      sql "$port" "$statement" >/dev/null || die "setup statement failed on the TLS server: $statement" "$logfile"
    done
  else
    port=$(running_node_port "$dir" "$logfile")
  fi
  set_env_value TLS_PORT "$port"
  set_env_value TLS_DIR "$files"
  set_env_value TLS_LOG "$logfile"
  log "TLS server 127.0.0.1:$port running; certificates in $files"
}

cmd_stop_green() {
  load_env
  stop_node "$RUN_DIR/green" fast
  log "stop-green done"
}

case $COMMAND in
  start) take_lock; cmd_start ;;
  start-green) take_lock; cmd_start_green ;;
  stop-green) take_lock; cmd_stop_green ;;
  start-tls) take_lock; cmd_start_tls ;;
  stop) take_lock; cmd_stop ;;
  status) cmd_status ;;
  env) load_env; cat -- "$STATE_DIR/env" ;;
  stop-primary | kill-primary | start-primary | restart-primary | \
    stop-replica | kill-replica | start-replica | restart-replica)
    take_lock
    cmd_node "${COMMAND%%-*}" "${COMMAND#*-}"
    ;;
  promote-replica) take_lock; cmd_promote ;;
  reset) take_lock; cmd_reset ;;
  *) usage ;;
esac
