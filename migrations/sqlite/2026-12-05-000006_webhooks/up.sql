-- Webhooks (API.md section 9); see the PostgreSQL migration.
CREATE TABLE crm_webhook_endpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    event_mask  INTEGER NOT NULL,
    description TEXT NOT NULL,
    is_active   BOOLEAN NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE crm_webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id      INTEGER NOT NULL REFERENCES crm_webhook_endpoints (id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL REFERENCES crm_events (seq) ON DELETE CASCADE,
    status           INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    next_attempt_at  TEXT,
    created_at       TEXT NOT NULL,
    lease_until      TEXT,
    lease_token      INTEGER
);
CREATE INDEX crm_webhook_deliveries_due_idx
    ON crm_webhook_deliveries (endpoint_id, next_attempt_at, id) WHERE status = 0;
CREATE INDEX crm_webhook_deliveries_log_idx ON crm_webhook_deliveries (endpoint_id, id);
CREATE INDEX crm_webhook_deliveries_event_idx ON crm_webhook_deliveries (event_seq);
-- Counting failed deliveries, for monitoring.
CREATE INDEX crm_webhook_deliveries_failed_idx ON crm_webhook_deliveries (id) WHERE status = 2;

CREATE TRIGGER crm_events_fan_out AFTER INSERT ON crm_events
BEGIN
    INSERT INTO crm_webhook_deliveries (endpoint_id, event_seq, next_attempt_at, created_at)
    SELECT e.id, NEW.seq, NEW.created_at, NEW.created_at
    FROM crm_webhook_endpoints e
    WHERE e.is_active AND (e.event_mask & (1 << NEW.kind)) <> 0;
END;
