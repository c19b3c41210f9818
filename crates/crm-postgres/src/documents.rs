//! One statement per read: the customer, summary and page documents of
//! `crm_diesel::document`, built by PostgreSQL with `json_agg` subqueries.
//!
//! Each read is one round trip and, being one statement, one snapshot, so no
//! transaction is opened around it. The statements are prepared once per
//! connection: those of fixed text have a static query id (Diesel caches them
//! by type), the page's is cached by its SQL text like the boxed Diesel
//! queries it embeds (one text per combination of filters and ordering).

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Text};

use crm_diesel::{PageCount, StoreResult};

type Conn = diesel::pg::PgConnection;

/// The keys of a document for a customer row aliased `c` (tags, addresses,
/// and the segments where the condition between the two halves holds):
/// first half.
macro_rules! related_head {
    () => {
        concat!(
            "'tags', ARRAY(SELECT t.tag FROM customer_tags t WHERE t.customer_id = c.id), ",
            "'addresses', coalesce((SELECT json_agg(a ORDER BY a.is_default DESC, a.id) ",
            "FROM addresses a WHERE a.customer_id = c.id), '[]'), ",
            "'segments', CASE WHEN "
        )
    };
}

/// Second half of `related_head!`.
macro_rules! related_tail {
    () => {
        concat!(
            " THEN coalesce((SELECT json_agg(json_build_object('id', s.id, 'title', s.title) ",
            "ORDER BY s.id) FROM segment_memberships m JOIN segments s ON s.id = m.segment_id ",
            "WHERE m.customer_id = c.id), '[]') ELSE '[]' END"
        )
    };
}

/// A summary document of the customer row aliased `c`: first half, up to
/// the segments condition.
macro_rules! summary_head {
    () => {
        concat!(
            "json_build_object('c', json_build_object('id', c.id, 'mobile', c.mobile, ",
            "'full_name', c.full_name, 'gender', c.gender, 'email', c.email, ",
            "'birthday', c.birthday, 'note', c.note, ",
            "'accepts_marketing', c.accepts_marketing, 'created_at', c.created_at), ",
            related_head!()
        )
    };
}

/// Second half of `summary_head!`.
macro_rules! summary_tail {
    () => {
        concat!(related_tail!(), ")")
    };
}

/// The whole customer whose id is bound at the end.
const CUSTOMER: &str = concat!(
    "SELECT json_build_object('c', c, ",
    related_head!(),
    "true",
    related_tail!(),
    ", 'metafields', coalesce((SELECT json_agg(json_build_array(f.namespace, f.key, f.value)) ",
    "FROM customer_metafields f WHERE f.customer_id = c.id), '[]'), ",
    "'referred', (SELECT json_build_array(count(*), coalesce(sum(r.total_spent_cents), 0)) ",
    "FROM customers r WHERE r.referrer_id = c.id))::text FROM customers c WHERE c.id = "
);

/// One customer document, by id.
#[derive(QueryId)]
struct CustomerDocument {
    id: i64,
}

impl QueryFragment<Pg> for CustomerDocument {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(CUSTOMER);
        out.push_bind_param::<BigInt, _>(&self.id)
    }
}

impl Query for CustomerDocument {
    type SqlType = Text;
}

impl RunQueryDsl<Conn> for CustomerDocument {}

pub(crate) fn customer(conn: &mut Conn, id: i64) -> StoreResult<Option<String>> {
    Ok(CustomerDocument { id }.get_result(conn).optional()?)
}

/// The summary documents of a list of ids, in its order (a segment's member
/// pages: hundreds of ids). A subquery per customer and kind of related
/// row; reading each kind once for all the ids (`= ANY`, grouped, joined)
/// measured 5–10 % slower on 500 ids (docs/benchmarks.md).
struct SummariesDocument<'a> {
    ids: &'a [i64],
    segments: bool,
}

/// The query id of every `SummariesDocument` (its text never changes).
struct SummariesDocumentId;

impl QueryId for SummariesDocument<'_> {
    type QueryId = SummariesDocumentId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for SummariesDocument<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(concat!("SELECT coalesce(json_agg(", summary_head!()));
        out.push_bind_param::<Bool, _>(&self.segments)?;
        out.push_sql(concat!(
            summary_tail!(),
            " ORDER BY p.n), '[]')::text FROM unnest("
        ));
        out.push_bind_param::<Array<BigInt>, _>(self.ids)?;
        out.push_sql("::bigint[]) WITH ORDINALITY AS p(id, n) JOIN customers c ON c.id = p.id");
        Ok(())
    }
}

impl Query for SummariesDocument<'_> {
    type SqlType = Text;
}

impl RunQueryDsl<Conn> for SummariesDocument<'_> {}

pub(crate) fn summaries(conn: &mut Conn, ids: &[i64], segments: bool) -> StoreResult<String> {
    Ok(SummariesDocument { ids, segments }.get_result(conn)?)
}

/// Page sizes written into a page statement's text; any other size is a
/// parameter. Each text is a statement cached on every connection (and a
/// plan kept by PostgreSQL for it), so the set is small and fixed: a client
/// cycling through page sizes cannot grow the caches.
const COMMON_PAGE_SIZES: [i64; 8] = [10, 20, 25, 50, 100, 200, 500, 1000];

/// A page document: the count, then the items of the page query's ids.
///
/// The limit of the common page sizes is written into the text and the
/// offset is left out on the first page, so that the statement of a first page has a
/// generic plan as cheap as a custom one: with `LIMIT $n OFFSET $m` the
/// planner costs a generic plan as if both were a tenth of the table, keeps
/// planning the statement on every execution, and the planning cost more
/// than the execution (docs/benchmarks.md). Past the first page the offset
/// is a parameter, and the page query runs only when the offset is below
/// the count (a one-time filter), so a page past the end costs no more than
/// the count.
struct PageDocument<'a> {
    ids: &'a dyn QueryFragment<Pg>,
    offset: i64,
    limit: i64,
    count: PageCount<'a, Pg>,
}

impl PageDocument<'_> {
    /// The page query: `ids` (which ends with its ORDER BY), limited.
    fn walk_page<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.ids.walk_ast(out.reborrow())?;
        if COMMON_PAGE_SIZES.contains(&self.limit) {
            out.push_sql(&format!(" LIMIT {}", self.limit));
        } else {
            out.push_sql(" LIMIT ");
            out.push_bind_param::<BigInt, _>(&self.limit)?;
        }
        if self.offset > 0 {
            out.push_sql(" OFFSET ");
            out.push_bind_param::<BigInt, _>(&self.offset)?;
        }
        Ok(())
    }
}

impl QueryId for PageDocument<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for PageDocument<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if let PageCount::WithPage(count) = &self.count {
            // The page query gives (id, total); the count query runs only
            // when the page is empty (coalesce evaluates lazily).
            out.push_sql("WITH q (id, total) AS MATERIALIZED (");
            self.walk_page(&mut out)?;
            out.push_sql(
                ") SELECT json_build_object('count', coalesce((SELECT max(q.total) FROM q), (",
            );
            count.walk_ast(out.reborrow())?;
            out.push_sql(concat!(
                ")), 'items', coalesce((SELECT json_agg(",
                summary_head!(),
                "true",
                summary_tail!(),
                " ORDER BY p.n) FROM unnest(ARRAY(SELECT q.id FROM q)) WITH ORDINALITY ",
                "AS p(id, n) JOIN customers c ON c.id = p.id), '[]'))::text"
            ));
            return Ok(());
        }
        out.push_sql("WITH total AS MATERIALIZED (SELECT (");
        match &self.count {
            PageCount::All => {
                out.push_sql("SELECT coalesce(sum(n), 0) FROM customer_count_shards");
            }
            PageCount::Segment(id) => {
                out.push_sql(
                    "SELECT coalesce(sum(n), 0) FROM segment_member_counts WHERE segment_id = ",
                );
                out.push_bind_param::<BigInt, _>(id)?;
            }
            PageCount::Query(query) | PageCount::WithPage(query) => {
                query.walk_ast(out.reborrow())?
            }
        }
        out.push_sql(concat!(
            ")::bigint AS n) SELECT json_build_object('count', (SELECT n FROM total), ",
            "'items', coalesce((SELECT json_agg(",
            summary_head!(),
            "true",
            summary_tail!(),
            " ORDER BY p.n) FROM unnest(ARRAY(SELECT q.id FROM ("
        ));
        self.walk_page(&mut out)?;
        out.push_sql(") AS q(id)");
        if self.offset > 0 {
            out.push_sql(" WHERE ");
            out.push_bind_param::<BigInt, _>(&self.offset)?;
            out.push_sql(" < (SELECT n FROM total)");
        }
        out.push_sql(concat!(
            ")) WITH ORDINALITY AS p(id, n) ",
            "JOIN customers c ON c.id = p.id), '[]'))::text"
        ));
        Ok(())
    }
}

impl Query for PageDocument<'_> {
    type SqlType = Text;
}

impl RunQueryDsl<Conn> for PageDocument<'_> {}

pub(crate) fn page(
    conn: &mut Conn,
    ids: &dyn QueryFragment<Pg>,
    offset: i64,
    limit: i64,
    count: PageCount<'_, Pg>,
) -> StoreResult<String> {
    Ok(PageDocument {
        ids,
        offset,
        limit,
        count,
    }
    .get_result(conn)?)
}
