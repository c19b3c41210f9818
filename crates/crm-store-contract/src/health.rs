//! `HealthCheck`.

use std::sync::Arc;

use crate::Ports;

pub async fn ping_answers<S: Ports>(store: Arc<S>) {
    store.ping().await.expect("ping a reachable store");
    // Repeatedly, and concurrently: a ping holds no connection it keeps.
    let pings: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.ping().await })
        })
        .collect();
    for ping in pings {
        ping.await.expect("task").expect("ping");
    }
}
