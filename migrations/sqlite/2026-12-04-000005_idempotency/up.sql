-- Idempotency keys (API.md section 7); see the PostgreSQL migration.
CREATE TABLE idempotency_keys (
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    claim        INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    status       INTEGER,
    content_type TEXT,
    body         BLOB,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
