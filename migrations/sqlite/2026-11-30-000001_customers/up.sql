-- Customers with their tags, metafields, addresses and coupon holdings: the
-- same tables, constraints and constraint names as migrations/postgres.
-- AUTOINCREMENT keeps ids from ever being reused. Timestamps are UTC text.

CREATE TABLE customers (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    mobile                TEXT    NOT NULL DEFAULT '' CHECK (length(mobile) <= 21),
    full_name             TEXT    NOT NULL DEFAULT '' CHECK (length(full_name) <= 255),
    gender                TEXT    NOT NULL DEFAULT 'unknown'
                          CHECK (gender IN ('unknown', 'male', 'female')),
    email                 TEXT    NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    birthday              TEXT,
    avatar                TEXT    NOT NULL DEFAULT '' CHECK (length(avatar) <= 1024),
    note                  TEXT    NOT NULL DEFAULT '',
    accepts_marketing     BOOLEAN NOT NULL DEFAULT 0,
    referral_code         TEXT    NOT NULL DEFAULT '' CHECK (length(referral_code) <= 32),
    referrer_id           INTEGER REFERENCES customers (id) ON DELETE SET NULL,
    multipass_identifier  TEXT,
    wechat_nickname       TEXT,
    source_name           TEXT    NOT NULL DEFAULT 'unknown',
    campaign_name         TEXT    NOT NULL DEFAULT '',
    campaign_source       TEXT    NOT NULL DEFAULT '',
    campaign_medium       TEXT    NOT NULL DEFAULT '',
    campaign_content      TEXT    NOT NULL DEFAULT '',
    campaign_term         TEXT    NOT NULL DEFAULT '',
    last_order_id         INTEGER,
    last_order_paid_at    TEXT,
    abandoned_checkouts   INTEGER NOT NULL DEFAULT 0,
    orders_count          INTEGER NOT NULL DEFAULT 0,
    paid_orders_count     INTEGER NOT NULL DEFAULT 0,
    total_spent_cents     INTEGER NOT NULL DEFAULT 0,
    average_order_cents   INTEGER NOT NULL DEFAULT 0,
    visits                INTEGER NOT NULL DEFAULT 0,
    visits_per_day_cents  INTEGER NOT NULL DEFAULT 0,
    preferred_device      TEXT    NOT NULL DEFAULT '',
    location              TEXT    NOT NULL DEFAULT '',
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL,
    CONSTRAINT customers_identity_check CHECK (mobile <> '' OR email <> '' OR full_name <> '')
);

CREATE UNIQUE INDEX customers_mobile_key ON customers (mobile) WHERE mobile <> '';
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email)) WHERE email <> '';
CREATE UNIQUE INDEX customers_referral_code_key ON customers (referral_code) WHERE referral_code <> '';
CREATE UNIQUE INDEX customers_multipass_identifier_key ON customers (multipass_identifier);
CREATE INDEX customers_referrer_id_idx ON customers (referrer_id) WHERE referrer_id IS NOT NULL;
CREATE INDEX customers_created_at_idx ON customers (created_at, id);
CREATE INDEX customers_updated_at_idx ON customers (updated_at, id);

CREATE TABLE customer_tags (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tag         TEXT    NOT NULL,
    PRIMARY KEY (customer_id, tag)
) WITHOUT ROWID;
CREATE INDEX customer_tags_tag_idx ON customer_tags (tag, customer_id);

CREATE TABLE customer_metafields (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (customer_id, namespace, key)
) WITHOUT ROWID;

CREATE TABLE addresses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    full_name   TEXT    NOT NULL,
    mobile      TEXT    NOT NULL,
    place_code  TEXT    NOT NULL DEFAULT '',
    province    TEXT    NOT NULL,
    city        TEXT    NOT NULL,
    district    TEXT    NOT NULL DEFAULT '',
    address1    TEXT    NOT NULL,
    address2    TEXT    NOT NULL DEFAULT '',
    zip         TEXT    NOT NULL DEFAULT '',
    is_default  BOOLEAN NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX addresses_customer_id_idx ON addresses (customer_id, id);
CREATE UNIQUE INDEX addresses_one_default_key ON addresses (customer_id) WHERE is_default;

CREATE TABLE customer_coupons (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    coupon_id   INTEGER NOT NULL,
    granted_at  TEXT    NOT NULL,
    PRIMARY KEY (customer_id, coupon_id)
) WITHOUT ROWID;
CREATE INDEX customer_coupons_coupon_id_idx ON customer_coupons (coupon_id, customer_id);
