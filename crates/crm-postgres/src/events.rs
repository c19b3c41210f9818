//! Publishing the change feed: numbering events in the order they become
//! visible.
//!
//! Writers insert events in their own transactions and commit concurrently,
//! in any order, so the order of insertion (`seq`) is not the order in which
//! events become visible: had event 10 been numbered at insertion, a reader
//! that listed event 11 while the transaction holding 10 was still running
//! would never see 10. So an event gets its public `id` when it is
//! *published*: a publisher numbers the committed events that have no id yet
//! after the last published id, in `seq` order, and commits. Publishers take
//! turns on the row lock of `crm_event_log`, and each numbers from a
//! snapshot taken after the previous one committed, so:
//!
//! - an event still uncommitted is invisible to the publisher and is
//!   numbered in a later round, after every id handed out before it;
//! - a batch becomes visible to readers all at once, when its publisher
//!   commits, and only after every earlier batch.
//!
//! So ids become visible in increasing order, and a reader that asks for
//! the events after the last id it saw never skips one. No transaction ids
//! are compared, so a long-running transaction elsewhere in the cluster
//! does not hold the feed back; only the events of a write still running
//! wait, for their own commit.
//!
//! Publishers are the feed's readers (before each read) and each server's
//! background publisher; one that finds the lock taken leaves the work to
//! its holder instead of waiting.

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

/// Numbers at most `$1` committed events after `$2`, the last published id
/// read under the lock. A statement of its own, so its snapshot is taken
/// after the lock was granted and sees what the previous publisher
/// committed.
const PUBLISH: &str = "WITH batch AS ( \
         SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM ( \
             SELECT seq FROM crm_events WHERE id IS NULL ORDER BY seq LIMIT $1) pending), \
     numbered AS ( \
         UPDATE crm_events e SET id = $2 + batch.n FROM batch \
         WHERE e.seq = batch.seq RETURNING 1) \
     UPDATE crm_event_log SET last_published = last_published + (SELECT count(*) FROM numbered) \
     WHERE (SELECT count(*) FROM numbered) > 0 \
     RETURNING last_published - $2 AS numbered";

/// Publishes what is committed; see the module docs. Runs in the caller's
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
