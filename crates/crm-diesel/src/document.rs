//! Reads in one statement: what a dialect returns when it gathers a
//! customer's related rows into one JSON document on the database side.
//!
//! Where every statement is a network round trip (PostgreSQL), reading a
//! customer as its row plus one query per kind of related row costs six
//! round trips and a transaction to hold them to one snapshot. A dialect
//! that can aggregate related rows into JSON (`json_agg`) answers the same
//! read with one statement, which is its own snapshot; see
//! [`Dialect::customer_document`](crate::Dialect::customer_document). The
//! shared query code decodes the documents described here into the same rows
//! the multi-statement reads load, so both paths end in the same domain
//! values.
//!
//! # The documents
//!
//! A **customer document** is an object:
//!
//! - `c`: the customer's row, an object keyed by column name (every column of
//!   `customers`; others are ignored);
//! - `tags`: the customer's tags, an array of strings in any order;
//! - `addresses`: the addresses' rows (objects keyed by column name), default
//!   address first, then by id;
//! - `segments`: `{"id": .., "title": ..}` of each segment holding the
//!   customer, by id;
//! - `metafields`: `[namespace, key, value]` of each metafield, in any order;
//! - `referred`: `[count, spent]`, how many customers name this one as
//!   referrer and the sum of their `total_spent_cents`.
//!
//! A **summary document** (one list item) is the same object with `c`
//! holding only the list columns (`id`, `mobile`, `full_name`, `gender`,
//! `email`, `birthday`, `note`, `accepts_marketing`, `created_at`) and without
//! `metafields` and `referred`; `segments` is `[]` where they were not asked
//! for. A **page document** is `{"count": n, "items": [summary, ...]}`, the
//! items in page order, the count exact in the same snapshot.
//!
//! Timestamps are RFC 3339 text with their offset (PostgreSQL's JSON
//! rendering of `timestamptz`), dates `YYYY-MM-DD`.

use diesel::backend::Backend;
use diesel::query_builder::QueryFragment;

/// How a page document's `count` is taken.
pub enum PageCount<'a, DB: Backend> {
    /// The page query's second column ([`CountOver`], the number of rows it
    /// selects before its offset and limit) when the page has rows, and this
    /// query's value when it has none. One scan gives both where the count
    /// must visit every match anyway (a search).
    WithPage(&'a dyn QueryFragment<DB>),
    /// Every customer: the dialect may keep this number at hand.
    All,
    /// The members of one segment: the dialect may keep these at hand too.
    Segment(i64),
    /// The value of this query (a `SELECT COUNT(*)` of the filtered list).
    Query(&'a dyn QueryFragment<DB>),
}

impl<DB: Backend> std::fmt::Debug for PageCount<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("All"),
            Self::Segment(id) => f.debug_tuple("Segment").field(id).finish(),
            Self::Query(_) => f.write_str("Query(..)"),
            Self::WithPage(_) => f.write_str("WithPage(..)"),
        }
    }
}

/// `COUNT(*) OVER ()`: beside each row of a query, the number of rows it
/// selects before its `OFFSET` and `LIMIT`. A plain expression type, so
/// that queries holding it stay cacheable as prepared statements (an SQL
/// literal would not be).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub struct CountOver;

impl diesel::expression::Expression for CountOver {
    type SqlType = diesel::sql_types::BigInt;
}

impl<DB: Backend> QueryFragment<DB> for CountOver {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("COUNT(*) OVER ()");
        Ok(())
    }
}

impl<QS> diesel::expression::SelectableExpression<QS> for CountOver {}

impl<QS> diesel::expression::AppearsOnTable<QS> for CountOver {}

impl<GB> diesel::expression::ValidGrouping<GB> for CountOver {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// What the shared query code needs to decode documents, named from the
/// adapter crates that instantiate it (they need not depend on serde).
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
    pub use time::serde::rfc3339;

    /// `Option<Date>` from `"YYYY-MM-DD"` or null.
    pub mod date_opt {
        use serde::{Deserialize, Deserializer};
        use time::Date;

        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
            time::macros::format_description!("[year]-[month]-[day]");

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            match Option::<&str>::deserialize(d)? {
                None => Ok(None),
                Some(text) => Date::parse(text, FORMAT)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{date_opt, rfc3339};
    use serde::Deserialize;
    use time::macros::{date, datetime};

    #[derive(Deserialize)]
    struct Sample {
        #[serde(with = "rfc3339")]
        at: time::OffsetDateTime,
        #[serde(with = "rfc3339::option")]
        maybe: Option<time::OffsetDateTime>,
        #[serde(deserialize_with = "date_opt::deserialize")]
        day: Option<time::Date>,
    }

    #[test]
    fn timestamps_keep_their_instant_and_microseconds() {
        let s: Sample = serde_json::from_str(
            r#"{"at": "2026-12-03T13:04:16.000123+01:00", "maybe": null, "day": "0999-01-31"}"#,
        )
        .unwrap();
        assert_eq!(s.at, datetime!(2026-12-03 12:04:16.000123 UTC));
        assert_eq!(s.maybe, None);
        assert_eq!(s.day, Some(date!(0999 - 01 - 31)));
        let s: Sample =
            serde_json::from_str(r#"{"at": "2026-12-03T12:00:00+00:00", "maybe": "2026-12-03T12:00:00.5+00:00", "day": null}"#)
                .unwrap();
        assert_eq!(s.maybe, Some(datetime!(2026-12-03 12:00:00.5 UTC)));
        assert_eq!(s.day, None);
    }
}
