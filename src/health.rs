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
        match self.phase {
            Phase::Ended => None,
            Phase::Cut => self.end(),
            Phase::Open => tokio::select! {
                // A change already waiting goes out before the end.
                biased;
                item = self.statuses.next() => {
                    match &item {
                        Some(Ok(response)) => self.last = Some(response.status),
                        Some(Err(_)) => {}
                        None => self.phase = Phase::Ended,
                    }
                    item
                }
                () = self.shutdown.cancelled() => self.cut(),
            },
        }
    }

    /// Shutdown began: NOT_SERVING, unless the watcher has just been told, then the end.
    fn cut(&mut self) -> Option<Result<HealthCheckResponse, Status>> {
        let not_serving = WireStatus::NotServing as i32;
        if self.last == Some(not_serving) {
            return self.end();
        }
        self.phase = Phase::Cut;
        self.last = Some(not_serving);
        Some(Ok(HealthCheckResponse { status: not_serving }))
    }

    fn end(&mut self) -> Option<Result<HealthCheckResponse, Status>> {
        self.phase = Phase::Ended;
        Some(Err(api::shutting_down("watch another replica, or this one once it is back")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch of the server's status ("") through the service, for `shutdown`.
    async fn watch(reporter: &HealthReporter, shutdown: &Shutdown) -> WatchStream {
        let service =
            ShutdownAware { inner: HealthService::from_health_reporter(reporter.clone()), shutdown: shutdown.clone() };
        let request = Request::new(HealthCheckRequest { service: String::new() });
        service.watch(request).await.unwrap().into_inner()
    }

    /// The statuses a watch sends, and the code it ends with.
    async fn watched(mut watch: WatchStream) -> (Vec<i32>, Option<tonic::Code>) {
        let mut statuses = Vec::new();
        while let Some(item) = watch.next().await {
            match item {
                Ok(response) => statuses.push(response.status),
                Err(status) => {
                    assert!(watch.next().await.is_none(), "nothing after the end");
                    return (statuses, Some(status.code()));
                }
            }
        }
        (statuses, None)
    }

    #[tokio::test]
    async fn at_shutdown_a_watch_is_told_not_serving_once_and_ends_unavailable() {
        let (serving, not_serving) = (WireStatus::Serving as i32, WireStatus::NotServing as i32);
        let (reporter, shutdown) = (HealthReporter::new(), Shutdown::new());
        let mut open = watch(&reporter, &shutdown).await;
        assert_eq!(open.next().await.unwrap().unwrap().status, serving);
        shutdown.cancel();
        assert_eq!(watched(open).await, (vec![not_serving], Some(tonic::Code::Unavailable)));

        // As the server does it: shutdown begins, then NOT_SERVING is reported.
        let (reporter, shutdown) = (HealthReporter::new(), Shutdown::new());
        let mut open = watch(&reporter, &shutdown).await;
        assert_eq!(open.next().await.unwrap().unwrap().status, serving);
        shutdown.cancel();
        report(&reporter, ServingStatus::NotServing).await;
        assert_eq!(watched(open).await, (vec![not_serving], Some(tonic::Code::Unavailable)));
    }

    #[tokio::test]
    async fn a_watch_opened_during_shutdown_says_so_and_ends() {
        let (reporter, shutdown) = (HealthReporter::new(), Shutdown::new());
        shutdown.cancel();
        report(&reporter, ServingStatus::NotServing).await;
        let (statuses, end) = watched(watch(&reporter, &shutdown).await).await;
        assert_eq!((statuses, end), (vec![WireStatus::NotServing as i32], Some(tonic::Code::Unavailable)));
    }
}
