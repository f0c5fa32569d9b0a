//! Prunes events older than the retention window, in the background.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{domain::now_micros, store::Store};

/// Prunes every `interval` until shutdown.
pub async fn run(store: Arc<Store>, retention: Duration, interval: Duration, shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = super::until_stopping(shutdown.clone()) => return,
        }
        let cutoff = now_micros().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        match store.prune_events(cutoff).await {
            Ok(report) if report.pruned_events > 0 => {
                tracing::info!(pruned_events = report.pruned_events, "pruned events past the retention window");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "pruning the event log failed; will retry"),
        }
    }
}
