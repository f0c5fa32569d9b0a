//! Prunes events older than the retention window, and the canceled scheduled messages kept
//! as long (for retries of the sends that scheduled them).

use std::{sync::Arc, time::Duration};

use crate::{domain::now_micros, shutdown::Shutdown, store::Store};

/// Prunes every `interval` until shutdown.
pub async fn run(store: Arc<Store>, retention: Duration, interval: Duration, shutdown: Shutdown) {
    let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    super::every(interval, shutdown, || async {
        let cutoff = now_micros().saturating_sub(retention);
        match crate::store::events::prune(&store, cutoff).await {
            Ok(report) if report.pruned_events > 0 => {
                tracing::info!(pruned_events = report.pruned_events, "pruned events past the retention window");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "pruning the event log failed; will retry"),
        }
        match crate::store::scheduled::prune_canceled(&store, cutoff).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned canceled scheduled messages past the retention window"),
            Err(err) => tracing::warn!(error = %err, "pruning canceled scheduled messages failed; will retry"),
        }
    })
    .await;
}
