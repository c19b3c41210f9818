//! Publishing the change feed: numbering events in the order they can no
//! longer change.
//!
//! Writers insert events in their own transactions and commit concurrently,
//! in any order, so the order of insertion (`seq`) is not the order in which
//! events become visible: a reader that listed event 11 while the
//! transaction holding event 10 was still running would never see 10. So
//! an event is given its public `id` only once no transaction that could
//! still commit is older than its own: `xid < pg_snapshot_xmin(...)`, the
//! oldest transaction running anywhere in the cluster. Those events are
//! final (committed or gone), and every event inserted later has an xid at
//! least that old, so numbering them after the last published id, in
//! `(xid, seq)` order, never gives a later-visible event a smaller id.
//!
//! Publishers (the feed's readers and each server's background publisher)
//! take turns on the row lock of `crm_event_log`; one that finds it locked
//! leaves the work to the holder instead of waiting. A long-running write
//! transaction anywhere in the cluster holds publishing back for as long as
//! it runs (docs/operations.md).

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crm_diesel::StoreResult;

type Conn = diesel::pg::PgConnection;

#[derive(QueryableByName)]
struct LastPublished {
    #[diesel(sql_type = BigInt)]
    last_published: i64,
}

#[derive(QueryableByName)]
struct Numbered {
    #[diesel(sql_type = BigInt)]
    numbered: i64,
}

/// Locks the log row when there is anything to publish and nobody else is
/// publishing.
const LOCK: &str = "SELECT last_published FROM crm_event_log \
     WHERE EXISTS (SELECT 1 FROM crm_events WHERE id IS NULL) \
     FOR UPDATE SKIP LOCKED";

/// Numbers at most `$1` final events after `$2`, the last published id read
/// under the lock. A statement of its own, so its snapshot is taken after
/// the lock was granted and sees what the previous publisher committed.
const PUBLISH: &str = "WITH batch AS ( \
         SELECT seq, row_number() OVER (ORDER BY xid, seq) AS n FROM ( \
             SELECT seq, xid FROM crm_events \
             WHERE id IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY xid, seq LIMIT $1) pending), \
     numbered AS ( \
         UPDATE crm_events e SET id = $2 + batch.n FROM batch \
         WHERE e.seq = batch.seq RETURNING 1) \
     UPDATE crm_event_log SET last_published = last_published + (SELECT count(*) FROM numbered) \
     WHERE (SELECT count(*) FROM numbered) > 0 \
     RETURNING last_published - $2 AS numbered";

/// Publishes what is final; see the module docs. Runs in the caller's
/// write transaction (READ COMMITTED: each statement its own snapshot).
pub(crate) fn publish(conn: &mut Conn, limit: i64) -> StoreResult<u64> {
    let Some(last) = diesel::sql_query(LOCK)
        .get_result::<LastPublished>(conn)
        .optional()?
    else {
        return Ok(0);
    };
    let numbered = diesel::sql_query(PUBLISH)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(last.last_published)
        .get_result::<Numbered>(conn)
        .optional()?;
    Ok(numbered.map_or(0, |n| u64::try_from(n.numbered).unwrap_or(0)))
}
