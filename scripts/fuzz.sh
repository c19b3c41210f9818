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

LOG_NAME=fuzz
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

server_build "$PROFILE"

# The options below are schemathesis 4's; an older or newer major is replaced.
if ! python3 -c 'import sys; from importlib.metadata import version; sys.exit(version("schemathesis").split(".")[0] != "4")' >/dev/null 2>&1; then
    log "install schemathesis"
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi
python3 -m schemathesis.cli --version

server_workdir fuzz
if [ -n "${FUZZ_DATABASE_URL:-}" ]; then export DATABASE_URL="$FUZZ_DATABASE_URL"; else unset DATABASE_URL; fi
server_start
server_client fuzz "crm:read crm:write"
TOKEN=$(server_token)

# Credentials: `Authorization: Bearer <token>` on the /api/crm operations
# (security scheme oauth2). The OAuth endpoints declare no security
# requirement (the client authenticates itself, with HTTP Basic or form
# fields): they get the client's HTTP Basic header, so that some of their
# requests succeed.
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
cat >"$WORK/schemathesis.toml" <<TOML
[auth.openapi.oauth2]
bearer = "$TOKEN"

[[operations]]
include-path-regex = "^/oauth/"
headers = { Authorization = "Basic $BASIC" }
TOML

# The operations that set a webhook endpoint's URL are left out: generated
# URLs would be resolved (DNS queries leaving the machine) and, with a public
# IP literal, delivered to, and tests send traffic only to 127.0.0.1. Their
# rules are covered by tests/api/webhooks.rs.
log "schemathesis: $MAX_EXAMPLES examples per operation, seed $SEED, at most ${RUN_TIMEOUT}s"
# Run from the temporary directory so nothing (reports, example database)
# lands in the work tree.
cd "$WORK"
set +e
timeout --kill-after=10 "$RUN_TIMEOUT" python3 -m schemathesis.cli --config-file "$WORK/schemathesis.toml" \
    run "$BASE/api/openapi.json" \
    --checks "$CHECKS" \
    --exclude-operation-id post_webhook_list \
    --exclude-operation-id put_webhook_instance \
    --exclude-operation-id patch_webhook_instance \
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
server_check_log
cases=$(grep -Eo '[0-9]+ generated, [0-9]+ passed' "$WORK/schemathesis.log" | grep -Eo '[0-9]+ passed$' | grep -Eo '[0-9]+' || true)
echo "fuzz: ${cases:-0} passed, 0 failed"
