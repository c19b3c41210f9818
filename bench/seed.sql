-- Seeds the benchmark database with a realistic data set, directly in SQL.
--
--   psql -v customers=1000000 -f bench/seed.sql postgres://.../crm_bench
--
-- Run on a freshly migrated, empty database (bench/run.sh does). Every value
-- is a deterministic function of the row number, so two runs seed the same
-- data and bench/*.lua can compute which ids, mobiles and names exist:
--
-- * customers 1..N, ids ascending with created_at (2019-01-01 onwards, UTC);
--   mobile '1' || (3 + i % 7) || lpad(i * 48271 mod 10^9, 9, '0') except
--   every tenth customer (i % 10 = 0) who has none; e-mail for 70 %
--   (unique: it carries i); full_name "Family Given" from the lists below;
--   10 % referred by an earlier customer; 20 % with a referral code;
-- * customer_tags: 1-3 distinct tags each (2 on average) out of 30;
-- * addresses: 10 % none, 10 % two, the rest one; the first is the default;
-- * customer_coupons: half hold one coupon (ids 1-200), 10 % a second one;
-- * segments 1..100, segment s with min(500 * s, N) members spread over the
--   whole id range (segment 2 has 1,000 members, segment 100 has 50,000);
--   segment 101 ("bench: add members") starts empty and is the target of
--   the segment_customer scenario.
--
-- Speed: the secondary indexes of the seeded tables (whatever the
-- migrations define; primary keys stay) are dropped, the rows inserted with
-- set-based INSERT ... SELECT, and the indexes rebuilt from their saved
-- definitions, which is several times faster than maintaining them row by
-- row and still checks every unique index.

\set ON_ERROR_STOP on
\if :{?customers}
\else
\set customers 1000000
\endif

SET client_min_messages = warning;
SET TIME ZONE 'UTC';
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '64MB';
SET max_parallel_maintenance_workers = 2;

BEGIN;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customers) OR EXISTS (SELECT 1 FROM segments) THEN
        RAISE EXCEPTION 'bench/seed.sql expects an empty, freshly migrated database';
    END IF;
END $$;

-- Secondary indexes of the seeded tables: saved, dropped, rebuilt at the end.
CREATE TEMP TABLE bench_saved_indexes ON COMMIT DROP AS
SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class tc ON tc.oid = i.indrelid
WHERE tc.relnamespace = 'public'::regnamespace
  AND tc.relname IN ('customers', 'customer_tags', 'addresses', 'customer_coupons',
                     'segment_memberships')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT name FROM bench_saved_indexes LOOP
        EXECUTE format('DROP INDEX %I', r.name);
    END LOOP;
END $$;

-- Word lists. Keep them in step with bench/common.lua.
CREATE TEMP TABLE bench_words ON COMMIT DROP AS
SELECT
    ARRAY['Wang','Li','Zhang','Liu','Chen','Yang','Huang','Zhao','Wu','Zhou',
          'Xu','Sun','Ma','Zhu','Hu','Guo','He','Gao','Lin','Luo',
          'Zheng','Liang','Xie','Song','Tang','Han','Feng','Deng','Cao','Peng',
          'Zeng','Xiao','Tian','Dong','Pan','Yuan','Cai','Jiang','Yu','Du',
          'Ye','Cheng','Wei','Su','Lu','Ding','Ren','Shen','Yao','Jin']::text[] AS families,
    ARRAY['Wei','Fang','Na','Xiuying','Min','Jing','Li','Qiang','Lei','Jun',
          'Yang','Yong','Yan','Jie','Juan','Tao','Ming','Chao','Xiulan','Xia',
          'Ping','Gang','Gui','Hua','Fei','Bin','Hui','Yu','Hong','Xin',
          'Lin','Ling','Dan','Ting','Hao','Kai','Rui','Xue','Yun','Zhen',
          'Mei','Qing','Bo','Chen','Feng','Liang','Ning','Peng','Shan','Wen',
          'Xiang','Yi','Zhi','Jian','Long','Hai','Yue','Ying','Lan','Qian']::text[] AS givens,
    ARRAY['vip','new','wholesale','retail','repeat','lapsed','newsletter','sms-ok',
          'beijing','shanghai','guangzhou','shenzhen','hangzhou','chengdu','online',
          'offline','wechat','app','high-value','low-value','birthday-club',
          'referral','staff','partner','b2b','student','family','pet-owner',
          'sports','beauty']::text[] AS tags,
    ARRAY['qq.com','163.com','126.com','gmail.com','outlook.com','sina.com',
          'foxmail.com','example.com']::text[] AS domains,
    ARRAY['北京市|北京市|朝阳区|110105','上海市|上海市|浦东新区|310115',
          '广东省|广州市|天河区|440106','广东省|深圳市|南山区|440305',
          '浙江省|杭州市|西湖区|330106','四川省|成都市|武侯区|510107',
          '江苏省|南京市|鼓楼区|320106','湖北省|武汉市|洪山区|420111',
          '天津市|天津市|和平区|120101','陕西省|西安市|雁塔区|610113',
          '重庆市|重庆市|渝中区|500103','福建省|厦门市|思明区|350203']::text[] AS places,
    ARRAY['Renmin','Jiefang','Zhongshan','Heping','Jianshe','Xinhua','Changjiang',
          'Huaihai','Nanjing','Beijing','Dongfeng','Wenhua','Yingbin','Binhe',
          'Gongyuan','Xueyuan','Keji','Shiji','Jinqiao','Guangming']::text[] AS streets;

-- One row per customer with the pseudo-random numbers its columns derive from.
CREATE TEMP TABLE bench_rows ON COMMIT DROP AS
SELECT i,
       (i * 2654435761) % 4294967296 AS h,
       (i * 40503 + 12345) % 65536 AS h2
FROM generate_series(1::bigint, :customers::bigint) AS i;

INSERT INTO customers (
    id, mobile, full_name, gender, email, birthday, avatar, note, accepts_marketing,
    referral_code, referrer_id, multipass_identifier, wechat_nickname, source_name,
    campaign_name, campaign_source, campaign_medium, campaign_content, campaign_term,
    last_order_id, last_order_paid_at, abandoned_checkouts, orders_count,
    paid_orders_count, total_spent_cents, average_order_cents, visits,
    visits_per_day_cents, preferred_device, location, created_at, updated_at)
SELECT
    r.i,
    CASE WHEN r.i % 10 = 0 THEN ''
         ELSE '1' || (3 + r.i % 7)::text || lpad(((r.i * 48271) % 1000000000)::text, 9, '0')
    END,
    w.families[1 + r.h % 50] || ' ' || w.givens[1 + (r.h / 50) % 60],
    (ARRAY['unknown','male','female'])[1 + r.h2 % 3],
    CASE WHEN r.i % 10 < 7
         THEN lower(w.givens[1 + (r.h / 50) % 60]) || '.' || lower(w.families[1 + r.h % 50])
              || r.i::text || '@' || w.domains[1 + r.h2 % 8]
         ELSE '' END,
    CASE WHEN r.h2 % 4 = 0 THEN NULL ELSE DATE '1960-01-01' + (r.h % 16000)::int END,
    CASE WHEN r.h2 % 5 = 0 THEN 'https://img.example.com/avatar/' || r.i::text || '.jpg' ELSE '' END,
    CASE WHEN r.h2 % 20 = 0 THEN 'called back about order #' || (r.h % 100000)::text ELSE '' END,
    r.i % 3 = 0,
    CASE WHEN r.i % 5 = 0 THEN 'R' || upper(to_hex(r.i * 7919)) ELSE '' END,
    CASE WHEN r.i > 10 AND r.i % 10 = 3 THEN 1 + r.h % (r.i - 1) ELSE NULL END,
    CASE WHEN r.i % 50 = 0 THEN 'mp-' || r.i::text ELSE NULL END,
    CASE WHEN r.h2 % 3 = 0 THEN w.givens[1 + r.h2 % 60] || '_' || (r.h % 1000)::text ELSE NULL END,
    (ARRAY['unknown','web','wechat','app','store','import'])[1 + r.h2 % 6],
    CASE WHEN r.h2 % 7 = 0 THEN 'spring-sale-' || (2019 + r.i * 7 / :customers)::text ELSE '' END,
    CASE WHEN r.h2 % 7 = 0 THEN 'wechat' ELSE '' END,
    CASE WHEN r.h2 % 7 = 0 THEN 'social' ELSE '' END,
    '', '',
    CASE WHEN r.h2 % 3 <> 0 THEN r.i * 13 ELSE NULL END,
    CASE WHEN r.h2 % 3 <> 0
         THEN TIMESTAMPTZ '2019-01-02 00:00:00+00' + r.i * INTERVAL '210 seconds'
              + (r.h % 2592000) * INTERVAL '1 second'
         ELSE NULL END,
    r.h % 4,
    CASE WHEN r.h2 % 3 <> 0 THEN 1 + r.h % 40 ELSE 0 END,
    CASE WHEN r.h2 % 3 <> 0 THEN 1 + r.h % 35 ELSE 0 END,
    CASE WHEN r.h2 % 3 <> 0 THEN (1 + r.h % 35) * (2000 + r.h2 % 30000) ELSE 0 END,
    CASE WHEN r.h2 % 3 <> 0 THEN 2000 + r.h2 % 30000 ELSE 0 END,
    r.h % 500,
    r.h % 300,
    (ARRAY['', 'iPhone', 'Android', 'Desktop'])[1 + r.h2 % 4],
    '',
    TIMESTAMPTZ '2019-01-01 00:00:00+00' + r.i * INTERVAL '210 seconds',
    TIMESTAMPTZ '2019-01-01 00:00:00+00' + r.i * INTERVAL '210 seconds'
        + (r.h % 2592000) * INTERVAL '1 second'
FROM bench_rows r CROSS JOIN bench_words w;

SELECT setval(pg_get_serial_sequence('customers', 'id'), :customers::bigint);

-- The child rows below are consistent by construction (checked at the end):
-- as a superuser, switch off the foreign key check triggers of their tables
-- while loading them (millions of single-row look-ups are the bulk of the
-- seeding time). The other triggers (the migrations' counters) still fire.
SELECT current_setting('is_superuser') = 'on' AS bench_superuser \gset
\if :bench_superuser
CREATE TEMP TABLE bench_fk_triggers ON COMMIT DROP AS
SELECT t.tgrelid::regclass::text AS tbl, t.tgname AS name
FROM pg_trigger t
JOIN pg_constraint c ON c.oid = t.tgconstraint
WHERE t.tgisinternal AND c.contype = 'f'
  AND t.tgrelid IN ('customer_tags'::regclass, 'addresses'::regclass,
                    'customer_coupons'::regclass, 'segment_memberships'::regclass);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tbl, name FROM bench_fk_triggers LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', r.tbl, r.name);
    END LOOP;
END $$;
\endif

-- 1-3 distinct tags (2 on average): 7 is prime to 30, so k * 7 mod 30 differ.
INSERT INTO customer_tags (customer_id, tag)
SELECT r.i, w.tags[1 + (r.h + k * 7) % 30]
FROM bench_rows r
CROSS JOIN bench_words w
CROSS JOIN LATERAL generate_series(0, (r.i % 3)::int) AS k;

-- Addresses: none for h % 10 = 0, two for h % 10 = 1, else one; the first
-- one is the default.
INSERT INTO addresses (customer_id, full_name, mobile, place_code, province, city, district,
                       address1, address2, zip, is_default, created_at, updated_at)
SELECT r.i,
       w.families[1 + r.h % 50] || ' ' || w.givens[1 + (r.h / 50) % 60],
       '1' || (3 + (r.i + k) % 7)::text || lpad(((r.i * 48271 + k) % 1000000000)::text, 9, '0'),
       split_part(p.place, '|', 4),
       split_part(p.place, '|', 1),
       split_part(p.place, '|', 2),
       split_part(p.place, '|', 3),
       (1 + (r.h + k) % 999)::text || ' ' || w.streets[1 + (r.h2 + k) % 20] || ' Road',
       CASE WHEN r.h2 % 3 = 0 THEN 'Unit ' || (1 + r.h % 30)::text ELSE '' END,
       split_part(p.place, '|', 4),
       k = 0,
       TIMESTAMPTZ '2019-01-01 00:00:00+00' + r.i * INTERVAL '210 seconds' + k * INTERVAL '1 day',
       TIMESTAMPTZ '2019-01-01 00:00:00+00' + r.i * INTERVAL '210 seconds' + k * INTERVAL '1 day'
FROM bench_rows r
CROSS JOIN bench_words w
CROSS JOIN LATERAL generate_series(0, CASE WHEN r.h % 10 = 1 THEN 1 ELSE 0 END) AS k
CROSS JOIN LATERAL (SELECT w.places[1 + (r.h2 + k) % 12] AS place) p
WHERE r.h % 10 <> 0;

-- Coupons: half the customers hold one (ids 1-200), a tenth a second one.
INSERT INTO customer_coupons (customer_id, coupon_id, granted_at)
SELECT r.i, 1 + (r.h + k * 101) % 200,
       TIMESTAMPTZ '2019-01-01 00:00:00+00' + r.i * INTERVAL '210 seconds' + INTERVAL '2 days'
FROM bench_rows r
CROSS JOIN LATERAL generate_series(0, CASE WHEN r.i % 10 = 2 THEN 1 ELSE 0 END) AS k
WHERE r.i % 2 = 0;

INSERT INTO segments (id, title, created_at, updated_at)
SELECT s, 'Segment ' || s::text || ' (' || least(500 * s, :customers)::text || ' members)',
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + s * INTERVAL '1 hour',
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + s * INTERVAL '1 hour'
FROM generate_series(1, 100) AS s;
INSERT INTO segments (id, title, created_at, updated_at)
VALUES (101, 'bench: add members', TIMESTAMPTZ '2026-06-01 00:00:00+00',
        TIMESTAMPTZ '2026-06-01 00:00:00+00');
SELECT setval(pg_get_serial_sequence('segments', 'id'), 101);

-- Segment s: members (s * 7919 + k * 104729) mod N + 1 for k < 500 * s,
-- spread over the whole table (104729 is a prime, so they differ while
-- 500 * s <= N and N is not a multiple of it; ON CONFLICT covers that case).
INSERT INTO segment_memberships (segment_id, customer_id)
SELECT s, (s * 7919 + k * 104729) % :customers::bigint + 1
FROM generate_series(1, 100) AS s
CROSS JOIN LATERAL generate_series(0::bigint, least(500 * s, :customers) - 1) AS k
ORDER BY 1, 2
ON CONFLICT DO NOTHING;

\if :bench_superuser
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tbl, name FROM bench_fk_triggers LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', r.tbl, r.name);
    END LOOP;
END $$;
\endif

-- What the skipped foreign key triggers would have checked, set-based.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customer_tags t WHERE NOT EXISTS
                 (SELECT 1 FROM customers c WHERE c.id = t.customer_id))
       OR EXISTS (SELECT 1 FROM addresses a WHERE NOT EXISTS
                 (SELECT 1 FROM customers c WHERE c.id = a.customer_id))
       OR EXISTS (SELECT 1 FROM customer_coupons h WHERE NOT EXISTS
                 (SELECT 1 FROM customers c WHERE c.id = h.customer_id))
       OR EXISTS (SELECT 1 FROM segment_memberships m WHERE NOT EXISTS
                 (SELECT 1 FROM customers c WHERE c.id = m.customer_id))
       OR EXISTS (SELECT 1 FROM segment_memberships m WHERE NOT EXISTS
                 (SELECT 1 FROM segments s WHERE s.id = m.segment_id)) THEN
        RAISE EXCEPTION 'bench/seed.sql: a seeded row references no parent';
    END IF;
END $$;

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT def FROM bench_saved_indexes LOOP
        EXECUTE r.def;
    END LOOP;
END $$;

COMMIT;

VACUUM (ANALYZE) customers, customer_tags, addresses, customer_coupons, segments,
    segment_memberships;

SELECT (SELECT count(*) FROM customers) AS customers,
       (SELECT count(*) FROM customer_tags) AS tags,
       (SELECT count(*) FROM addresses) AS addresses,
       (SELECT count(*) FROM customer_coupons) AS coupons,
       (SELECT count(*) FROM segments) AS segments,
       (SELECT count(*) FROM segment_memberships) AS memberships;
