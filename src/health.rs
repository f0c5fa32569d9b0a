//! The standard gRPC health service's statuses: SERVING while the database answers
//! (`jobs::storage_health` probes it), NOT_SERVING while it does not and from the start of
//! shutdown. Reported for the server as a whole ("") and for each Missive service.

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::api;

/// Sets the status of the server and of every service.
pub async fn report(reporter: &HealthReporter, status: ServingStatus) {
    for name in std::iter::once("").chain(api::SERVICES) {
        reporter.set_service_status(name, status).await;
    }
}
