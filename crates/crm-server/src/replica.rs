//! The read replica's figures on `/metrics`, read from the store's routing
//! state whenever the metrics are rendered.

use crm_postgres::PgStore;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts};

pub(crate) struct ReplicaMetrics {
    store: PgStore,
    up: IntGauge,
    lag: Gauge,
    reads: IntCounterVec,
    fallbacks: IntCounter,
}

impl ReplicaMetrics {
    pub(crate) fn new(store: PgStore) -> Self {
        Self {
            store,
            up: IntGauge::new(
                "db_replica_up",
                "1 when the read replica answered its last probe as a replica, else 0.",
            )
            .expect("valid metric"),
            lag: Gauge::new(
                "db_replica_lag_seconds",
                "How far the read replica is behind the primary, by the time since the latest primary position it has replayed was sampled (-1 before the first).",
            )
            .expect("valid metric"),
            reads: IntCounterVec::new(
                Opts::new(
                    "db_replica_routed_reads_total",
                    "Reads that could go to the read replica (GET and HEAD), by where they went: replica, or primary (the replica lagging, down, or not yet holding the client's writes).",
                ),
                &["target"],
            )
            .expect("valid metric"),
            fallbacks: IntCounter::new(
                "db_replica_fallbacks_total",
                "Reads routed to the replica that got no connection there and went to the primary.",
            )
            .expect("valid metric"),
        }
    }
}

impl Collector for ReplicaMetrics {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.up.desc(),
            self.lag.desc(),
            self.reads.desc(),
            self.fallbacks.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(status) = self.store.replica_status() {
            self.up.set(i64::from(status.up));
            self.lag
                .set(status.lag.map_or(-1.0, |lag| lag.as_secs_f64()));
            for (target, total) in [
                ("replica", status.reads_replica),
                ("primary", status.reads_primary),
            ] {
                let counter = self.reads.with_label_values(&[target]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            self.fallbacks
                .inc_by(status.fallbacks.saturating_sub(self.fallbacks.get()));
        }
        [
            self.up.collect(),
            self.lag.collect(),
            self.reads.collect(),
            self.fallbacks.collect(),
        ]
        .concat()
    }
}
