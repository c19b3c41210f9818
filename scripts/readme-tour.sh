#!/usr/bin/env bash
# The README's tour, as a test: extracts the ```sh blocks between
# `<!-- tour:start -->` and `<!-- tour:end -->` in README.md and runs them, as
# written and in order, in one bash (errexit, pipefail) against a fresh
# server: a new SQLite file in a temporary directory, on a free port. The
# tour reads CRM_URL and CRM_SERVER (with defaults for a reader's machine);
# this script points them at that server and the binary it built. Any
# command that fails, any non-2xx answer (every curl of the tour must have
# -f) fails the run.
#
#   bash scripts/readme-tour.sh
#
# Needs curl, jq and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_NAME=tour
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { echo "tour: $tool is required (the tour uses it)" >&2; exit 1; }
done

server_build
server_workdir tour
unset DATABASE_URL

# The shell blocks of the tour, in order, each as written.
python3 - README.md >"$WORK/tour.sh" <<'PY'
import re, sys

text = open(sys.argv[1], encoding="utf-8").read()
parts = text.split("<!-- tour:start -->")
if len(parts) != 2 or text.count("<!-- tour:end -->") != 1:
    sys.exit("README.md: expected one <!-- tour:start --> ... <!-- tour:end --> section")
tour = parts[1].split("<!-- tour:end -->")[0]
blocks = re.findall(r"^```sh\n(.*?)^```$", tour, flags=re.M | re.S)
if len(blocks) < 5:
    sys.exit(f"README.md: the tour has {len(blocks)} sh blocks")
problems = []
for n, block in enumerate(blocks, 1):
    for line in block.splitlines():
        if line.startswith("$ "):
            problems.append(f"block {n}: a prompt, not a command: {line}")
        for call in re.findall(r"\bcurl\b[^|]*", line):
            flags = call.split()
            if not any(f in ("-f", "--fail", "--fail-with-body") or re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*", f) for f in flags):
                problems.append(f"block {n}: curl without -f (a failure would pass silently): {line}")
    print(f"# --- README tour, block {n}")
    print(block)
if problems:
    sys.exit("README.md tour:\n" + "\n".join(problems))
PY
blocks=$(grep -c '^# --- README tour, block' "$WORK/tour.sh")

server_start

log "run the README tour ($blocks blocks) against $BASE"
cd "$WORK"
set +e
CRM_URL="$BASE" CRM_SERVER="$BIN" timeout --kill-after=10 120 bash -c '
    set -eEuo pipefail
    trap '\''echo "tour: failed: $BASH_COMMAND (README tour, line $LINENO of tour.sh)" >&2'\'' ERR
    . ./tour.sh
' >"$WORK/tour.out" 2>&1
result=$?
set -e
cat "$WORK/tour.out"
if [ "$result" -ne 0 ]; then
    echo "tour: FAILED (exit $result)" >&2
    exit 1
fi
server_check_log
echo "tour: the README tour ($blocks blocks) ran clean"
echo "tour: 1 passed, 0 failed"
