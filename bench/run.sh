#!/usr/bin/env bash
# The performance benchmark: one command, `bench/run.sh`.
#
# Builds crm-server in release, creates a fresh database, migrates it, seeds
# a million customers in SQL (bench/seed.sql), starts the server, gets a
# token, and drives each scenario with wrk (bench/load.lua) at a fixed
# concurrency, after a select-only pgbench on its own small database as the
# reference. Prints the table and writes it, with the machine and the
# targets, to docs/benchmarks.md (keeping the hand-written analysis below its
# marker line), and EXPLAIN (ANALYZE, BUFFERS) of the list queries to
# docs/query-plans.md. Stops the server and drops its databases on exit.
#
# Scenarios: pgbench get_customer list_page1 list_page1000 list_segment
# list_search_mobile list_search_name get_segment create create_idempotent
# update segment_add fresh
#
# `fresh` runs last, against a database of its own: a new, migrated database
# with autovacuum off on its tables (so no ANALYZE runs), into which
# customers are created through the API (wrk, create, BENCH_FRESH_SECONDS)
# and added to a new segment (100 per request); the list filtered by that
# segment is then measured at once, as a shop that imports its customers and
# starts serving right away would see it.
#
# Settings (environment):
#   BENCH_DURATION=15        seconds measured per scenario
#   BENCH_WARMUP=3           seconds of unmeasured load before each scenario
#   BENCH_CONNECTIONS=32     concurrent connections (wrk and pgbench)
#   BENCH_THREADS=2          load generator threads
#   BENCH_CUSTOMERS=1000000  customers to seed
#   BENCH_PG=postgres://postgres@127.0.0.1:5432   the PostgreSQL server
#   BENCH_DB=crm_bench       the database created (and dropped) for the run
#   BENCH_PORT=18080         where the server listens (127.0.0.1)
#   BENCH_SCENARIOS="..."    a space-separated subset of the scenarios
#   BENCH_OUTPUT=docs/benchmarks.md, BENCH_PLANS=docs/query-plans.md
#                            where the report goes ("-" for nowhere)
#   BENCH_REUSE_DB=1         keep an already seeded BENCH_DB (development)
#   BENCH_KEEP_DB=1          do not drop the databases at the end
#   BENCH_RUST_LOG=info      the server's log level (it logs every request)
#   BENCH_POOL_SIZE=10       the server's database connections
#   BENCH_FRESH_SECONDS=3    how long `fresh` creates customers before it measures
#   BENCH_BACKEND=postgres   or `sqlite`: the server on an embedded SQLite file
#                            (seeded by bench/seed-sqlite.sh with the same data,
#                            BENCH_CUSTOMERS defaulting to 100000; the file is
#                            BENCH_SQLITE_FILE=/tmp/crm_bench.sqlite3, reused
#                            with BENCH_REUSE_DB=1); pgbench -S stays the
#                            reference; `fresh` and the query plans are skipped;
#                            the report goes to docs/benchmarks-sqlite.md
#   BENCH_BIN=path           run this crm-server binary instead of building
#                            one (to compare builds of other commits)
#   BENCH_LABEL=text         how the report names the server build
#
# Needs: cargo, psql and pgbench (postgresql-client), curl, and wrk (installed
# with apt-get when missing). Sends traffic only to 127.0.0.1.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
BACKEND=${BENCH_BACKEND:-postgres}
case "$BACKEND" in
    postgres) CUSTOMERS=${BENCH_CUSTOMERS:-1000000} ;;
    sqlite) CUSTOMERS=${BENCH_CUSTOMERS:-100000} ;;
    *) echo "bench: BENCH_BACKEND must be postgres or sqlite" >&2; exit 2 ;;
esac
SQLITE_FILE=${BENCH_SQLITE_FILE:-${TMPDIR:-/tmp}/crm_bench.sqlite3}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-crm_bench}
PGBENCH_DB=${DB}_pgbench
FRESH_DB=${DB}_fresh
FRESH_SECONDS=${BENCH_FRESH_SECONDS:-3}
FRESH_SEGMENT=
PORT=${BENCH_PORT:-18080}
if [ "$BACKEND" = sqlite ]; then
    OUTPUT=${BENCH_OUTPUT:-docs/benchmarks-sqlite.md}
    PLANS=-
else
    OUTPUT=${BENCH_OUTPUT:-docs/benchmarks.md}
    PLANS=${BENCH_PLANS:-docs/query-plans.md}
fi
# Relative to the repository root, like the defaults.
case "$OUTPUT" in -|/*) ;; *) OUTPUT=$ROOT/$OUTPUT ;; esac
case "$PLANS" in -|/*) ;; *) PLANS=$ROOT/$PLANS ;; esac
RUST_LOG_LEVEL=${BENCH_RUST_LOG:-info}
POOL_SIZE=${BENCH_POOL_SIZE:-10}
ALL_SCENARIOS="pgbench get_customer list_page1 list_page1000 list_segment list_search_mobile
list_search_name get_segment create create_idempotent update segment_add fresh"
SCENARIOS=${BENCH_SCENARIOS:-$ALL_SCENARIOS}
RUN_ID=$((RANDOM % 1000))
INVOCATION=0

BASE=http://127.0.0.1:$PORT
DB_URL=$PG/$DB
[ "$BACKEND" = sqlite ] && DB_URL=$SQLITE_FILE
ADMIN_URL=$PG/postgres

for name in $SCENARIOS; do
    case " $(echo $ALL_SCENARIOS) " in
        *" $name "*) ;;
        *) echo "bench: unknown scenario $name (known: $(echo $ALL_SCENARIOS))" >&2; exit 2 ;;
    esac
done
case "$DB" in
    crm_test_* | crm_tpl_* | postgres | template0 | template1)
        echo "bench: refusing to use database $DB" >&2; exit 2 ;;
esac

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crm-bench.XXXXXX")
SERVER_PID=
LOAD_PID=

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    stop_server
    if [ "${BENCH_KEEP_DB:-0}" != 1 ] && [ "${BENCH_REUSE_DB:-0}" != 1 ] &&
        [ "$BACKEND" = sqlite ]; then
        rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm"
    elif [ "${BENCH_KEEP_DB:-0}" != 1 ] && [ "${BENCH_REUSE_DB:-0}" != 1 ]; then
        psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" \
            >/dev/null 2>&1 || true
    fi
    if [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
        psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$PGBENCH_DB\" WITH (FORCE)" \
            -c "DROP DATABASE IF EXISTS \"$FRESH_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ $status -ne 0 ] && [ -s "$WORK/server.log" ]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 20 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit $status
}

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -----------------------------------------------------------------

for tool in cargo psql pgbench curl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    if ! apt-get install -y wrk >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y wrk >/dev/null
    fi
fi

# --- build -----------------------------------------------------------------

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
    [ -x "$BIN" ] || { echo "bench: BENCH_BIN $BIN is not executable" >&2; exit 2; }
else
    log "building crm-server (release)"
    cargo build --release -p crm-server >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/crm-server
fi

# --- databases -------------------------------------------------------------

seeded=0
if [ "$BACKEND" = sqlite ]; then
    if [ "${BENCH_REUSE_DB:-0}" = 1 ] && [ -s "$SQLITE_FILE" ]; then
        log "reusing $SQLITE_FILE"
        SEED_SECONDS=
    else
        command -v sqlite3 >/dev/null || { echo "bench: sqlite3 is required" >&2; exit 1; }
        log "seeding $CUSTOMERS customers into $SQLITE_FILE (bench/seed-sqlite.sh)"
        seed_start=$SECONDS
        bench/seed-sqlite.sh "$BIN" "$SQLITE_FILE" "$CUSTOMERS" "$PG" >"$WORK/seed.out"
        SEED_SECONDS=$((SECONDS - seed_start))
        log "seeded in ${SEED_SECONDS}s"
    fi
    COUNTS=$(sqlite3 -separator ' ' "$SQLITE_FILE" "SELECT (SELECT count(*) FROM customers),
        (SELECT count(*) FROM customer_tags), (SELECT count(*) FROM addresses),
        (SELECT count(*) FROM customer_coupons), (SELECT count(*) FROM segments),
        (SELECT count(*) FROM segment_memberships)")
    COUNTS="$COUNTS $(du -m "$SQLITE_FILE" | cut -f1)MB"
else
    if [ "${BENCH_REUSE_DB:-0}" = 1 ] &&
        [ "$(psql -X -At "$ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" = 1 ]; then
        log "reusing database $DB"
        seeded=1
    fi
    if [ $seeded = 0 ]; then
        log "creating database $DB"
        psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" \
            -c "CREATE DATABASE \"$DB\"" >/dev/null
        DATABASE_URL=$DB_URL RUST_LOG=warn "$BIN" migrate >&2
        log "seeding $CUSTOMERS customers (bench/seed.sql)"
        seed_start=$SECONDS
        psql -X -q "$DB_URL" -v customers="$CUSTOMERS" -f bench/seed.sql >"$WORK/seed.out"
        SEED_SECONDS=$((SECONDS - seed_start))
        log "seeded in ${SEED_SECONDS}s: $(tail -n 3 "$WORK/seed.out" | head -n 1 | tr -s ' ')"
    else
        SEED_SECONDS=
    fi
    # The seed wrote gigabytes of WAL: checkpoint now, not during a scenario.
    psql -X -q "$DB_URL" -c CHECKPOINT >/dev/null 2>&1 || true
    COUNTS=$(psql -X -At -F ' ' "$DB_URL" -c "SELECT (SELECT count(*) FROM customers),
        (SELECT count(*) FROM customer_tags), (SELECT count(*) FROM addresses),
        (SELECT count(*) FROM customer_coupons), (SELECT count(*) FROM segments),
        (SELECT count(*) FROM segment_memberships),
        pg_size_pretty(pg_database_size(current_database()))")
fi
read -r N_CUSTOMERS N_TAGS N_ADDRESSES N_COUPONS N_SEGMENTS N_MEMBERS DB_SIZE <<<"$COUNTS"

# --- CPU accounting ----------------------------------------------------------

# CPU time (clock ticks) of the server, of the PostgreSQL backends serving
# database $1 (the server's pool, or pgbench's connections), and of the whole
# machine, so each scenario can say where its time went. (Other databases on
# the same PostgreSQL, such as other test runs, are not counted in the
# middle figure; they are in the last.)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    local total=0 pid
    for pid in $(psql -X -At "$ADMIN_URL" -c "SELECT pid FROM pg_stat_activity
            WHERE datname = '$1' AND backend_type = 'client backend'" 2>/dev/null); do
        total=$((total + $(proc_ticks "$pid")))
    done
    echo "$total"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
cpu_snapshot() {
    local server=0
    [ -n "$SERVER_PID" ] && server=$(proc_ticks "$SERVER_PID")
    echo "$server $(pg_ticks "$1") $(busy_ticks)"
}
# cpu_fields BEFORE AFTER REQUESTS: the JSON fields of CPU µs per request.
cpu_fields() {
    awk -v b="$1" -v a="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {
        split(b, x, " "); split(a, y, " "); f = 1e6 / hz / (n > 0 ? n : 1)
        printf "\"cpu_server_us\": %.0f, \"cpu_pg_us\": %.0f, \"cpu_all_us\": %.0f",
            (y[1] - x[1]) * f, (y[2] - x[2]) * f, (y[3] - x[3]) * f }'
}

# --- the reference: pgbench -S ---------------------------------------------

PGBENCH_TPS=
declare -A RESULT

num() { sed -n "s/.*\"$1\": \(-\{0,1\}[0-9.]*\).*/\1/p" <<<"$2"; }

run_pgbench() {
    log "pgbench -S: initialising $PGBENCH_DB"
    psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$PGBENCH_DB\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$PGBENCH_DB\"" >/dev/null
    pgbench -i -q -s 1 "$PG/$PGBENCH_DB" >/dev/null 2>&1
    log "pgbench -S: warm-up ${WARMUP}s, then ${DURATION}s at $CONNECTIONS connections"
    if [ "$WARMUP" -gt 0 ]; then
        pgbench -S -n -c "$CONNECTIONS" -j "$THREADS" -T "$WARMUP" "$PG/$PGBENCH_DB" \
            >/dev/null 2>&1
    fi
    # pgbench's backends exit with it, taking their CPU times along: sample
    # them while it runs, from its second second to a second before its end.
    # (Runs shorter than 4 s report no CPU figures for pgbench.)
    local before="0 0 0" after="0 0 0" t0=0 t1=0 window=$((DURATION - 2))
    (cd "$WORK" && pgbench -S -n -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" \
        --log --sampling-rate=0.05 --log-prefix=pgbench_log "$PG/$PGBENCH_DB" \
        >"$WORK/pgbench.out" 2>&1) &
    LOAD_PID=$!
    if [ "$DURATION" -ge 4 ]; then
        sleep 1
        t0=$(date +%s.%N)
        before=$(cpu_snapshot "$PGBENCH_DB")
        sleep "$window"
        t1=$(date +%s.%N)
        after=$(cpu_snapshot "$PGBENCH_DB")
    fi
    wait "$LOAD_PID" || { LOAD_PID=; cat "$WORK/pgbench.out" >&2; exit 1; }
    LOAD_PID=
    PGBENCH_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.out" | tail -n 1)
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
    # Per-transaction latencies (µs, 3rd column) of a 5 % sample.
    cat "$WORK"/pgbench_log.* 2>/dev/null | awk '{print $3}' | sort -n >"$WORK/pgbench.lat"
    local n p50 p99
    n=$(wc -l <"$WORK/pgbench.lat")
    p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 {print; exit}' "$WORK/pgbench.lat")
    p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 {print; exit}' "$WORK/pgbench.lat")
    # Transactions in the sampled window, at the measured rate.
    local transactions
    transactions=$(awk -v a="$t0" -v b="$t1" -v r="$PGBENCH_TPS" 'BEGIN {printf "%.0f", (b - a) * r}')
    RESULT[pgbench]="BENCH_RESULT {\"rps\": $PGBENCH_TPS, \"p50_us\": ${p50:-0}, \"p99_us\": ${p99:-0}, \"errors_status\": ${failed:-0}, \"socket\": 0, \"rss_kb\": 0, $(cpu_fields "$before" "$after" "$transactions")}"
    log "pgbench -S: $PGBENCH_TPS tps"
}

case " $(echo $SCENARIOS) " in *" pgbench "*) run_pgbench ;; esac

# --- the server ------------------------------------------------------------

# start_server DATABASE_URL: starts crm-server on it and gets a token
# ($TOKEN) for a new client.
start_server() {
    local url=$1
    log "starting crm-server on 127.0.0.1:$PORT"
    DATABASE_URL=$url CRM_BIND=127.0.0.1:$PORT RUST_LOG=$RUST_LOG_LEVEL \
        CRM_DB_POOL_SIZE=$POOL_SIZE CRM_RATE_LIMIT_PER_SECOND=0 \
        "$BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local ready=0
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    [ $ready = 1 ] || { echo "bench: the server did not become ready" >&2; exit 1; }

    local client client_id client_secret
    client=$(DATABASE_URL=$url RUST_LOG=warn "$BIN" client create --name "bench-$RUN_ID" \
        --scope "crm:read crm:write")
    client_id=$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' <<<"$client")
    client_secret=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' <<<"$client")
    TOKEN=$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials \
        -d scope="crm:read crm:write" "$BASE/oauth/token/" |
        sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
    [ -n "$TOKEN" ] || { echo "bench: could not obtain a token" >&2; exit 1; }
}

start_server "$DB_URL"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
RSS_IDLE_KB=$(rss_kb)

# One request of each scenario with curl, checking its exact status, so a
# broken scenario stops the run instead of measuring error pages.
smoke() {
    local name=$1 expect=$2 method=$3 path=$4 body=${5:-}
    local status
    if [ -n "$body" ]; then
        status=$(curl -sS -o "$WORK/smoke.json" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data "$body" "$BASE$path")
    else
        status=$(curl -sS -o "$WORK/smoke.json" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $TOKEN" "$BASE$path")
    fi
    if [ "$status" != "$expect" ]; then
        echo "bench: $name: $method $path answered $status, expected $expect:" >&2
        head -c 500 "$WORK/smoke.json" >&2; echo >&2
        exit 1
    fi
}
smoke get_customer 200 GET /api/crm/customer/1/
smoke list_page1 200 GET '/api/crm/customer/?page=1'
smoke list_page1000 200 GET '/api/crm/customer/?page=1000'
smoke list_segment 200 GET '/api/crm/customer/?segment=100'
smoke list_search 200 GET '/api/crm/customer/?search=wang%20wei'
smoke get_segment 200 GET /api/crm/segment/2/
smoke update 200 PUT /api/crm/customer/1/ '{"note": "smoke test"}'
smoke segment_add 200 POST /api/crm/segment/101/segment_customer/ '[{"customer_id": 1}]'
curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $TOKEN" \
    "$BASE/api/crm/segment/101/segment_customer/?customer__in=1"

# --- scenarios -------------------------------------------------------------

# wrk for $2 seconds of scenario $1; stores its BENCH_RESULT line, with the
# rate and the peak server RSS seen meanwhile (sampled every 0.2 s), in
# RESULT[$1] unless $3 is "warm-up".
drive() {
    local name=$1 seconds=$2 mode=${3:-measure} peak=0 rss
    INVOCATION=$((INVOCATION + 1))
    local before after
    before=$(cpu_snapshot "$DB")
    BENCH_SCENARIO=$name BENCH_TOKEN=$TOKEN BENCH_CUSTOMERS=$N_CUSTOMERS \
        BENCH_FRESH_SEGMENT=$FRESH_SEGMENT \
        BENCH_RUN=$((RUN_ID * 100 + INVOCATION)) \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout 10s \
        -s bench/load.lua "$BASE" >"$WORK/wrk.out" 2>&1 &
    LOAD_PID=$!
    local deadline=$((SECONDS + seconds + 30))
    while kill -0 "$LOAD_PID" 2>/dev/null; do
        rss=$(rss_kb)
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss
        if [ $SECONDS -gt $deadline ]; then kill "$LOAD_PID" 2>/dev/null || true; fi
        sleep 0.2
    done
    local wrk_status=0
    wait "$LOAD_PID" || wrk_status=$?
    LOAD_PID=
    after=$(cpu_snapshot "$DB")
    local line
    line=$(grep '^BENCH_RESULT' "$WORK/wrk.out" || true)
    if [ $wrk_status -ne 0 ] || [ -z "$line" ]; then
        echo "bench: wrk failed for $name:" >&2
        cat "$WORK/wrk.out" >&2
        exit 1
    fi
    [ "$mode" = warm-up ] && return 0
    local requests duration rps socket
    requests=$(num requests "$line")
    duration=$(num duration_us "$line")
    rps=$(awk -v r="$requests" -v d="$duration" 'BEGIN {printf "%.1f", r / (d / 1e6)}')
    socket=$(($(num errors_connect "$line") + $(num errors_read "$line") +
        $(num errors_write "$line") + $(num errors_timeout "$line")))
    RESULT[$name]="${line%\}}, \"rps\": $rps, \"socket\": $socket, \"rss_kb\": $peak, $(cpu_fields "$before" "$after" "$requests")}"
}

# The `fresh` scenario's database: customers created through the API and
# put in a segment, no ANALYZE (autovacuum is off on its tables). Switches
# the server, $DB and $TOKEN over to it.
prepare_fresh() {
    stop_server
    log "fresh: creating database $FRESH_DB, autovacuum off on its tables"
    psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$FRESH_DB\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$FRESH_DB\"" >/dev/null
    DATABASE_URL=$PG/$FRESH_DB RUST_LOG=warn "$BIN" migrate >&2
    psql -X -q -At "$PG/$FRESH_DB" -c "SELECT format('ALTER TABLE %I SET (autovacuum_enabled = off)', relname)
        FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace" |
        psql -X -q "$PG/$FRESH_DB" >/dev/null
    start_server "$PG/$FRESH_DB"
    DB=$FRESH_DB
    log "fresh: creating customers through the API for ${FRESH_SECONDS}s"
    drive create "$FRESH_SECONDS" warm-up
    local segment ids page
    segment=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data '{"title": "fresh"}' \
        "$BASE/api/crm/segment/" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p' | head -n 1)
    [ -n "$segment" ] || { echo "bench: fresh: could not create a segment" >&2; exit 1; }
    FRESH_SEGMENT=$segment
    # Every customer into the segment, 100 per request, in id order.
    psql -X -At "$PG/$FRESH_DB" -c "SELECT id FROM customers ORDER BY id" >"$WORK/fresh.ids"
    FRESH_CUSTOMERS=$(wc -l <"$WORK/fresh.ids")
    split -l 100 "$WORK/fresh.ids" "$WORK/fresh.chunk."
    for page in "$WORK"/fresh.chunk.*; do
        ids=$(awk '{printf "%s{\"customer_id\": %s}", (NR > 1 ? ", " : ""), $1}' "$page")
        curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' --data "[$ids]" \
            "$BASE/api/crm/segment/$segment/segment_customer/"
    done
    log "fresh: $FRESH_CUSTOMERS customers in segment $segment; $(psql -X -At "$PG/$FRESH_DB" \
        -c "SELECT 'last analyze of customers: ' || coalesce(last_analyze::text, last_autoanalyze::text, 'never')
            FROM pg_stat_user_tables WHERE relname = 'customers'")"
}

for name in $SCENARIOS; do
    [ "$name" = pgbench ] && continue
    if [ "$name" = fresh ] && [ "$BACKEND" = sqlite ]; then
        log "fresh: skipped on SQLite (it measures PostgreSQL's planning without statistics)"
        continue
    fi
    [ "$name" = fresh ] && prepare_fresh
    log "$name: warm-up ${WARMUP}s, then ${DURATION}s at $CONNECTIONS connections"
    if [ "$WARMUP" -gt 0 ]; then drive "$name" "$WARMUP" warm-up; fi
    drive "$name" "$DURATION"
    log "$name: $(num rps "${RESULT[$name]}") req/s, p50 $(num p50_us "${RESULT[$name]}") µs, p99 $(num p99_us "${RESULT[$name]}") µs, errors $(num errors_status "${RESULT[$name]}")/$(num socket "${RESULT[$name]}")"
done

RSS_HWM_KB=$(hwm_kb)
RSS_END_KB=$(rss_kb)
RSS_PEAK_KB=0
for name in $SCENARIOS; do
    rss=$(num rss_kb "${RESULT[$name]}")
    [ "${rss:-0}" -gt "$RSS_PEAK_KB" ] && RSS_PEAK_KB=$rss
done

# --- query plans -------------------------------------------------------------

# The list queries as the server sends them (Diesel's SQL, parameters
# inlined), explained on the seeded database after the load.
explain_all() {
    local seg=$1 term=$2 name=$3 ids=$4
    local exists_seg="EXISTS (SELECT \"segment_memberships\".\"segment_id\", \"segment_memberships\".\"customer_id\" FROM \"segment_memberships\" WHERE ((\"segment_memberships\".\"customer_id\" = \"customers\".\"id\") AND (\"segment_memberships\".\"segment_id\" = $seg)))"
    local search="((lower(\"customers\".\"full_name\") LIKE '%$term%' ESCAPE '\\' OR lower(\"customers\".\"mobile\") LIKE '%$term%' ESCAPE '\\') OR lower(\"customers\".\"email\") LIKE '%$term%' ESCAPE '\\')"
    local name_search="((lower(\"customers\".\"full_name\") LIKE '%$name%' ESCAPE '\\' OR lower(\"customers\".\"mobile\") LIKE '%$name%' ESCAPE '\\') OR lower(\"customers\".\"email\") LIKE '%$name%' ESCAPE '\\')"
    cat <<EOF
unfiltered count, as before this change (now answered by customer_count_shards)|SELECT COUNT(*) FROM "customers"
unfiltered count, as the server now asks it (it adds up the 16 shard rows)|SELECT "customer_count_shards"."n" FROM "customer_count_shards"
page 1 ids|SELECT "customers"."id" FROM "customers" ORDER BY "customers"."id" DESC LIMIT 10 OFFSET 0
page 1000 ids|SELECT "customers"."id" FROM "customers" ORDER BY "customers"."id" DESC LIMIT 10 OFFSET 9990
segment=$seg count, as before this change (now answered by segment_member_counts)|SELECT COUNT(*) FROM "customers" WHERE $exists_seg
segment=$seg count, as the server now asks it|SELECT "segment_member_counts"."n" FROM "segment_member_counts" WHERE ("segment_member_counts"."segment_id" = $seg)
segment=$seg page 1 ids, as before (a semi-join of customers, planned from statistics)|SELECT "customers"."id" FROM "customers" WHERE $exists_seg ORDER BY "customers"."id" DESC LIMIT 10 OFFSET 0
segment=$seg page 1 ids, as the server now asks them (the membership's primary key)|SELECT "segment_memberships"."customer_id" FROM "segment_memberships" WHERE ("segment_memberships"."segment_id" = $seg) ORDER BY "segment_memberships"."customer_id" DESC LIMIT 10 OFFSET 0
search=$term (mobile fragment) count|SELECT COUNT(*) FROM "customers" WHERE $search
search=$term (mobile fragment) page 1 ids|SELECT "customers"."id" FROM "customers" WHERE $search ORDER BY ("customers"."id" * 0) ASC, "customers"."id" DESC LIMIT 10 OFFSET 0
search=$term (mobile fragment) page 1 ids, ordered as before this change|SELECT "customers"."id" FROM "customers" WHERE $search ORDER BY "customers"."id" DESC LIMIT 10 OFFSET 0
search=$name (name) count, as before (mobile and e-mail searched too)|SELECT COUNT(*) FROM "customers" WHERE $name_search
search=$name (name) page 1 ids with the count, as the server now asks them (a name with a space cannot be in a mobile or an e-mail)|SELECT "customers"."id", COUNT(*) OVER () FROM "customers" WHERE lower("customers"."full_name") LIKE '%$name%' ESCAPE '\\' ORDER BY ("customers"."id" * 0) ASC, "customers"."id" DESC LIMIT 10 OFFSET 0
EOF
}

write_plans() {
    local out=$1 term name ids
    # A mobile fragment and a name that exist (customer 123457's).
    term=$(psql -X -At "$DB_URL" -c "SELECT substr(mobile, 4, 7) FROM customers WHERE mobile <> '' ORDER BY id LIMIT 1 OFFSET 123456")
    name=$(psql -X -At "$DB_URL" -c "SELECT lower(full_name) FROM customers ORDER BY id LIMIT 1 OFFSET 123456")
    ids=$(psql -X -At "$DB_URL" -c "SELECT string_agg(id::text, ',') FROM (SELECT id FROM customers ORDER BY id DESC LIMIT 10) AS page")
    {
        echo "# Query plans of the list queries"
        echo
        echo "Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d) against its seeded database"
        echo "($N_CUSTOMERS customers, $N_MEMBERS segment memberships), right after the load."
        echo "Each is \`EXPLAIN (ANALYZE, BUFFERS)\` of a query the server sends for a list"
        echo "request (Diesel's text, with the parameters written in). On PostgreSQL a list"
        echo "page is one statement (crates/crm-postgres/src/documents.rs) that embeds the"
        echo "count and the page-id query shown here and then builds the page's items"
        echo "(customers with their tags, addresses and segments) as JSON by primary key."
        echo "See docs/benchmarks.md for what they mean."
        while IFS='|' read -r title sql; do
            echo
            echo "## $title"
            echo
            echo '```sql'
            echo "$sql;"
            echo '```'
            echo
            echo '```'
            psql -X -q -At "$DB_URL" -c "SET statement_timeout = '60s'" \
                -c "EXPLAIN (ANALYZE, BUFFERS) $sql" 2>&1
            echo '```'
        done < <(explain_all 100 "$term" "$name" "$ids")
    } >"$out"
}

if [ "$PLANS" != - ]; then
    log "capturing EXPLAIN (ANALYZE, BUFFERS) into $PLANS"
    write_plans "$WORK/plans.md"
fi

stop_server
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_NOTE="peak VmHWM $((RSS_HWM_KB / 1024)) MB"

# --- report ------------------------------------------------------------------

label() {
    case $1 in
        pgbench) echo 'pgbench -S (reference)' ;;
        get_customer) echo 'GET customer by id (random over all)' ;;
        list_page1) echo 'GET list page 1' ;;
        list_page1000) echo 'GET list page 1000' ;;
        list_segment) echo 'GET list segment=100 (50,000 members)' ;;
        list_search_mobile) echo 'GET list search=<7 digits of a mobile>' ;;
        list_search_name) echo 'GET list search=<full name>' ;;
        get_segment) echo 'GET segment with 1,000 members' ;;
        create) echo 'POST create customer' ;;
        create_idempotent) echo 'POST create customer, each with its own Idempotency-Key' ;;
        update) echo 'PUT update customer (random)' ;;
        segment_add) echo 'POST segment_customer, 100 ids' ;;
        fresh) echo "fresh: GET list segment=<all ${FRESH_CUSTOMERS:-?} customers created through the API>, no ANALYZE" ;;
    esac
}

ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1000}'; }

table() {
    echo "| scenario | req/s | p50 ms | p99 ms | of pgbench TPS | non-2xx | socket errors | server RSS peak | CPU µs/req: server | PostgreSQL | whole machine | status |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    local name line rps share status rss cpu_server
    for name in $SCENARIOS; do
        line=${RESULT[$name]}
        rps=$(num rps "$line")
        if [ -n "$PGBENCH_TPS" ]; then
            share=$(awk -v a="$rps" -v b="$PGBENCH_TPS" 'BEGIN {printf "%.1f %%", 100 * a / b}')
        else
            share="n/a"
        fi
        status=ok
        if [ "$(num errors_status "$line")" != 0 ] || [ "$(num socket "$line")" != 0 ]; then
            status="**ERRORS**"
        fi
        rss=$(num rss_kb "$line")
        cpu_server=$(num cpu_server_us "$line")
        if [ "$name" = pgbench ]; then rss='—'; cpu_server='—'; else rss="$((rss / 1024)) MB"; fi
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$(label "$name")" "$rps" \
            "$(ms "$(num p50_us "$line")")" "$(ms "$(num p99_us "$line")")" "$share" \
            "$(num errors_status "$line")" "$(num socket "$line")" "$rss" "$cpu_server" \
            "$(num cpu_pg_us "$line")" "$(num cpu_all_us "$line")" "$status"
    done
}

# target NAME: "met" / "missed" / "not run", with the measured value.
check() {
    local what=$1 name=$2 op=$3 limit=$4 line value verdict
    line=${RESULT[$name]:-}
    if [ -z "$line" ] || { [ "$what" = share ] && [ -z "$PGBENCH_TPS" ]; }; then
        echo "not run"; return
    fi
    case $what in
        p99) value=$(ms "$(num p99_us "$line")") ;;
        share) value=$(awk -v a="$(num rps "$line")" -v b="$PGBENCH_TPS" \
            'BEGIN {printf "%.1f", 100 * a / b}') ;;
        rate) value=$(awk -v a="$(num rps "$line")" 'BEGIN {printf "%.0f", a}') ;;
    esac
    verdict=$(awk -v v="$value" -v l="$limit" -v op="$op" \
        'BEGIN {ok = (op == "<") ? (v < l) : (v >= l); print ok ? "met" : "**missed**"}')
    if [ "$(num errors_status "$line")" != 0 ] || [ "$(num socket "$line")" != 0 ]; then
        verdict="**missed** (errors)"
    fi
    case $what in
        p99) echo "$verdict (p99 $value ms)" ;;
        share) echo "$verdict ($value % of pgbench -S)" ;;
        rate) echo "$verdict ($value req/s)" ;;
    esac
}

targets() {
    local rss_verdict=met
    [ $((RSS_PEAK_KB / 1024)) -lt 50 ] || rss_verdict="**missed**"
    echo "| target | result |"
    echo "|---|---|"
    echo "| GET by id ≥ 25 % of pgbench -S TPS (stretch 40 %) | $(check share get_customer '>=' 25) |"
    echo "| GET by id p99 < 10 ms | $(check p99 get_customer '<' 10) |"
    echo "| GET list page 1 ≥ 15 % of pgbench -S TPS | $(check share list_page1 '>=' 15) |"
    echo "| GET list page 1 p99 < 15 ms | $(check p99 list_page1 '<' 15) |"
    echo "| GET list ?segment= ≥ 15 % of pgbench -S TPS | $(check share list_segment '>=' 15) |"
    echo "| GET list ?segment= p99 < 15 ms | $(check p99 list_segment '<' 15) |"
    echo "| fresh: GET list ?segment= ≥ 15 % of pgbench -S TPS | $(check share fresh '>=' 15) |"
    echo "| fresh: GET list ?segment= p99 < 15 ms | $(check p99 fresh '<' 15) |"
    echo "| POST create ≥ 12 % of pgbench -S TPS | $(check share create '>=' 12) |"
    echo "| PUT update ≥ 10 % of pgbench -S TPS | $(check share update '>=' 10) |"
    echo "| search by a common full name p99 < 50 ms | $(check p99 list_search_name '<' 50) |"
    echo "| GET segment with 1,000 members ≥ 700 req/s (5 × 140) | $(check rate get_segment '>=' 700) |"
    echo "| server RSS < 50 MB in every scenario | $rss_verdict ($((RSS_PEAK_KB / 1024)) MB peak sampled, $RSS_NOTE) |"
}

machine() {
    local cpu mem kernel pgv wrkv
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    kernel=$(uname -sr)
    pgv=$(psql -X -At "$ADMIN_URL" -c "SHOW server_version" 2>/dev/null | awk '{print $1}')
    wrkv=$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $2}')
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) CPUs ($cpu), $mem memory, $kernel; load average before the run $LOAD_BEFORE (at its end, with the benchmark's own load: $LOAD_AFTER)"
    [ "$BACKEND" = sqlite ] && echo "- Backend: **SQLite** (embedded, the file $SQLITE_FILE); PostgreSQL below only runs the pgbench reference"
    echo "- PostgreSQL $pgv on 127.0.0.1 (shared_buffers $(psql -X -At "$ADMIN_URL" -c 'SHOW shared_buffers'), synchronous_commit $(psql -X -At "$ADMIN_URL" -c 'SHOW synchronous_commit')); load generator wrk $wrkv; server, PostgreSQL and load generator share the machine"
    echo "- Server: ${BENCH_LABEL:-release build at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')}, $POOL_SIZE pool connections, workers = one per core, RUST_LOG=$RUST_LOG_LEVEL (one log line per request)"
    echo "- Data: $N_CUSTOMERS customers, $N_TAGS tags, $N_ADDRESSES addresses, $N_COUPONS coupon holdings, $N_SEGMENTS segments with $N_MEMBERS memberships; database $DB_SIZE${SEED_SECONDS:+, seeded in ${SEED_SECONDS}s}"
    echo "- Load: $CONNECTIONS connections, $THREADS wrk threads, ${WARMUP}s warm-up then ${DURATION}s measured per scenario; server RSS idle $((RSS_IDLE_KB / 1024)) MB, after the run $((RSS_END_KB / 1024)) MB, $RSS_NOTE"
}

KEEP_MARKER='<!-- bench/run.sh rewrites everything above this line and keeps everything below it. -->'

echo
table
echo
targets
echo

if [ "$OUTPUT" != - ]; then
    {
        echo "# Benchmarks"
        echo
        if [ "$BACKEND" = sqlite ]; then
            echo "Written by \`BENCH_BACKEND=sqlite bench/run.sh\` (settings in its header): the"
            echo "embedded SQLite backend. PostgreSQL's figures: [benchmarks.md](benchmarks.md)."
        else
            echo "Written by \`bench/run.sh\` (reproduce: \`bench/run.sh\`; settings in its header)."
            echo "Query plans of the list queries: [query-plans.md](query-plans.md)."
            echo "The embedded SQLite backend: [benchmarks-sqlite.md](benchmarks-sqlite.md)."
        fi
        echo
        echo "## Last run"
        echo
        machine
        echo
        table
        echo
        echo "Latencies are wrk's (from sending a request to its whole answer), p50 and p99 over"
        echo "the measured seconds; \"of pgbench TPS\" is req/s divided by the transactions per"
        echo "second of \`pgbench -S\` (one primary-key SELECT each) at the same concurrency, on"
        echo "the same machine, in the same run. non-2xx counts answers with status ≥ 400 (every"
        echo "scenario is first checked once with curl for its exact status); socket errors are"
        echo "wrk's connect, read, write and timeout errors. RSS is the server's VmRSS sampled"
        echo "every 0.2 s during the scenario. The CPU columns divide CPU time by requests"
        echo "answered: the server process, the PostgreSQL backends of its connections, and the whole machine"
        echo "(which adds the load generator, the kernel's loopback networking and anything"
        echo "else running); 2 cores give 2,000,000 µs per second, so whole-machine µs per"
        echo "request bounds the rate (for pgbench, the PostgreSQL column is its backends)."
        echo
        echo "## Targets"
        echo
        targets
        echo
        # The analysis below the marker is written by hand: keep it.
        if [ -f "$OUTPUT" ] && grep -qF "$KEEP_MARKER" "$OUTPUT"; then
            awk -v m="$KEEP_MARKER" 'index($0, m) {keep = 1} keep' "$OUTPUT"
        else
            echo "$KEEP_MARKER"
            echo
            echo "## Analysis"
            echo
            echo "(to be written: why each missed target is missed, and what would fix it)"
        fi
    } >"$WORK/benchmarks.md"
    mv "$WORK/benchmarks.md" "$OUTPUT"
    log "wrote $OUTPUT"
fi
if [ "$PLANS" != - ] && [ -s "$WORK/plans.md" ]; then
    cp "$WORK/plans.md" "$PLANS"
    log "wrote $PLANS"
fi
