#!/usr/bin/env bash
# Contract fuzzing: builds crm-server, starts it on a fresh SQLite database in
# a temporary directory, and runs schemathesis against its own OpenAPI
# document (GET /api/openapi.json) with a bearer token. Fails on any 5xx, any
# response that does not fit the document (status, content type, headers,
# body schema), and any method the server answers that it should refuse.
#
#   bash scripts/fuzz.sh                  # 20 examples per operation
#   FUZZ_MAX_EXAMPLES=100 FUZZ_SEED=1 bash scripts/fuzz.sh
#
# Environment: FUZZ_MAX_EXAMPLES (default 20), FUZZ_SEED (default random; the
# seed is printed so a failure can be replayed), FUZZ_TIMEOUT (seconds for the
# schemathesis run, default 240), FUZZ_PROFILE (cargo profile, default dev),
# FUZZ_DATABASE_URL (default: a fresh SQLite file; give an empty PostgreSQL
# database's URL to fuzz that backend).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-20}
SEED=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
RUN_TIMEOUT=${FUZZ_TIMEOUT:-240}
PROFILE=${FUZZ_PROFILE:-dev}
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,allow_header_conformance,ignored_auth

log() { printf '\n== fuzz: %s\n' "$*"; }

log "build crm-server ($PROFILE)"
cargo build --quiet --profile "$PROFILE" --bin crm-server
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
case "$PROFILE" in dev) out=debug ;; *) out=$PROFILE ;; esac
BIN="$target_dir/$out/crm-server"

# The options below are schemathesis 4's; an older or newer major is replaced.
if ! python3 -c 'import sys; from importlib.metadata import version; sys.exit(version("schemathesis").split(".")[0] != "4")' >/dev/null 2>&1; then
    log "install schemathesis"
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi
python3 -m schemathesis.cli --version

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crm-fuzz.XXXXXX")
SERVER_PID=
cleanup() {
    status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ]; then
        echo "-- last server log lines:" >&2
        tail -n 30 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export DATABASE_URL="${FUZZ_DATABASE_URL:-$WORK/crm.sqlite3}"
export CRM_BIND="127.0.0.1:$PORT"
export CRM_RATE_LIMIT_PER_SECOND=0
export RUST_LOG=${RUST_LOG:-warn}
BASE="http://127.0.0.1:$PORT"

log "client and server on ${DATABASE_URL%%@*}, $BASE"
client=$("$BIN" client create --name fuzz --scope "crm:read crm:write")
CLIENT_ID=$(printf '%s' "$client" | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')
CLIENT_SECRET=$(printf '%s' "$client" | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])')

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "crm-server exited" >&2; exit 1; }
    sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null

TOKEN=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$BASE/oauth/token/" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

# Credentials per security scheme of the document: `Authorization: Bearer
# <token>` on the /api/crm operations (scheme oauth2), HTTP Basic with the
# client's id and secret on the OAuth endpoints (scheme clientBasic).
cat >"$WORK/schemathesis.toml" <<TOML
[auth.openapi.oauth2]
bearer = "$TOKEN"

[auth.openapi.clientBasic]
username = "$CLIENT_ID"
password = "$CLIENT_SECRET"
TOML

log "schemathesis: $MAX_EXAMPLES examples per operation, seed $SEED, at most ${RUN_TIMEOUT}s"
# Run from the temporary directory so nothing (reports, example database)
# lands in the work tree.
cd "$WORK"
set +e
timeout --kill-after=10 "$RUN_TIMEOUT" python3 -m schemathesis.cli --config-file "$WORK/schemathesis.toml" \
    run "$BASE/api/openapi.json" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 10 \
    --suppress-health-check too_slow \
    --generation-database none \
    --no-color 2>&1 | tee "$WORK/schemathesis.log"
result=${PIPESTATUS[0]}
set -e
if [ "$result" -eq 124 ] || [ "$result" -eq 137 ]; then
    echo "fuzz: schemathesis did not finish within ${RUN_TIMEOUT}s" >&2
fi
if [ "$result" -ne 0 ]; then
    echo "fuzz: FAILED (replay with FUZZ_SEED=$SEED FUZZ_MAX_EXAMPLES=$MAX_EXAMPLES bash scripts/fuzz.sh)" >&2
    exit "$result"
fi
# A server that died or logged a panic fails the run even if every answer fit.
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz: crm-server died during the run" >&2
    exit 1
fi
if grep -Eq 'panicked|internal error' "$WORK/server.log"; then
    echo "fuzz: the server logged a panic or an internal error:" >&2
    grep -E 'panicked|internal error' "$WORK/server.log" | head -n 20 >&2
    exit 1
fi
cases=$(grep -Eo '[0-9]+ generated, [0-9]+ passed' "$WORK/schemathesis.log" | grep -Eo '[0-9]+ passed$' | grep -Eo '[0-9]+' || true)
echo "fuzz: ${cases:-0} passed, 0 failed"
