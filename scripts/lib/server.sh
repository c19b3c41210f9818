# Shared by the scripts that check a running crm-server from outside
# (fuzz.sh, clients.sh, readme-tour.sh); sourced, not run. It builds the
# binary, starts it on a fresh database in a temporary directory and on a free
# port, registers an OAuth client with the CLI, and stops the server and
# removes the directory on exit.
#
#   source scripts/lib/server.sh
#   server_build [profile]      # sets BIN (cargo profile, default dev)
#   server_workdir name         # sets WORK, a fresh temporary directory
#   server_start                # sets BASE, PORT, DATABASE_URL, SERVER_PID
#   server_client name scopes   # sets CLIENT_ID, CLIENT_SECRET
#   server_token                # prints a bearer token of that client
#   server_check_log            # fails if the server died or logged a panic
#
# DATABASE_URL may be set before server_start (an empty PostgreSQL database);
# by default the server gets a fresh SQLite file in WORK.

SERVER_PID=
WORK=

# One line on stderr, prefixed with the calling script's name.
log() { printf '\n== %s: %s\n' "${LOG_NAME:-check}" "$*" >&2; }

# The value of `key` in the JSON object on stdin (python3, so that a fresh
# machine needs no jq).
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

server_build() {
    local profile=${1:-dev} out target_dir
    log "build crm-server ($profile)"
    cargo build --quiet --profile "$profile" --bin crm-server
    target_dir=$(cargo metadata --format-version 1 --no-deps | json_field target_directory)
    case "$profile" in dev) out=debug ;; *) out=$profile ;; esac
    BIN="$target_dir/$out/crm-server"
    export BIN
}

_server_cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -n "$WORK" ] && [ -f "$WORK/server.log" ]; then
        echo "-- last server log lines:" >&2
        tail -n 30 "$WORK/server.log" >&2 || true
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    exit "$status"
}

server_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/crm-$1.XXXXXX")
    export WORK
    trap _server_cleanup EXIT
    trap 'exit 130' INT TERM
}

server_start() {
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    export DATABASE_URL="${DATABASE_URL:-$WORK/crm.sqlite3}"
    export CRM_BIND="127.0.0.1:$PORT"
    export CRM_RATE_LIMIT_PER_SECOND=0
    export RUST_LOG=${RUST_LOG:-warn}
    BASE="http://127.0.0.1:$PORT"
    export BASE PORT
    log "server on ${DATABASE_URL%%@*}, $BASE"
    "$BIN" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "crm-server exited" >&2; return 1; }
        sleep 0.1
    done
    curl -sf "$BASE/healthz" >/dev/null
}

server_client() {
    local client
    client=$("$BIN" client create --name "$1" --scope "$2")
    CLIENT_ID=$(printf '%s' "$client" | json_field client_id)
    CLIENT_SECRET=$(printf '%s' "$client" | json_field client_secret)
    export CLIENT_ID CLIENT_SECRET
}

server_token() {
    curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$BASE/oauth/token/" \
        | json_field access_token
}

server_check_log() {
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "${LOG_NAME:-check}: crm-server died during the run" >&2
        return 1
    fi
    if grep -Eq 'panicked|internal error' "$WORK/server.log"; then
        echo "${LOG_NAME:-check}: the server logged a panic or an internal error:" >&2
        grep -E 'panicked|internal error' "$WORK/server.log" | head -n 20 >&2
        return 1
    fi
}
