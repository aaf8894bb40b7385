#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for PEZ's tests, from the installed server
# binaries (pg_config --bindir): initdb into a directory, own port, own
# socket directory, and stopped and removed afterwards. Run as root, the
# server runs as the postgres user (initdb refuses root).
#
#   pg-cluster.sh run CMD...          CMD with PEZ_TEST_DATABASE_URL set: the one
#                                     already set, or a cluster started for CMD
#   pg-cluster.sh start DIR [--ssl] [--password PW] [--watch PID]
#                                     start a cluster in DIR (created); prints its
#                                     admin URL. --ssl: TLS on, with a CA and a
#                                     server certificate for localhost in
#                                     DIR/certs; --password: scram-sha-256 for
#                                     TCP, PW for user postgres; --watch: stop and
#                                     remove it when process PID ends
#   pg-cluster.sh standby DIR PRIMARY_DIR [--watch PID]
#                                     a streaming standby of the cluster in
#                                     PRIMARY_DIR (pg_basebackup), made the
#                                     primary's synchronous standby; prints its
#                                     admin URL
#   pg-cluster.sh rebuild DIR PRIMARY_DIR
#                                     make the cluster in DIR (an old primary, or a
#                                     standby: stopped, crashed or running) again a
#                                     streaming standby of PRIMARY_DIR from a fresh
#                                     pg_basebackup, on its own port, and the
#                                     primary's synchronous standby
#   pg-cluster.sh sync PRIMARY_DIR    make the primary's standby synchronous and
#                                     wait (bounded) until it is
#   pg-cluster.sh async PRIMARY_DIR   commits no longer wait for any standby
#   pg-cluster.sh promote DIR         promote a standby to primary
#   pg-cluster.sh stop DIR [fast|immediate]    stop (immediate: as in a crash)
#   pg-cluster.sh restart DIR [--socket-only]
#                                     start a stopped cluster again; --socket-only:
#                                     no TCP, only the socket in DIR (clients that
#                                     connect by port cannot reach it yet)
#   pg-cluster.sh reopen DIR          restart a running cluster on its TCP port
#   pg-cluster.sh remove DIR          stop and delete
#   pg-cluster.sh pooler DIR UPSTREAM_PORT MODE POOL_SIZE [--watch PID]
#                                     PgBouncer (Debian's pgbouncer) in DIR, on its
#                                     own port, in front of the server on
#                                     127.0.0.1:UPSTREAM_PORT: pool_mode MODE
#                                     (session, transaction or statement),
#                                     POOL_SIZE server connections per database
#                                     and user, every client logged in as
#                                     postgres; prints its URL. `remove DIR`
#                                     stops it
set -euo pipefail

bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
    else
        ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
    fi
}
BIN=$(bindir)
[ -x "$BIN/initdb" ] || { echo "pg-cluster: no PostgreSQL server binaries (initdb) found" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

make_certs() {
    local certs=$1
    mkdir -p "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=PEZ test CA" \
        -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$certs/san.ext"
    openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
        -CAcreateserial -days 2 -extfile "$certs/san.ext" -out "$certs/server.crt" 2>/dev/null
    # A second, unrelated CA: verify-full against it must fail.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Some other CA" \
        -keyout "$certs/other-ca.key" -out "$certs/other-ca.crt" 2>/dev/null
    chmod 600 "$certs/server.key"
}

start() {
    local dir=$1; shift
    local ssl=no password="" watch=""
    while [ $# -gt 0 ]; do
        case $1 in
            --ssl) ssl=yes ;;
            --password) password=$2; shift ;;
            --watch) watch=$2; shift ;;
            *) echo "pg-cluster: unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    mkdir -p "$dir"
    local port; port=$(free_port)
    echo "$port" >"$dir/port"
    local auth=(-A trust)
    if [ -n "$password" ]; then
        printf '%s\n' "$password" >"$dir/pwfile"
        auth=(--auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/pwfile")
    fi
    [ "$ssl" = yes ] && make_certs "$dir/certs"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    as_owner "$BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --no-sync "${auth[@]}" >"$dir/initdb.log"
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 200"
        # A standby that was down (the fault suite crashes it under load)
        # must find the WAL it missed: without a slot, the primary keeps
        # only this much (by default none past a checkpoint's needs).
        echo "wal_keep_size = '1GB'"
        if [ "$ssl" = yes ]; then
            echo "ssl = on"
            echo "ssl_cert_file = '$dir/certs/server.crt'"
            echo "ssl_key_file = '$dir/certs/server.key'"
        fi
    } >>"$dir/data/postgresql.conf"
    # The port was free when picked; another test's cluster or server may
    # take it before this one binds it (tests start clusters in parallel):
    # then a fresh port, a few times (a later `port` line wins).
    local tries=0
    until as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 3 ] || ! grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/server.log"; then
            return 1
        fi
        port=$(free_port)
        echo "$port" >"$dir/port"
        echo "port = $port" >>"$dir/data/postgresql.conf"
    done
    [ -n "$watch" ] && watch_owner "$watch" "$dir"
    if [ -n "$password" ]; then
        echo "postgres://postgres:$password@127.0.0.1:$port/postgres"
    else
        echo "postgres://postgres@127.0.0.1:$port/postgres"
    fi
}

watch_owner() {
    # Detached, with no inherited output, so the caller is not kept waiting.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" remove "$3"' \
        _ "$1" "$0" "$2" </dev/null >/dev/null 2>&1 &
}

standby() {
    local dir=$1 primary=$2; shift 2
    local watch=""
    while [ $# -gt 0 ]; do
        case $1 in
            --watch) watch=$2; shift ;;
            *) echo "pg-cluster: unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    mkdir -p "$dir"
    free_port >"$dir/port"
    base_backup "$dir" "$primary"
    [ -n "$watch" ] && watch_owner "$watch" "$dir"
    make_sync "$primary"
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
}

# DIR/data becomes a fresh streaming standby of PRIMARY, on DIR's port, and
# is started.
base_backup() {
    local dir=$1 primary=$2
    local port primary_port; port=$(cat "$dir/port"); primary_port=$(cat "$primary/port")
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    # -R writes primary_conninfo and standby.signal: a streaming standby.
    as_owner "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/data" \
        -R -X stream --checkpoint=fast --no-sync >"$dir/basebackup.log" 2>&1
    {
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
    } >>"$dir/data/postgresql.conf"
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

primary_sql() {
    local primary=$1; shift
    as_owner "$BIN/psql" -h "$primary" -p "$(cat "$primary/port")" -U postgres -qAt "$@"
}

# Commits on PRIMARY wait until its standby has flushed them; returns once
# the standby is synchronous (bounded: 30 s).
make_sync() {
    local primary=$1 state=""
    primary_sql "$primary" -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 300); do
        state=$(primary_sql "$primary" -c "SELECT sync_state FROM pg_stat_replication WHERE sync_state = 'sync' LIMIT 1")
        [ "$state" = sync ] && break
        sleep 0.1
    done
    [ "$state" = sync ] || { echo "pg-cluster: the standby did not become synchronous" >&2; exit 1; }
}

sync() {
    make_sync "$1"
}

async() {
    primary_sql "$1" -c "ALTER SYSTEM RESET synchronous_standby_names" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

rebuild() {
    local dir=$1 primary=$2
    [ -f "$dir/port" ] || { echo "pg-cluster: $dir has no port" >&2; exit 1; }
    stop "$dir" immediate
    rm -rf "$dir/data"
    base_backup "$dir" "$primary"
    make_sync "$primary"
}

promote() {
    as_owner "$BIN/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null
}

stop() {
    local dir=$1 mode=${2:-fast}
    [ -d "$dir/data" ] || return 0
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

restart() {
    local options=()
    [ "${2:-}" = --socket-only ] && options=(-o "-c listen_addresses=''")
    as_owner "$BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 "${options[@]}" start >/dev/null
}

reopen() {
    stop "$1" fast
    restart "$1"
}

remove() {
    stop "$1" immediate
    if [ -f "$1/pgbouncer.pid" ]; then
        kill -TERM "$(cat "$1/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$1/pgbouncer.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$1"
}

pooler() {
    local dir=$1 upstream=$2 mode=$3 size=$4; shift 4
    local watch=""
    while [ $# -gt 0 ]; do
        case $1 in
            --watch) watch=$2; shift ;;
            *) echo "pg-cluster: unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    command -v pgbouncer >/dev/null 2>&1 || {
        echo "pg-cluster: pgbouncer is missing (apt-get install pgbouncer)" >&2; exit 1; }
    mkdir -p "$dir"
    local port; port=$(free_port)
    echo "$port" >"$dir/port"
    # auth_type any: every client is logged in as the user of [databases],
    # whatever it says (the tests' roles come and go). Transaction and
    # statement modes hand a server connection to a client per transaction
    # or per statement: exactly what PEZ must not rely on.
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$upstream user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = $mode
default_pool_size = $size
max_client_conn = 1000
max_db_connections = $size
server_reset_query_always = 0
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    as_owner pgbouncer -d -q "$dir/pgbouncer.ini"
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" \
            2>/dev/null && break
        sleep 0.1
    done
    [ -n "$watch" ] && watch_owner "$watch" "$dir"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

run() {
    if [ -n "${PEZ_TEST_DATABASE_URL:-}" ]; then
        exec "$@"
    fi
    # Global: the EXIT trap runs after this function has returned.
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pez-pg-XXXXXX")
    trap 'remove "$RUN_DIR"' EXIT
    PEZ_TEST_DATABASE_URL=$(start "$RUN_DIR")
    export PEZ_TEST_DATABASE_URL
    echo "pg-cluster: PostgreSQL for the tests at $PEZ_TEST_DATABASE_URL" >&2
    "$@"
}

command=${1:-}; shift || true
case $command in
    run|start|standby|rebuild|sync|async|promote|stop|restart|reopen|remove|pooler) "$command" "$@" ;;
    *) sed -n '2,46p' "$0" >&2; exit 2 ;;
esac
