-- The change feed (API.md section 8). Every write inserts its events in its
-- own transaction. Writers commit concurrently and out of order, so the
-- order of insertion (`seq`) is not the order in which events become
-- visible, and an event gets its public `id` only when it is published:
-- publishers, one at a time (the row lock of `crm_event_log`), number the
-- committed events not yet numbered after the last published id. An event
-- still uncommitted is invisible to the publisher and gets a larger id in a
-- later round, so ids become visible in increasing order and a reader
-- following them never skips one.

CREATE TABLE crm_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          BIGINT UNIQUE,
    kind        SMALLINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    -- The customer of a customer.* event, the segment of a segment.* event.
    customer_id BIGINT,
    segment_id  BIGINT,
    -- JSON: the customer's snapshot, the segment's title, or the member ids.
    data        TEXT NOT NULL
);
-- What publishing scans: the events not yet numbered, in their order.
CREATE INDEX crm_events_unpublished_idx ON crm_events (seq) WHERE id IS NULL;
-- The feed filtered by customer.
CREATE INDEX crm_events_customer_idx ON crm_events (customer_id, id) WHERE customer_id IS NOT NULL;

-- The customers named by a segment.customers_added / _removed event, so that
-- a feed filtered by customer finds them.
CREATE TABLE crm_event_members (
    customer_id BIGINT NOT NULL,
    event_seq   BIGINT NOT NULL REFERENCES crm_events (seq) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, event_seq)
);
CREATE INDEX crm_event_members_event_idx ON crm_event_members (event_seq);

-- One row: the last published id (its row lock orders publishers) and the
-- highest id retention deleted.
CREATE TABLE crm_event_log (
    singleton      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last_published BIGINT NOT NULL,
    purged_through BIGINT NOT NULL
);
INSERT INTO crm_event_log (last_published, purged_through) VALUES (0, 0);
