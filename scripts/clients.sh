#!/usr/bin/env bash
# Generated-client check: what API consumers get from the served OpenAPI
# document with popular tools nobody here wrote. Builds crm-server, starts it
# on a fresh SQLite database, fetches GET /api/openapi.json, then
#
#   1. lints it with redocly (rules in redocly.yaml);
#   2. generates a Python client with openapi-python-client, type-checks it
#      and scripts/clients/scenario.py with mypy --strict, and runs the
#      scenario against the server;
#   3. generates TypeScript types with openapi-typescript, type-checks
#      scripts/clients/scenario.ts (openapi-fetch) with tsc, and runs it
#      with node.
#
# Each scenario: a token, create, get, PATCH one field (nothing else may
# change), list with an array filter (every id must come back), add two
# customers to a segment and remove both with the array form.
#
#   bash scripts/clients.sh
#
# Needs python3 (3.10+), node 20+ with npm, curl; installs the rest (pinned:
# scripts/clients/package.json and package-lock.json, the pip lines below)
# into scripts/clients/node_modules and a temporary virtualenv. Every step is
# bounded by CLIENTS_STEP_TIMEOUT seconds (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_TIMEOUT=${CLIENTS_STEP_TIMEOUT:-300}
LOG_NAME=clients
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh
bounded() { timeout --kill-after=10 "$STEP_TIMEOUT" "$@"; }

for tool in python3 node npm curl; do
    command -v "$tool" >/dev/null || { echo "clients: $tool is required" >&2; exit 1; }
done
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || { echo "clients: node 20 or later is required ($(node --version))" >&2; exit 1; }

server_build
server_workdir clients
unset DATABASE_URL
CLIENTS=$PWD/scripts/clients

log "install the TypeScript tools and redocly (npm ci)"
bounded npm ci --prefix "$CLIENTS" --no-audit --no-fund --loglevel=error
log "install openapi-python-client and mypy (virtualenv)"
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
# The generated client's own dependencies (httpx, attrs, python-dateutil)
# come with the generator.
bounded "$PY" -m pip install --quiet --disable-pip-version-check \
    'openapi-python-client>=0.29,<0.30' 'mypy>=1.19,<2'

server_start
server_client clients "crm:read crm:write"
curl -sf "$BASE/api/openapi.json" -o "$WORK/openapi.json"

log "redocly lint"
# No usage data sent home, no update check.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
bounded "$CLIENTS/node_modules/.bin/redocly" lint --config redocly.yaml "$WORK/openapi.json"

log "Python: generate (openapi-python-client), type-check (mypy --strict), run"
mkdir -p "$WORK/python"
bounded "$WORK/venv/bin/openapi-python-client" generate --path "$WORK/openapi.json" \
    --meta none --output-path "$WORK/python/crm_client" \
    --config "$CLIENTS/python-client.yaml" --fail-on-warning
cp "$CLIENTS/scenario.py" "$WORK/python/"
(
    cd "$WORK/python"
    bounded "$WORK/venv/bin/mypy" --strict --no-incremental --cache-dir=/dev/null scenario.py crm_client
    bounded "$PY" scenario.py "$BASE" "$CLIENT_ID" "$CLIENT_SECRET"
)

log "TypeScript: generate (openapi-typescript), type-check (tsc), run (node)"
rm -rf "$CLIENTS/generated" "$CLIENTS/build"
bounded "$CLIENTS/node_modules/.bin/openapi-typescript" "$WORK/openapi.json" \
    -o "$CLIENTS/generated/api.d.ts"
bounded "$CLIENTS/node_modules/.bin/tsc" -p "$CLIENTS"
bounded node "$CLIENTS/build/scenario.js" "$BASE" "$CLIENT_ID" "$CLIENT_SECRET"

server_check_log
echo "clients: 3 passed, 0 failed"
