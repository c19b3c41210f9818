-- The change feed (API.md section 8). Writers are serialised (BEGIN
-- IMMEDIATE), so events commit in the order of their `seq`, and an event's
-- public id is its seq, set as it is inserted. AUTOINCREMENT: a seq is never
-- handed out twice, even after retention deleted every event.

CREATE TABLE crm_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          INTEGER UNIQUE,
    kind        INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    customer_id INTEGER,
    segment_id  INTEGER,
    data        TEXT NOT NULL
);
CREATE INDEX crm_events_customer_idx ON crm_events (customer_id, id) WHERE customer_id IS NOT NULL;

CREATE TRIGGER crm_events_publish AFTER INSERT ON crm_events
BEGIN
    UPDATE crm_events SET id = NEW.seq WHERE seq = NEW.seq;
END;

CREATE TABLE crm_event_members (
    customer_id INTEGER NOT NULL,
    event_seq   INTEGER NOT NULL REFERENCES crm_events (seq) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, event_seq)
) WITHOUT ROWID;
CREATE INDEX crm_event_members_event_idx ON crm_event_members (event_seq);

CREATE TABLE crm_event_log (
    singleton      INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    last_published INTEGER NOT NULL,
    purged_through INTEGER NOT NULL
);
INSERT INTO crm_event_log (last_published, purged_through) VALUES (0, 0);
