CREATE TABLE segments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT NOT NULL CHECK (title <> '' AND length(title) <= 255),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE segment_memberships (
    segment_id  INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    PRIMARY KEY (segment_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX segment_memberships_customer_id_idx ON segment_memberships (customer_id, segment_id);
