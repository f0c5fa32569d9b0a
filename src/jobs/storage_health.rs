//! Reads the database for the health service: SERVING while it answers, NOT_SERVING while
//! it does not, so that a load balancer sends calls only to a replica that can serve them;
//! meanwhile calls fail as UNAVAILABLE at once instead of waiting for a connection.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{health, shutdown::Shutdown, store::Store};

/// A database slower than this to answer a one-row read counts as not answering. Fixed, not
/// the probe interval: a short interval must not make a busy database look down. With the
/// default interval of a second, an outage shows within about two and a half.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Probes every `interval` and reports what it finds, until shutdown (which reports
/// NOT_SERVING itself).
pub async fn run(reporter: HealthReporter, store: Arc<Store>, interval: Duration, shutdown: Shutdown) {
    let serving = AtomicBool::new(true);
    let (reporter, store, serving, watched) = (&reporter, &store, &serving, &shutdown);
    super::every(interval, shutdown.clone(), || async move {
        let answers = store.answers(PROBE_TIMEOUT).await;
        // Calls fail at once while the database does not answer (see Store::ensure_reachable).
        store.set_reachable(answers);
        if serving.swap(answers, Ordering::Relaxed) == answers {
            return;
        }
        if answers {
            tracing::info!("the database answers again: serving");
        } else {
            tracing::warn!("the database does not answer: reporting NOT_SERVING");
        }
        // Shutdown may have begun while the probe ran; it has the last word.
        if !watched.is_cancelled() {
            let status = if answers { ServingStatus::Serving } else { ServingStatus::NotServing };
            health::report(reporter, status).await;
        }
    })
    .await;
}
