#!/usr/bin/env bash
# The webhook benchmark: API throughput while webhook deliveries drain, and
# the drain rate. One command: `bench/webhooks.sh`.
#
# Builds crm-server in release (or runs BENCH_BIN), creates a fresh
# PostgreSQL database, starts the server with a local receiver
# (bench/receiver.py, 204 at once) allowed as an endpoint, and creates
# customers through the API until there are BENCH_DELIVERIES events. Then,
# each phase with wrk (bench/load.lua) at BENCH_CONNECTIONS connections:
#
#   1. baseline: GET customer by id, then POST create, no webhook endpoint;
#   2. drain: an endpoint subscribed to everything gets a pending delivery
#      of each of the newest BENCH_DELIVERIES events (recorded in SQL while
#      it is inactive, then it is activated), and GET customer by id runs
#      while they drain; the drain time is from the activation until no
#      delivery is pending;
#   3. live: POST create while each new customer's event is delivered.
#
# Writes the table to BENCH_OUTPUT (docs/benchmarks-webhooks.md), keeping
# the hand-written analysis below its marker line.
#
# Settings (environment): BENCH_DURATION=15, BENCH_CONNECTIONS=32,
# BENCH_THREADS=2, BENCH_DELIVERIES=10000, BENCH_PG=postgres://postgres@127.0.0.1:5432,
# BENCH_DB=crm_webhook_bench, BENCH_PORT=18081, BENCH_RECEIVER_PORT=18091,
# BENCH_POOL_SIZE=10, BENCH_RUST_LOG=info, BENCH_BIN, BENCH_OUTPUT,
# BENCH_WEBHOOK_CONCURRENCY=32, BENCH_WEBHOOK_ENDPOINT_CONCURRENCY=4 (the server's),
# BENCH_SERVER_LOG=/tmp/crm-webhooks-bench-server.log (the server's log, kept),
# BENCH_KEEP_DB=1 (leave the database for a look afterwards).
# Needs cargo, psql, curl, python3 and wrk. Sends traffic only to 127.0.0.1.

set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-15}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
DELIVERIES=${BENCH_DELIVERIES:-10000}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-crm_webhook_bench}
PORT=${BENCH_PORT:-18081}
RECEIVER_PORT=${BENCH_RECEIVER_PORT:-18091}
POOL_SIZE=${BENCH_POOL_SIZE:-10}
RUST_LOG_LEVEL=${BENCH_RUST_LOG:-info}
OUTPUT=${BENCH_OUTPUT:-docs/benchmarks-webhooks.md}
BASE=http://127.0.0.1:$PORT
DB_URL=$PG/$DB
WORK=$(mktemp -d)
SERVER_PID=
RECEIVER_PID=
RUN=$((RANDOM % 1000))

log() { printf '[webhooks %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null
    if [ -z "${BENCH_KEEP_DB:-}" ]; then
        psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    cp "$WORK/server.log" "${BENCH_SERVER_LOG:-/tmp/crm-webhooks-bench-server.log}" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in psql curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed" >&2; exit 2; }
done
if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    log "building crm-server (release)"
    cargo build --quiet --release --bin crm-server
    BIN=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/crm-server
fi

log "creating database $DB"
psql -X -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\"" >/dev/null
DATABASE_URL=$DB_URL RUST_LOG=warn "$BIN" migrate >&2

python3 bench/receiver.py "$RECEIVER_PORT" "$WORK/received" &
RECEIVER_PID=$!

DATABASE_URL=$DB_URL CRM_BIND=127.0.0.1:$PORT RUST_LOG=$RUST_LOG_LEVEL \
    CRM_DB_POOL_SIZE=$POOL_SIZE CRM_WEBHOOK_ALLOW_PRIVATE=true \
    CRM_WEBHOOK_CONCURRENCY=${BENCH_WEBHOOK_CONCURRENCY:-32} \
    CRM_WEBHOOK_ENDPOINT_CONCURRENCY=${BENCH_WEBHOOK_ENDPOINT_CONCURRENCY:-4} \
    "$BIN" serve >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    sleep 0.2
done
client=$(DATABASE_URL=$DB_URL RUST_LOG=warn "$BIN" client create --name bench --scope "crm:read crm:write")
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p"; }
TOKEN=$(curl -fsS -u "$(field client_id <<<"$client"):$(field client_secret <<<"$client")" \
    -d grant_type=client_credentials "$BASE/oauth/token/" | field access_token)
[ -n "$TOKEN" ] || { echo "bench: no token" >&2; exit 1; }

sql() { psql -X -At "$DB_URL" -c "$1"; }
num() { sed -n "s/.*\"$1\": \(-\{0,1\}[0-9.]*\).*/\1/p" <<<"$2"; }
INVOCATION=0

# drive NAME SECONDS: wrk; prints its BENCH_RESULT line with the rate.
# Callers count INVOCATION up before each call (drive often runs in a
# subshell), so that the mobiles of created customers never clash.
drive() {
    BENCH_SCENARIO=$1 BENCH_TOKEN=$TOKEN BENCH_CUSTOMERS=$(sql "SELECT count(*) FROM customers") \
        BENCH_RUN=$((RUN * 100 + INVOCATION)) \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${2}s" --timeout 10s -s bench/load.lua "$BASE" \
        >"$WORK/wrk.out" 2>&1
    local line
    line=$(grep '^BENCH_RESULT' "$WORK/wrk.out")
    echo "${line%\}}, \"rps\": $(awk -v r="$(num requests "$line")" -v d="$(num duration_us "$line")" \
        'BEGIN {printf "%.1f", r / (d / 1e6)}')}"
}

log "creating customers until there are $DELIVERIES events"
while [ "$(sql "SELECT count(*) FROM crm_events")" -lt "$DELIVERIES" ]; do
    INVOCATION=$((INVOCATION + 1))
    drive create 5 >/dev/null
done
sql "VACUUM ANALYZE" >/dev/null

log "baseline: get_customer, then create, ${DURATION}s each"
INVOCATION=$((INVOCATION + 1))
BASE_GET=$(drive get_customer "$DURATION")
INVOCATION=$((INVOCATION + 1))
BASE_CREATE=$(drive create "$DURATION")

endpoint=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/hook\", \"events\": [\"*\"], \"is_active\": false}" \
    "$BASE/api/crm/webhook/" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p' | head -n 1)
sql "INSERT INTO crm_webhook_deliveries (endpoint_id, event_seq, status, next_attempt_at, created_at)
     SELECT $endpoint, seq, 1, NULL, now() FROM crm_events WHERE id IS NOT NULL ORDER BY seq DESC LIMIT $DELIVERIES" >/dev/null
sql "ANALYZE crm_webhook_deliveries" >/dev/null
set_active() {
    curl -fsS -o /dev/null -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data "{\"is_active\": $1}" "$BASE/api/crm/webhook/$endpoint/"
}
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks of the PostgreSQL processes alive now (the server's pooled
# backends among them; this script's short psql sessions are not counted).
pg_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {t += $14 + $15} END {print t + 0}'; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# drain: makes the endpoint's deliveries pending again (while it is
# inactive), activates it and waits until none is pending; sets DRAINED
# (seconds) and DRAIN_CPU (whole-machine CPU µs per delivery).
drain() {
    set_active false
    sql "UPDATE crm_webhook_deliveries SET status = 0, attempts = 0, next_attempt_at = now(),
         last_status_code = NULL, last_error = '' WHERE endpoint_id = $endpoint" >/dev/null
    local start ticks now server_ticks receiver_ticks pg
    ticks=$(busy_ticks)
    pg=$(pg_ticks)
    server_ticks=$(proc_ticks "$SERVER_PID")
    receiver_ticks=$(proc_ticks "$RECEIVER_PID")
    start=$(date +%s.%N)
    set_active true
    DRAINED=
    while [ -z "$DRAINED" ]; do
        now=$(date +%s.%N)
        if [ "$(sql "SELECT count(*) FROM crm_webhook_deliveries WHERE status = 0")" = 0 ]; then
            DRAINED=$(awk -v s="$start" -v e="$now" 'BEGIN {printf "%.1f", e - s}')
            break
        fi
        if [ "$(awk -v s="$start" -v e="$now" 'BEGIN {print (e - s > 600)}')" = 1 ]; then
            echo "bench: deliveries did not drain in 600 s" >&2; exit 1
        fi
        sleep 0.5
    done
    per() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$DELIVERIES" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}'; }
    DRAIN_CPU=$(per $(($(busy_ticks) - ticks)))
    DRAIN_CPU_SERVER=$(per $(($(proc_ticks "$SERVER_PID") - server_ticks)))
    DRAIN_CPU_RECEIVER=$(per $(($(proc_ticks "$RECEIVER_PID") - receiver_ticks)))
    DRAIN_CPU_PG=$(per $(($(pg_ticks) - pg)))
}

log "drain: $DELIVERIES pending deliveries, no other load"
drain
IDLE_DRAINED=$DRAINED
IDLE_CPU=$DRAIN_CPU
IDLE_CPU_SERVER=$DRAIN_CPU_SERVER
IDLE_CPU_RECEIVER=$DRAIN_CPU_RECEIVER
IDLE_CPU_PG=$DRAIN_CPU_PG
IDLE_RATE=$(awk -v n="$DELIVERIES" -v s="$DRAINED" 'BEGIN {printf "%.0f", n / s}')
log "drained $DELIVERIES deliveries in ${DRAINED}s ($IDLE_RATE/s), $IDLE_CPU µs of CPU each"

log "drain: $DELIVERIES pending deliveries while get_customer runs"
INVOCATION=$((INVOCATION + 1))
drive get_customer "$DURATION" >"$WORK/drain_get" &
load=$!
sleep 1
drain
wait "$load"
DRAIN_GET=$(cat "$WORK/drain_get")
FAILED=$(sql "SELECT count(*) FROM crm_webhook_deliveries WHERE status <> 1")
RATE=$(awk -v n="$DELIVERIES" -v s="$DRAINED" 'BEGIN {printf "%.0f", n / s}')
log "drained $DELIVERIES deliveries in ${DRAINED}s ($RATE/s) under load; not delivered: $FAILED"

log "live: create while each event is delivered"
before=$(cat "$WORK/received")
INVOCATION=$((INVOCATION + 1))
LIVE_CREATE=$(drive create "$DURATION")
for _ in $(seq 1 300); do
    [ "$(sql "SELECT count(*) FROM crm_webhook_deliveries WHERE status = 0")" = 0 ] && break
    sleep 0.2
done
LIVE_DELIVERED=$(($(cat "$WORK/received") - before))
LIVE_PENDING=$(sql "SELECT count(*) FROM crm_webhook_deliveries WHERE status = 0")

row() {
    printf '| %s | %.0f | %.2f | %.2f | %s |\n' "$1" "$(num rps "$2")" \
        "$(awk -v u="$(num p50_us "$2")" 'BEGIN {print u / 1000}')" \
        "$(awk -v u="$(num p99_us "$2")" 'BEGIN {print u / 1000}')" "$(num errors_status "$2")"
}
table() {
    echo "| phase | req/s | p50 ms | p99 ms | non-2xx |"
    echo "|---|---:|---:|---:|---:|"
    row "GET customer by id, no endpoint" "$BASE_GET"
    row "GET customer by id, while $DELIVERIES deliveries drain" "$DRAIN_GET"
    row "POST create customer, no endpoint" "$BASE_CREATE"
    row "POST create customer, each event delivered live" "$LIVE_CREATE"
    echo
    echo "- Drain with no other load: $DELIVERIES deliveries in ${IDLE_DRAINED} s, **$IDLE_RATE deliveries/s**, $IDLE_CPU µs of CPU per delivery on the whole machine, of which the server $IDLE_CPU_SERVER µs, PostgreSQL $IDLE_CPU_PG µs and the receiver $IDLE_CPU_RECEIVER µs (the rest: the kernel, this script's polling)."
    echo "- Drain while GET customer runs: $DELIVERIES deliveries in ${DRAINED} s, **$RATE deliveries/s**; not delivered at the end: $FAILED. Concurrency: ${BENCH_WEBHOOK_ENDPOINT_CONCURRENCY:-4} per endpoint, ${BENCH_WEBHOOK_CONCURRENCY:-32} in all."
    echo "- Live: $(num requests "$LIVE_CREATE") customers created, $LIVE_DELIVERED deliveries received during and after the phase, $LIVE_PENDING still pending when it was read."
}
table

KEEP_MARKER='<!-- bench/webhooks.sh rewrites everything above this line and keeps everything below it. -->'
if [ "$OUTPUT" != - ]; then
    {
        echo "# Webhook benchmark"
        echo
        echo "Written by \`bench/webhooks.sh\` (settings in its header)."
        echo
        echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, load average before the run $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "- Server: release build at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)'), PostgreSQL, $POOL_SIZE pool connections, RUST_LOG=$RUST_LOG_LEVEL; receiver bench/receiver.py; server, receiver, PostgreSQL and wrk share the machine"
        echo "- Load: $CONNECTIONS connections, $THREADS wrk threads, ${DURATION}s per phase; $(sql "SELECT count(*) FROM customers") customers"
        echo
        table
        echo
        if [ -f "$OUTPUT" ] && grep -qF "$KEEP_MARKER" "$OUTPUT"; then
            awk -v m="$KEEP_MARKER" 'index($0, m) {keep = 1} keep' "$OUTPUT"
        else
            echo "$KEEP_MARKER"
        fi
    } >"$WORK/out.md"
    mv "$WORK/out.md" "$OUTPUT"
    log "wrote $OUTPUT"
fi
