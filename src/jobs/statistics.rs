//! Keeps the database's query-planner statistics current: at start and every hour (see
//! `Store::refresh_statistics`; a no-op on PostgreSQL, whose autovacuum does it).

use std::{sync::Arc, time::Duration};

use crate::{shutdown::Shutdown, store::Store};

/// How often statistics are refreshed. Cheap when nothing changed much: SQLite analyzes
/// only the tables whose size moved a lot since they were last analyzed.
const INTERVAL: Duration = Duration::from_secs(3600);

/// Refreshes now and every `INTERVAL` until shutdown.
pub async fn run(store: Arc<Store>, shutdown: Shutdown) {
    super::every(INTERVAL, shutdown, || async {
        if let Err(err) = store.refresh_statistics().await {
            tracing::warn!(error = %err, "refreshing query-planner statistics failed; will retry");
        }
    })
    .await;
}
