#!/usr/bin/env bash
# A scale-out cluster on this machine, 127.0.0.1 only, from Debian packages:
# a private PostgreSQL primary and one streaming replica, PgBouncer (transaction
# pooling) in front of the primary, two crm-server instances through PgBouncer,
# and HAProxy balancing them with health checks on /readyz.
#
#   scripts/cluster.sh up       start what is not running (idempotent); prints
#                               `export CRM_BASE_URL=...` and `export DATABASE_URL=...`
#   scripts/cluster.sh status   one line per component
#   scripts/cluster.sh down     stop everything it started and remove its state
#   scripts/cluster.sh env      print the exports again
#   scripts/cluster.sh start-server N | stop-server N | restart-pgbouncer
#                               (used by scripts/cluster-drill.sh)
#
# State (data directories, configs, logs, pid files) lives in
# $CRM_CLUSTER_DIR (default /tmp/crm-cluster). The shared PostgreSQL on
# port 5432 is never touched. Settings: CRM_SERVER (binary; default
# target/release/crm-server, built when missing), CRM_CLUSTER_INSTANCES (2).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${CRM_CLUSTER_DIR:-/tmp/crm-cluster}
INSTANCES=${CRM_CLUSTER_INSTANCES:-2}
CRM_SERVER=${CRM_SERVER:-$PWD/target/release/crm-server}
HOST=127.0.0.1

# Fails with a message; a log file named at its end is shown too, since
# `down` (or CI's clean-up) removes the state directory.
die() {
    echo "cluster: $*" >&2
    local last=${*##* }
    if [ -f "$last" ]; then echo "--- last lines of $last:" >&2; tail -n 20 "$last" >&2; fi
    exit 1
}
say() { echo "cluster: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_pg() {
    if [ "$(id -un)" = postgres ]; then "$@"
    elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
    else sudo -u postgres "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_packages() {
    local missing=()
    ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
    command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
    # Debian starts a PgBouncer and an HAProxy service of its own on install;
    # they are not ours and hold no port we use, so they are left alone.
}

pgbin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Ports are chosen once, when the state directory is made, and kept.
load_ports() {
    if [ ! -f "$STATE/ports.env" ]; then
        mkdir -p "$STATE"
        chmod 755 "$STATE"
        {
            echo "PRIMARY_PORT=$(free_port)"
            echo "REPLICA_PORT=$(free_port)"
            echo "PGBOUNCER_PORT=$(free_port)"
            echo "HAPROXY_PORT=$(free_port)"
            echo "HAPROXY_STATS_PORT=$(free_port)"
            for i in $(seq 1 "$INSTANCES"); do echo "SERVER_PORT_$i=$(free_port)"; done
        } >"$STATE/ports.env"
    fi
    # shellcheck disable=SC1091
    . "$STATE/ports.env"
    as_pg test -x "$STATE" -a -r "$STATE" \
        || die "the postgres user cannot enter $STATE (a parent directory is private?); choose CRM_CLUSTER_DIR elsewhere"
}

alive() { [ -f "$1" ] && kill -0 "$(head -n 1 "$1")" 2>/dev/null; }

wait_for() { # description seconds command...
    local what=$1 secs=$2
    shift 2
    for _ in $(seq 1 $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "$what not ready after ${secs}s (logs in $STATE)"
}

primary_url() { echo "postgres://postgres@$HOST:$PRIMARY_PORT/crm"; }
pooled_url() { echo "postgres://postgres@$HOST:$PGBOUNCER_PORT/crm"; }
replica_url() { echo "postgres://postgres@$HOST:$REPLICA_PORT/crm"; }

pg_running() { as_pg "$(pgbin)/pg_ctl" -D "$1" status >/dev/null 2>&1; }

start_primary() {
    local data=$STATE/primary
    if [ ! -f "$data/PG_VERSION" ]; then
        say "initdb primary on port $PRIMARY_PORT"
        mkdir -p "$data" && chown postgres:postgres "$data" && chmod 700 "$data"
        as_pg "$(pgbin)/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 \
            || as_pg "$(pgbin)/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$STATE/initdb.log" 2>&1 \
            || die "initdb failed: $STATE/initdb.log"
        cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '$HOST'
port = $PRIMARY_PORT
unix_socket_directories = '$data'
max_connections = 200
wal_level = replica
max_wal_senders = 5
hot_standby = on
timezone = 'UTC'
shared_buffers = 64MB
fsync = on
EOF
        cat >"$data/pg_hba.conf" <<EOF
local all all trust
host all all $HOST/32 trust
host replication all $HOST/32 trust
EOF
    fi
    if ! pg_running "$data"; then
        say "starting primary"
        as_pg "$(pgbin)/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
            || die "primary did not start: $data/server.log"
    fi
    wait_for "primary" 60 "$(pgbin)/pg_isready" -q -h $HOST -p "$PRIMARY_PORT"
    if ! as_pg psql -h $HOST -p "$PRIMARY_PORT" -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='crm'" | grep -q 1; then
        as_pg psql -h $HOST -p "$PRIMARY_PORT" -U postgres -d postgres -qc 'CREATE DATABASE crm' >/dev/null
    fi
}

start_replica() {
    local data=$STATE/replica
    if [ ! -f "$data/PG_VERSION" ]; then
        say "pg_basebackup -R for the replica on port $REPLICA_PORT"
        rm -rf "$data"
        mkdir -p "$data" && chown postgres:postgres "$data" && chmod 700 "$data"
        as_pg "$(pgbin)/pg_basebackup" -h $HOST -p "$PRIMARY_PORT" -U postgres -D "$data" -R -X stream -c fast \
            >"$STATE/basebackup.log" 2>&1 || die "pg_basebackup failed: $STATE/basebackup.log"
        cat >>"$data/postgresql.conf" <<EOF
port = $REPLICA_PORT
unix_socket_directories = '$data'
EOF
        rm -f "$data/server.log"
    fi
    if ! pg_running "$data"; then
        say "starting replica"
        as_pg "$(pgbin)/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null \
            || die "replica did not start: $data/server.log"
    fi
    wait_for "replica" 60 "$(pgbin)/pg_isready" -q -h $HOST -p "$REPLICA_PORT"
}

start_pgbouncer() {
    local dir=$STATE/pgbouncer
    mkdir -p "$dir" && chown postgres:postgres "$dir"
    # `crm`: transaction pooling, what the servers use. `crm_session`: the
    # same database in session pooling, for the measurements in docs/scaling.md.
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
crm = host=$HOST port=$PRIMARY_PORT dbname=crm
crm_session = host=$HOST port=$PRIMARY_PORT dbname=crm pool_mode=session

[pgbouncer]
listen_addr = $HOST
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
EOF
    echo '"postgres" ""' >"$dir/userlist.txt"
    chown postgres:postgres "$dir"/*
    if ! alive "$dir/pgbouncer.pid"; then
        say "starting PgBouncer (transaction pooling) on port $PGBOUNCER_PORT"
        rm -f "$dir/pgbouncer.pid"
        as_pg "$PGBOUNCER" -d "$dir/pgbouncer.ini" || die "PgBouncer did not start: $dir/pgbouncer.log"
    fi
    wait_for "PgBouncer" 30 as_pg psql -h $HOST -p "$PGBOUNCER_PORT" -U postgres -d crm -Atc 'SELECT 1'
}

stop_pgbouncer() {
    local pidf=$STATE/pgbouncer/pgbouncer.pid
    if alive "$pidf"; then
        local pid
        pid=$(cat "$pidf")
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
}

ensure_binary() {
    if [ ! -x "$CRM_SERVER" ]; then
        say "building $CRM_SERVER (cargo build --release -p crm-server)"
        cargo build --release -p crm-server >&2
    fi
}

migrate_once() {
    if [ ! -f "$STATE/migrated" ]; then
        say "migrating the primary (directly, not through PgBouncer)"
        DATABASE_URL=$(primary_url) "$CRM_SERVER" migrate >"$STATE/migrate.log" 2>&1 \
            || die "migration failed: $STATE/migrate.log"
        touch "$STATE/migrated"
    fi
}

server_port() { local v="SERVER_PORT_$1"; echo "${!v}"; }

start_server() {
    local i=$1 port
    port=$(server_port "$i")
    [ -n "$port" ] || die "no port for server $i"
    local pidf=$STATE/server$i.pid
    if ! alive "$pidf"; then
        say "starting crm-server $i on port $port"
        # Pooled connections go through PgBouncer in transaction mode, so no
        # named prepared statements; migrations use the direct URL. GET and
        # HEAD are answered by the replica (directly, its pool is the
        # server's own). Webhook endpoints may be on loopback: the drill's
        # receiver is.
        DATABASE_URL=$(pooled_url) \
            CRM_DATABASE_DIRECT_URL=$(primary_url) \
            CRM_DATABASE_REPLICA_URL=$(replica_url) \
            CRM_DB_PREPARED_STATEMENTS=false \
            CRM_WEBHOOK_ALLOW_PRIVATE=true \
            CRM_BIND=$HOST:$port \
            CRM_DB_POOL_SIZE=${CRM_CLUSTER_POOL_SIZE:-10} \
            CRM_SHUTDOWN_DRAIN_SECONDS=2 \
            setsid "$CRM_SERVER" serve >>"$STATE/server$i.log" 2>&1 </dev/null &
        echo $! >"$pidf"
    fi
    wait_for "crm-server $i" 60 curl -fsS "http://$HOST:$port/readyz"
}

stop_server() { # i [signal]
    local pidf=$STATE/server$1.pid sig=${2:-TERM}
    if alive "$pidf"; then
        local pid
        pid=$(cat "$pidf")
        kill -"$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
}

start_haproxy() {
    local dir=$STATE/haproxy
    mkdir -p "$dir"
    {
        cat <<EOF
global
    maxconn 4096
    pidfile $dir/haproxy.pid

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A request that never reached a server (connection refused: an instance
    # that died) is sent to another; one that did is not retried, so a write
    # is never applied twice.
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend crm
    bind $HOST:$HAPROXY_PORT
    default_backend servers

backend servers
    # A bearer token always reaches the same instance (while it is up):
    # an instance sends a client's reads to the primary until the replica
    # holds that client's writes, which it knows of only for the writes it
    # made itself. Requests without the header are balanced round-robin.
    balance hdr(Authorization)
    hash-type consistent
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 check
EOF
        for i in $(seq 1 "$INSTANCES"); do
            echo "    server s$i $HOST:$(server_port "$i")"
        done
        cat <<EOF

listen stats
    bind $HOST:$HAPROXY_STATS_PORT
    stats enable
    stats uri /stats
EOF
    } >"$dir/haproxy.cfg"
    "$HAPROXY" -c -q -f "$dir/haproxy.cfg" || die "bad HAProxy configuration $dir/haproxy.cfg"
    if ! alive "$dir/haproxy.pid"; then
        say "starting HAProxy on port $HAPROXY_PORT"
        rm -f "$dir/haproxy.pid"
        "$HAPROXY" -D -f "$dir/haproxy.cfg" -p "$dir/haproxy.pid" >"$dir/haproxy.log" 2>&1 \
            || die "HAProxy did not start: $dir/haproxy.log"
    fi
    wait_for "HAProxy" 30 curl -fsS "http://$HOST:$HAPROXY_PORT/readyz"
    wait_for "HAProxy's health checks (every instance UP)" 30 all_backends_up
}

# True when HAProxy's stats list every instance, all UP.
all_backends_up() {
    local states
    states=$(curl -fsS "http://$HOST:$HAPROXY_STATS_PORT/stats;csv" \
        | awk -F, '$1=="servers" && $2!="BACKEND" {print $18}')
    [ "$(grep -c '^UP$' <<<"$states")" -eq "$INSTANCES" ]
}

create_client() {
    if [ ! -s "$STATE/client.json" ]; then
        DATABASE_URL=$(primary_url) "$CRM_SERVER" client create --name cluster-drill \
            --scope "crm:read crm:write" >"$STATE/client.json.tmp" 2>"$STATE/client.log" \
            || die "cannot create the OAuth client: $STATE/client.log"
        mv "$STATE/client.json.tmp" "$STATE/client.json"
    fi
}

print_env() {
    echo "export CRM_BASE_URL=http://$HOST:$HAPROXY_PORT"
    echo "export DATABASE_URL=$(primary_url)"
}

cmd_up() {
    install_packages
    ensure_binary
    load_ports
    start_primary
    start_replica
    start_pgbouncer
    migrate_once
    for i in $(seq 1 "$INSTANCES"); do start_server "$i"; done
    start_haproxy
    create_client
    say "up; state in $STATE (OAuth client for the drills in $STATE/client.json)"
    print_env
}

line() { printf '%-12s %-5s %s\n' "$1" "$2" "$3"; }

cmd_status() {
    [ -f "$STATE/ports.env" ] || { echo "no cluster (state dir $STATE absent)"; return 3; }
    load_ports
    local bad=0 st
    for role in primary replica; do
        local port=$PRIMARY_PORT
        [ "$role" = replica ] && port=$REPLICA_PORT
        if "$(pgbin)/pg_isready" -q -h $HOST -p "$port"; then
            if [ "$role" = primary ]; then
                st="streaming to $(psql -h $HOST -p "$port" -U postgres -d postgres -Atc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null || echo '?') replica(s)"
            else
                st="in recovery: $(psql -h $HOST -p "$port" -U postgres -d postgres -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null || echo '?'), replay lag $(psql -h $HOST -p "$port" -U postgres -d postgres -Atc "SELECT coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 1)::text, '-')" 2>/dev/null || echo '?')s"
            fi
            line "$role" up "127.0.0.1:$port, $st"
        else
            line "$role" DOWN "127.0.0.1:$port"; bad=1
        fi
    done
    if alive "$STATE/pgbouncer/pgbouncer.pid"; then
        line pgbouncer up "127.0.0.1:$PGBOUNCER_PORT, pid $(cat "$STATE/pgbouncer/pgbouncer.pid"), pool_mode transaction"
    else
        line pgbouncer DOWN "127.0.0.1:$PGBOUNCER_PORT"; bad=1
    fi
    for i in $(seq 1 "$INSTANCES"); do
        local port
        port=$(server_port "$i")
        if alive "$STATE/server$i.pid" && curl -fsS -o /dev/null "http://$HOST:$port/readyz" 2>/dev/null; then
            line "server$i" up "127.0.0.1:$port, pid $(cat "$STATE/server$i.pid"), /readyz 200"
        else
            line "server$i" DOWN "127.0.0.1:$port"; bad=1
        fi
    done
    if alive "$STATE/haproxy/haproxy.pid"; then
        local backends
        backends=$(curl -fsS "http://$HOST:$HAPROXY_STATS_PORT/stats;csv" 2>/dev/null \
            | awk -F, '$1=="servers" && $2!="BACKEND" {printf "%s %s; ", $2, $18}')
        line haproxy up "http://127.0.0.1:$HAPROXY_PORT, ${backends:-no stats}"
    else
        line haproxy DOWN "http://127.0.0.1:$HAPROXY_PORT"; bad=1
    fi
    return $bad
}

cmd_down() {
    if [ ! -d "$STATE" ]; then say "nothing to stop ($STATE absent)"; return 0; fi
    [ -f "$STATE/ports.env" ] && load_ports
    if alive "$STATE/haproxy/haproxy.pid"; then
        kill "$(cat "$STATE/haproxy/haproxy.pid")" 2>/dev/null || true
    fi
    for pidf in "$STATE"/server*.pid; do
        [ -e "$pidf" ] || continue
        local i=${pidf##*/server}
        stop_server "${i%.pid}"
    done
    stop_pgbouncer
    for role in replica primary; do
        if [ -f "$STATE/$role/PG_VERSION" ] && pg_running "$STATE/$role"; then
            as_pg "$(pgbin)/pg_ctl" -D "$STATE/$role" -m fast -w -t 60 stop >/dev/null || true
        fi
    done
    rm -rf "$STATE"
    say "down; removed $STATE"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) load_ports; print_env ;;
start-server) load_ports; start_server "${2:?server number}" ;;
stop-server) load_ports; stop_server "${2:?server number}" "${3:-TERM}" ;;
restart-pgbouncer) load_ports; stop_pgbouncer; start_pgbouncer ;;
stop-replica) load_ports; as_pg "$(pgbin)/pg_ctl" -D "$STATE/replica" -m fast -w -t 60 stop >/dev/null ;;
start-replica) load_ports; start_replica ;;
*) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
