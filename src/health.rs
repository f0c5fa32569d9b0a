//! The standard gRPC health service: its statuses, SERVING while the database answers
//! (`jobs::storage_health` probes it), NOT_SERVING while it does not and from the start of
//! shutdown, reported for the server as a whole ("") and for each Missive service; and the
//! service itself, tonic-health's, whose `Watch` streams end when shutdown begins.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_check_response::ServingStatus as WireStatus,
        health_server::{Health, HealthServer},
    },
    server::{HealthReporter, HealthService},
};

use crate::{api, shutdown::Shutdown};

/// Sets the status of the server and of every service.
pub async fn report(reporter: &HealthReporter, status: ServingStatus) {
    for name in std::iter::once("").chain(api::SERVICES) {
        reporter.set_service_status(name, status).await;
    }
}

/// The health service over `reporter`'s statuses; its watches end at `shutdown`.
pub fn service(reporter: HealthReporter, shutdown: Shutdown) -> HealthServer<ShutdownAware> {
    HealthServer::new(ShutdownAware { inner: HealthService::from_health_reporter(reporter), shutdown })
}

/// tonic-health's service, but a `Watch` does not outlive the server. A watch only ends
/// when its client leaves, and the server's graceful stop waits for every call: an open
/// watch (a load balancer's, a sidecar's) would hold the process for the whole grace
/// period. So at shutdown each watch is told NOT_SERVING, if it was not already, and ends
/// UNAVAILABLE, as a `Subscribe` stream does; its client watches another replica, or this
/// one again once it is back.
pub struct ShutdownAware {
    inner: HealthService,
    shutdown: Shutdown,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for ShutdownAware {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        Ok(Response::new(until_shutdown(statuses, self.shutdown.clone())))
    }
}

/// `statuses` until `shutdown`, then NOT_SERVING (unless that was the last status sent) and
/// the end, UNAVAILABLE. A change of status already waiting is sent first.
fn until_shutdown(
    statuses: impl Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static,
    shutdown: Shutdown,
) -> WatchStream {
    let watch = Watch { statuses: Box::pin(statuses), shutdown, last: None, phase: Phase::Open };
    Box::pin(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    }))
}

/// One watch's state, for [`until_shutdown`].
struct Watch {
    statuses: WatchStream,
    shutdown: Shutdown,
    /// The last status sent.
    last: Option<i32>,
    phase: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Passing statuses on.
    Open,
    /// Shutdown began and NOT_SERVING was sent: the end is next.
    Cut,
    /// Nothing more.
    Ended,
}

impl Watch {
    async fn next(&mut self) -> Option<Result<HealthCheckResponse, Status>> {
        let not_serving = WireStatus::NotServing as i32;
        match self.phase {
            Phase::Ended => return None,
            Phase::Cut => {
                self.phase = Phase::Ended;
                return Some(Err(api::shutting_down()));
            }
            Phase::Open => {}
        }
        tokio::select! {
            biased;
            item = self.statuses.next() => {
                if let Some(Ok(response)) = &item {
                    self.last = Some(response.status);
                }
                if item.is_none() {
                    self.phase = Phase::Ended;
                }
                item
            }
            () = self.shutdown.cancelled() => {
                self.phase = Phase::Cut;
                if self.last == Some(not_serving) {
                    self.phase = Phase::Ended;
                    return Some(Err(api::shutting_down()));
                }
                self.last = Some(not_serving);
                Some(Ok(HealthCheckResponse { status: not_serving }))
            }
        }
    }
}
