#!/usr/bin/env bash
# Measures GET /api/crm/customer/<id>/ with wrk on the cluster that
# `scripts/cluster.sh up` started, for docs/scaling.md:
#   - how a server reaches PostgreSQL: direct connections (prepared statements),
#     PgBouncer session pooling (prepared), PgBouncer transaction pooling
#     (statements unprepared) - one extra instance each, measured directly;
#   - one instance against two behind HAProxy, with the CPU seconds each
#     component used during the run.
# Usage: scripts/cluster-bench.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${CRM_CLUSTER_DIR:-/tmp/crm-cluster}
DUR=${1:-10}
CONNS=${2:-32}
CRM_SERVER=${CRM_SERVER:-$PWD/target/release/crm-server}
[ -s "$STATE/client.json" ] || { echo "bench: run scripts/cluster.sh up first" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
eval "$(bash scripts/cluster.sh env)"
# shellcheck disable=SC1091
. "$STATE/ports.env"

CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$STATE/client.json")
CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$STATE/client.json")
TOKEN=$(curl -fsS --retry 10 --retry-delay 1 -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    --data-urlencode "scope=crm:read crm:write" "$CRM_BASE_URL/oauth/token/" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# HAProxy keeps a token on one instance (it hashes the Authorization
# header), so the load uses several tokens, one per request in turn.
LUA=$STATE/bench-tokens.lua
{
    printf 'tokens = {'
    for _ in $(seq 1 16); do
        printf '"%s",' "$(curl -fsS --retry 10 --retry-delay 1 -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
            --data-urlencode "scope=crm:read" "$CRM_BASE_URL/oauth/token/" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
    done
    printf '}\n'
    cat <<'LUA'
n = 0
request = function()
    n = n + 1
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1] })
end
LUA
} >"$LUA"
ID=$(curl -fsS --retry 10 --retry-delay 1 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X POST \
    "$CRM_BASE_URL/api/crm/customer/" -d '{"full_name": "bench", "tags": ["vip"]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# CPU ticks (user+system) of processes, from /proc: `snap PIDS...` prints
# "pid:ticks ..."; `used BEFORE AFTER` the seconds between two snapshots
# (a process that started in between counts whole).
snap() {
    local pid f
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        # shellcheck disable=SC2086
        set -- $f
        printf '%s:%s ' "$pid" "$((${12} + ${13}))"
    done
}
used() {
    python3 - "$1" "$2" "$(getconf CLK_TCK)" <<'PY'
import sys
parse = lambda s: {int(p): int(t) for p, t in (x.split(":") for x in s.split())}
before, after, hz = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
print(f"{sum(t - before.get(p, 0) for p, t in after.items()) / hz:.1f}")
PY
}
# The private primary's postmaster and its children (backends, WAL writer...).
pg_pids() { local pm; pm=$(head -n 1 "$STATE/${1:-primary}/postmaster.pid"); echo "$pm $(pgrep -d ' ' -P "$pm")"; }

run() { # label url
    local label=$1 url=$2 out rps p50 p99 errs comp
    local -A pids=(
        [server1]="$(cat "$STATE/server1.pid" 2>/dev/null || true)"
        [server2]="$(cat "$STATE/server2.pid" 2>/dev/null || true)"
        [extra]="${EXTRA_PID:-}"
        [pgbouncer]="$(cat "$STATE/pgbouncer/pgbouncer.pid")"
        [haproxy]="$(cat "$STATE/haproxy/haproxy.pid")"
        [postgres]="$(pg_pids)"
        [replica]="$(pg_pids replica)"
    )
    local -A before=()
    for comp in "${!pids[@]}"; do before[$comp]=$(snap ${pids[$comp]}); done
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$LUA" "$url")
    pids[postgres]=$(pg_pids)
    pids[replica]=$(pg_pids replica)
    local cpu=""
    for comp in server1 server2 extra pgbouncer haproxy postgres replica; do
        cpu+="$comp $(used "${before[$comp]}" "$(snap ${pids[$comp]})"), "
    done
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$rps" "$p50" "$p99" "${cpu%, }" "${errs:-none}"
}

EXTRA_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
extra() { # DATABASE_URL prepared(true|false) [replica URL]
    DATABASE_URL=$1 CRM_DATABASE_DIRECT_URL="postgres://postgres@127.0.0.1:$PRIMARY_PORT/crm" \
        CRM_DATABASE_REPLICA_URL=${3:-} \
        CRM_DB_PREPARED_STATEMENTS=$2 CRM_BIND=127.0.0.1:$EXTRA_PORT CRM_DB_POOL_SIZE=10 \
        "$CRM_SERVER" serve >>"$STATE/bench-extra.log" 2>&1 &
    EXTRA_PID=$!
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$EXTRA_PORT/readyz" 2>/dev/null && return; sleep 0.2; done
    echo "bench: extra server did not start" >&2; exit 1
}
extra_stop() { kill "$EXTRA_PID"; wait "$EXTRA_PID" 2>/dev/null || true; EXTRA_PID=; }
trap '[ -n "${EXTRA_PID:-}" ] && kill "$EXTRA_PID" 2>/dev/null; true' EXIT

echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNS -d${DUR}s GET /api/crm/customer/$ID/ ($(nproc) cores)"
echo
echo '| path | req/s | p50 | p99 | CPU seconds during the run | errors |'
echo '|---|---|---|---|---|---|'
# Stop the cluster's instances during the single-server runs so they do not
# compete for the two cores; they are restarted for the HAProxy runs.
bash scripts/cluster.sh stop-server 2 >/dev/null
bash scripts/cluster.sh stop-server 1 >/dev/null
echo 0 >"$STATE/server1.pid"; echo 0 >"$STATE/server2.pid"
extra "postgres://postgres@127.0.0.1:$PRIMARY_PORT/crm" true
run "1 instance, direct to PostgreSQL, prepared" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
extra_stop
extra "postgres://postgres@127.0.0.1:$PRIMARY_PORT/crm" false
run "1 instance, direct to PostgreSQL, unprepared" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
extra_stop
extra "postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/crm_session" true
run "1 instance, PgBouncer session mode, prepared" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
extra_stop
extra "postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/crm" false
run "1 instance, PgBouncer transaction mode, unprepared" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
extra_stop
extra "postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/crm" false "postgres://postgres@127.0.0.1:$REPLICA_PORT/crm"
run "1 instance, PgBouncer transaction mode, unprepared, reads from the replica" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
extra_stop
# What the setting prevents: named prepared statements through transaction
# pooling fail once a transaction lands on a server connection that has not
# prepared them (non-2xx responses).
extra "postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/crm" true
run "1 instance, PgBouncer transaction mode, prepared (wrong)" "http://127.0.0.1:$EXTRA_PORT/api/crm/customer/$ID/"
grep -o 'prepared statement[^"]*' "$STATE/bench-extra.log" | sort | uniq -c | sort -rn | head -n 3 >&2 || true
extra_stop
rm -f "$STATE/server1.pid" "$STATE/server2.pid"
bash scripts/cluster.sh start-server 1 >/dev/null 2>&1
run "1 instance (cluster's server1) direct, no HAProxy" "http://127.0.0.1:$SERVER_PORT_1/api/crm/customer/$ID/"
bash scripts/cluster.sh start-server 2 >/dev/null 2>&1
sleep 2
run "2 instances behind HAProxy (transaction mode, unprepared)" "$CRM_BASE_URL/api/crm/customer/$ID/"
