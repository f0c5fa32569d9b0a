//! Reads the database for the health service: SERVING while it answers, NOT_SERVING while
//! it does not, so that a load balancer sends calls only to a replica that can serve them;
//! meanwhile calls fail as UNAVAILABLE at once instead of waiting for a connection.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    health,
    shutdown::Shutdown,
    store::{Probe, Store},
};

/// A database slower than this to answer a one-row read counts as not answering. Fixed, not
/// the probe interval: a short interval must not make a busy database look down. With the
/// default interval of a second, an outage shows on health within about two and a half
/// seconds, and calls are refused at once from about a second later.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Probes every `interval` and reports what it finds, until shutdown (which reports
/// NOT_SERVING itself).
pub async fn run(reporter: HealthReporter, store: Arc<Store>, interval: Duration, shutdown: Shutdown) {
    let (serving, failures) = (AtomicBool::new(true), AtomicU32::new(0));
    let (reporter, store, serving, failures, watched) = (&reporter, &store, &serving, &failures, &shutdown);
    super::every(interval, shutdown.clone(), || async move {
        let probe = store.probe(PROBE_TIMEOUT).await;
        let answers = probe == Probe::Answers;
        // Calls fail at once while the database refuses or cannot be reached (see
        // Store::ensure_reachable), from the second probe in a row that failed. A probe
        // that was only slow on a working connection does not count: a busy database must
        // not make a replica refuse everything.
        let failed_in_a_row = match probe {
            Probe::Fails => failures.fetch_add(1, Ordering::Relaxed) + 1,
            Probe::Answers | Probe::Slow => {
                failures.store(0, Ordering::Relaxed);
                0
            }
        };
        store.set_reachable(failed_in_a_row < 2);
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
