#!/usr/bin/env bash
# Peak memory of the server answering large segments (docs/benchmarks.md,
# "Segment answers and memory").
#
# Builds crm-server in release (unless SEG_BIN names a binary), creates a
# fresh PostgreSQL database, seeds SEG_SEGMENTS segments of SEG_MEMBERS
# distinct customers each (one tag per customer), starts the server and
# measures its peak RSS (VmHWM in /proc/PID/status) after one
# `GET /api/crm/segment/?page_size=SEG_SEGMENTS` (every segment on one page),
# then after SEG_ROUNDS rounds of SEG_CONCURRENCY such GETs at once. Prints
# the answer size, the seconds per round and the figures in KB. Stops the
# server and drops the database on exit.
#
# Settings (environment):
#   SEG_SEGMENTS=20  SEG_MEMBERS=10000  SEG_CONCURRENCY=8  SEG_ROUNDS=3
#   SEG_BIN=target/release/crm-server    a binary to measure instead of
#                                        building this checkout
#   SEG_PG=postgres://postgres@127.0.0.1:5432   SEG_DB=crm_bench_segments
#   SEG_PORT=18090   SEG_POOL_SIZE=10
#
# Needs: cargo (without SEG_BIN), psql and curl. Traffic goes to 127.0.0.1.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

SEGMENTS=${SEG_SEGMENTS:-20}
MEMBERS=${SEG_MEMBERS:-10000}
CONCURRENCY=${SEG_CONCURRENCY:-8}
ROUNDS=${SEG_ROUNDS:-3}
PG=${SEG_PG:-postgres://postgres@127.0.0.1:5432}
DB=${SEG_DB:-crm_bench_segments}
PORT=${SEG_PORT:-18090}
POOL_SIZE=${SEG_POOL_SIZE:-10}
BASE=http://127.0.0.1:$PORT
DB_URL=$PG/$DB
ADMIN_URL=$PG/postgres

case "$DB" in
    crm_test_* | crm_tpl_* | crm_bench | postgres | template0 | template1)
        echo "segments_memory: refusing to use database $DB" >&2; exit 2 ;;
esac

log() { printf '[segments_memory %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crm-seg-bench.XXXXXX")
SERVER_PID=

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" \
        >/dev/null 2>&1 || true
    if [ $status -ne 0 ] && [ -s "$WORK/server.log" ]; then
        tail -n 20 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${SEG_BIN:-}" ]; then
    BIN=$SEG_BIN
else
    log "building crm-server (release)"
    cargo build --release -p crm-server >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/crm-server
fi

log "creating $DB: $SEGMENTS segments of $MEMBERS customers"
psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" \
    -c "CREATE DATABASE \"$DB\"" >/dev/null
DATABASE_URL=$DB_URL RUST_LOG=warn "$BIN" migrate >&2
psql -X -q -v ON_ERROR_STOP=1 -v segments="$SEGMENTS" -v members="$MEMBERS" "$DB_URL" <<'SQL'
INSERT INTO customers (full_name, mobile, email, note, accepts_marketing, created_at, updated_at)
SELECT 'Customer ' || i, '13' || lpad(i::text, 9, '0'), 'customer' || i || '@example.com',
       '', i % 2 = 0, TIMESTAMPTZ '2026-01-01 08:00:00+00', TIMESTAMPTZ '2026-01-01 08:00:00+00'
FROM generate_series(1, :segments * :members) AS i;
INSERT INTO customer_tags (customer_id, tag) SELECT id, 'tag' || (id % 5) FROM customers;
INSERT INTO segments (title, created_at, updated_at)
SELECT 'Segment ' || s, now(), now() FROM generate_series(1, :segments) AS s;
WITH s AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM segments),
     c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM customers)
INSERT INTO segment_memberships (segment_id, customer_id)
SELECT s.id, c.id FROM s JOIN c ON c.k / :members = s.k;
ANALYZE;
SQL

log "starting the server"
DATABASE_URL=$DB_URL CRM_BIND=127.0.0.1:$PORT RUST_LOG=warn CRM_DB_POOL_SIZE=$POOL_SIZE \
    CRM_RATE_LIMIT_PER_SECOND=0 "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "segments_memory: the server exited" >&2; exit 1; }
    sleep 0.2
done
CLIENT=$(DATABASE_URL=$DB_URL RUST_LOG=warn "$BIN" client create --name segments-memory \
    --scope "crm:read crm:write")
CLIENT_ID=$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' <<<"$CLIENT")
CLIENT_SECRET=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' <<<"$CLIENT")
TOKEN=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    -d scope="crm:read crm:write" "$BASE/oauth/token/" |
    sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "segments_memory: could not obtain a token" >&2; exit 1; }

field_kb() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$SERVER_PID/status"; }
URL="$BASE/api/crm/segment/?page_size=$SEGMENTS"
get() {
    curl -fsS -o "$1" -w '%{http_code} %{size_download}\n' \
        -H "Authorization: Bearer $TOKEN" "$URL"
}

# A small request first, so the idle figure includes a warmed-up worker.
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/api/crm/customer/?page_size=1"
IDLE_RSS=$(field_kb VmRSS)
IDLE_HWM=$(field_kb VmHWM)

read -r status bytes < <(get "$WORK/one.json")
[ "$status" = 200 ] || { echo "segments_memory: answered $status" >&2; exit 1; }
members=$(grep -o '"accepts_marketing"' "$WORK/one.json" | wc -l)
[ "$members" = $((SEGMENTS * MEMBERS)) ] ||
    { echo "segments_memory: $members members in the answer, expected $((SEGMENTS * MEMBERS))" >&2; exit 1; }
ONE_HWM=$(field_kb VmHWM)

start=$(date +%s.%N)
for round in $(seq 1 "$ROUNDS"); do
    pids=()
    for i in $(seq 1 "$CONCURRENCY"); do
        get "$WORK/c$i.json" >"$WORK/c$i.status" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    for i in $(seq 1 "$CONCURRENCY"); do
        cmp -s "$WORK/one.json" "$WORK/c$i.json" ||
            { echo "segments_memory: round $round answer $i differs" >&2; exit 1; }
    done
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
MANY_HWM=$(field_kb VmHWM)
AFTER_RSS=$(field_kb VmRSS)

echo "binary:            $BIN"
echo "answer:            $bytes bytes, $members members ($SEGMENTS segments of $MEMBERS), sha256 $(sha256sum <"$WORK/one.json" | cut -c1-16)"
echo "idle:              VmRSS $IDLE_RSS KB, VmHWM $IDLE_HWM KB"
echo "after 1 GET:       VmHWM $ONE_HWM KB (+$((ONE_HWM - IDLE_HWM)) KB)"
echo "after ${ROUNDS}x$CONCURRENCY GETs:   VmHWM $MANY_HWM KB (+$((MANY_HWM - IDLE_HWM)) KB), VmRSS $AFTER_RSS KB"
echo "time:              $(echo "scale=2; $elapsed / $ROUNDS" | bc) s per round of $CONCURRENCY concurrent GETs"
