-- Idempotency keys (API.md section 7): one row per key of an OAuth client.
-- A request claims its key (a row with no status yet and its claim token)
-- in a transaction of its own, so that a concurrent request with the key
-- sees it; its writes and its answer (status, content type, body) then
-- commit together in one transaction.
CREATE TABLE idempotency_keys (
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    claim        BIGINT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    status       SMALLINT,
    content_type TEXT,
    body         BYTEA,
    PRIMARY KEY (client_id, key)
);
-- The purge of keys past their lifetime.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
