#!/usr/bin/env bash
# Seeds an SQLite database for bench/run.sh (BENCH_BACKEND=sqlite) with the
# same data bench/seed.sql makes on PostgreSQL: it seeds a temporary
# PostgreSQL database with seed.sql, then copies every table the API reads
# into a freshly migrated SQLite file, as INSERT statements in one
# transaction (timestamps in the text form the SQLite adapter writes,
# booleans as 0/1).
#
# Usage: bench/seed-sqlite.sh BIN SQLITE_FILE CUSTOMERS PG_SERVER_URL
#   BIN            the crm-server binary (for `migrate`)
#   SQLITE_FILE    the file to create (replaced if it exists)
#   CUSTOMERS      how many customers to seed
#   PG_SERVER_URL  a PostgreSQL server URL without database name, e.g.
#                  postgres://postgres@127.0.0.1:5432
#
# Needs psql and sqlite3.

set -euo pipefail

BIN=$1
FILE=$2
CUSTOMERS=$3
PG=$4
SOURCE_DB=crm_bench_sqlite_source
SOURCE=$PG/$SOURCE_DB
ADMIN=$PG/postgres
TABLES="customers customer_tags customer_metafields addresses customer_coupons segments segment_memberships"

cd "$(dirname "$0")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crm-seed-sqlite.XXXXXX")
cleanup() {
    psql -X -q "$ADMIN" -c "DROP DATABASE IF EXISTS $SOURCE_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v sqlite3 >/dev/null || { echo "seed-sqlite: sqlite3 is required" >&2; exit 1; }

psql -X -q "$ADMIN" -c "DROP DATABASE IF EXISTS $SOURCE_DB WITH (FORCE)" \
    -c "CREATE DATABASE $SOURCE_DB" >/dev/null
DATABASE_URL=$SOURCE RUST_LOG=warn "$BIN" migrate >&2
psql -X -q "$SOURCE" -v customers="$CUSTOMERS" -f bench/seed.sql >/dev/null

rm -f "$FILE" "$FILE-wal" "$FILE-shm"
DATABASE_URL=$FILE RUST_LOG=warn "$BIN" migrate >&2

{
    echo "PRAGMA foreign_keys = OFF;"
    echo "BEGIN;"
    for table in $TABLES; do
        # The columns both schemas have, each as an SQL literal.
        columns=$(sqlite3 "$FILE" "SELECT group_concat(name, ' ') FROM pragma_table_info('$table')")
        list=$(tr ' ' ',' <<<"$columns")
        literals=$(psql -X -At "$SOURCE" -v tbl="$table" -v cols="$columns" <<'SQL'
SELECT string_agg(
    CASE data_type
        WHEN 'timestamp with time zone' THEN format(
            'quote_nullable(to_char(%I AT TIME ZONE ''UTC'', ''YYYY-MM-DD HH24:MI:SS.US'') || ''+00:00'')',
            column_name)
        WHEN 'boolean' THEN format('quote_nullable(%I::int)', column_name)
        ELSE format('quote_nullable(%I)', column_name)
    END, ' || '','' || ' ORDER BY array_position(string_to_array(:'cols', ' '), column_name::text))
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = :'tbl'
  AND column_name::text = ANY (string_to_array(:'cols', ' '))
SQL
)
        psql -X -At "$SOURCE" -c "SELECT 'INSERT INTO $table ($list) VALUES (' || $literals || ');' FROM $table"
    done
    echo "COMMIT;"
    echo "PRAGMA foreign_keys = ON;"
    echo "PRAGMA foreign_key_check;"
    echo "ANALYZE;"
} >"$WORK/seed.sql"

sqlite3 "$FILE" <"$WORK/seed.sql"
for table in $TABLES; do
    printf '%s %s\n' "$table" "$(sqlite3 "$FILE" "SELECT count(*) FROM $table")"
done
