-- Performance at a million customers (see docs/benchmarks.md).

-- `search` is `lower(col) LIKE '%text%'` on full_name, mobile and e-mail: a
-- leading wildcard no B-tree can serve. Trigram GIN indexes on the same
-- expressions can (pg_trgm is a trusted extension shipped with PostgreSQL:
-- a database owner may create it).
-- New entries wait in a pending list that every search reads through
-- until it is merged; 512 kB instead of the default 4 MB keeps that cheap
-- (at 4 MB, searches after ~10,000 inserts cost 3-4 times as much) while
-- inserts still merge in batches (no pending list costs inserts ~20 %).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX customers_full_name_trgm_idx ON customers
    USING gin (lower(full_name) gin_trgm_ops) WITH (gin_pending_list_limit = 512);
CREATE INDEX customers_mobile_trgm_idx ON customers
    USING gin (lower(mobile) gin_trgm_ops) WITH (gin_pending_list_limit = 512);
CREATE INDEX customers_email_trgm_idx ON customers
    USING gin (lower(email) gin_trgm_ops) WITH (gin_pending_list_limit = 512);

-- Exact counts for the two most common lists, all customers and one
-- segment's members (a COUNT(*) over a million customers, or a semi-join
-- over a segment's tens of thousands of members, costs tens of
-- milliseconds per page). Statement-level triggers keep them in the same
-- transaction as the rows, so they are exact in every snapshot. Each count
-- is spread over 16 shard rows, every connection adding to the row of its
-- backend pid, so concurrent writers do not queue on one hot row lock; the
-- count is their sum.

-- All customers.
CREATE TABLE customer_count_shards (
    shard SMALLINT PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    n     BIGINT   NOT NULL
);
INSERT INTO customer_count_shards (shard, n) SELECT s, 0 FROM generate_series(0, 15) AS s;
UPDATE customer_count_shards SET n = (SELECT count(*) FROM customers) WHERE shard = 0;

-- Statement-level: a bulk INSERT or DELETE updates one shard row once.
CREATE FUNCTION customer_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added BIGINT;
BEGIN
    SELECT count(*) INTO added FROM inserted_rows;
    IF added > 0 THEN
        UPDATE customer_count_shards SET n = n + added WHERE shard = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION customer_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    removed BIGINT;
BEGIN
    SELECT count(*) INTO removed FROM deleted_rows;
    IF removed > 0 THEN
        UPDATE customer_count_shards SET n = n - removed WHERE shard = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION customer_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customer_count_shards SET n = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER customers_count_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_count_inserted();
CREATE TRIGGER customers_count_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_count_deleted();
CREATE TRIGGER customers_count_truncate AFTER TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION customer_count_truncated();

-- The members of each segment. No foreign key, so that the triggers of a
-- cascade never trip over it; a trigger on `segments` removes the rows of a
-- deleted segment.
CREATE TABLE segment_member_counts (
    segment_id BIGINT   NOT NULL,
    shard      SMALLINT NOT NULL CHECK (shard BETWEEN 0 AND 15),
    n          BIGINT   NOT NULL,
    PRIMARY KEY (segment_id, shard)
);
INSERT INTO segment_member_counts (segment_id, shard, n)
SELECT segment_id, 0, count(*) FROM segment_memberships GROUP BY segment_id;

-- Rows are written in segment order, so two statements touching the same
-- segments (deleting customers who are in several) lock them in one order.
CREATE FUNCTION segment_member_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO segment_member_counts (segment_id, shard, n)
    SELECT segment_id, pg_backend_pid() % 16, count(*)
    FROM inserted_rows GROUP BY segment_id ORDER BY segment_id
    ON CONFLICT (segment_id, shard) DO UPDATE SET n = segment_member_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

-- Memberships deleted with their segment need no count any more.
CREATE FUNCTION segment_member_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO segment_member_counts (segment_id, shard, n)
    SELECT d.segment_id, pg_backend_pid() % 16, -count(*)
    FROM deleted_rows d
    WHERE EXISTS (SELECT 1 FROM segments s WHERE s.id = d.segment_id)
    GROUP BY d.segment_id ORDER BY d.segment_id
    ON CONFLICT (segment_id, shard) DO UPDATE SET n = segment_member_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION segment_member_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_member_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER segment_memberships_count_insert AFTER INSERT ON segment_memberships
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segment_member_count_inserted();
CREATE TRIGGER segment_memberships_count_delete AFTER DELETE ON segment_memberships
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segment_member_count_deleted();
CREATE TRIGGER segment_memberships_count_truncate AFTER TRUNCATE ON segment_memberships
    FOR EACH STATEMENT EXECUTE FUNCTION segment_member_count_truncated();

CREATE FUNCTION segment_member_count_dropped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_member_counts WHERE segment_id IN (SELECT id FROM deleted_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER segments_member_count_delete AFTER DELETE ON segments
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segment_member_count_dropped();
