//! The read replica's monitor: every [`PROBE_INTERVAL`] it asks the primary
//! (on a connection of its own, to the primary's direct address) for its
//! WAL position and the replica for the position it has replayed
//! (`pg_last_wal_replay_lsn()`), and keeps the routing state of
//! [`crm_diesel::replica`] current: how far the replica has caught up, and
//! whether it answers as a replica at all. A replica that does not answer,
//! or answers as a primary (promoted, or a wrong URL), serves no reads until
//! it answers as a replica again.

use std::sync::Arc;
use std::time::Duration;

use crm_diesel::replica::{ReplicaState, Samples};
use crm_diesel::{Store, StoreResult};
use diesel::sql_types::{BigInt, Nullable};
use diesel::{QueryableByName, RunQueryDsl};

use crate::Postgres;

/// How often the positions are compared: the least lag a read-your-writes
/// session waits for after a write, and the granularity of the lag.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<BigInt>)]
    lsn: Option<i64>,
}

fn position(conn: &mut diesel::PgConnection, sql: &'static str) -> StoreResult<Option<u64>> {
    let row: Position = diesel::sql_query(sql).get_result(conn)?;
    Ok(row.lsn.and_then(|lsn| u64::try_from(lsn).ok()))
}

const PRIMARY_POSITION: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn";
/// NULL on a server that is not in recovery.
const REPLAYED_POSITION: &str =
    "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS lsn";

/// Runs the monitor until the store that routes with `state` is gone.
pub(crate) async fn monitor(
    primary: Store<Postgres>,
    replica: Store<Postgres>,
    state: Arc<ReplicaState>,
) {
    let mut samples = Samples::default();
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = None;
    loop {
        ticks.tick().await;
        // Only this task holds the state: every store using it is dropped.
        if Arc::strong_count(&state) == 1 {
            return;
        }
        let asked = state.now();
        if let Ok(Some(at)) = primary.run(|conn| position(conn, PRIMARY_POSITION)).await {
            samples.primary_at(asked, at);
        }
        let replayed = replica.run(|conn| position(conn, REPLAYED_POSITION)).await;
        let up = match replayed {
            Ok(Some(at)) => {
                samples.replica_at(&state, at);
                true
            }
            Ok(None) => {
                samples.replica_down(&state);
                if was_up != Some(false) {
                    tracing::warn!("the read replica is not in recovery (not a replica); reading from the primary");
                }
                false
            }
            Err(error) => {
                samples.replica_down(&state);
                if was_up != Some(false) {
                    let error = error.to_string().replace(|c: char| c.is_control(), " ");
                    tracing::warn!(%error, "the read replica does not answer; reading from the primary");
                }
                false
            }
        };
        if up && was_up == Some(false) {
            tracing::info!("the read replica answers again");
        }
        was_up = Some(up);
    }
}
