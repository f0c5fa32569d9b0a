//! The standard gRPC health service's statuses: SERVING while the database answers,
//! NOT_SERVING while it does not and from the start of shutdown, so that a load balancer
//! sends calls only to a replica that can serve them.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic::server::NamedService;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    api::{self, pb},
    store::Store,
};

/// "" is the server as a whole; each service is reported under its full name too.
const SERVICES: [&str; 5] = [
    "",
    <pb::admin_service_server::AdminServiceServer<api::AdminApi> as NamedService>::NAME,
    <pb::conversation_service_server::ConversationServiceServer<api::ConversationApi> as NamedService>::NAME,
    <pb::message_service_server::MessageServiceServer<api::MessageApi> as NamedService>::NAME,
    <pb::event_service_server::EventServiceServer<api::EventApi> as NamedService>::NAME,
];

/// Sets every service's status.
pub async fn report(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// Pings the database every `interval` and reports what it finds, until shutdown (which
/// reports NOT_SERVING itself).
pub async fn watch_storage(
    reporter: HealthReporter,
    store: Arc<Store>,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let mut serving = true;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = crate::events::until_stopping(shutdown.clone()) => return,
        }
        let answers = store.ping().await;
        if answers != serving {
            serving = answers;
            if serving {
                tracing::info!("the database answers again: serving");
            } else {
                tracing::warn!("the database does not answer: reporting NOT_SERVING");
            }
            let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
            // Shutdown may have begun while the ping ran; it has the last word.
            if !*shutdown.borrow() {
                report(&reporter, status).await;
            }
        }
    }
}
