//! Builds and runs the tonic server: Missive's services, the standard health service,
//! server reflection (v1 and v1alpha), grpc-web, keepalives, and graceful shutdown.
//!
//! [`Application::build`] binds and opens the database first, so that the caller learns the
//! real address (port 0 picks one) before serving; tests start exactly what `main` starts.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch};
use tonic::{
    codegen::http,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tonic_web::GrpcWebLayer;
use tower_http::trace::TraceLayer;

use crate::{
    api::{self, ApiState, pb},
    config::Config,
    domain::{Error, messages::MessageLimits},
    events::{self, Hub, StreamSettings, StreamStats, stream::StreamContext},
    health,
    store::Store,
    telemetry,
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Store(#[from] Error),
    #[error("could not build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A server that is bound and connected, ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    config: Config,
    store: Arc<Store>,
    hub: Arc<Hub>,
    stream_stats: Arc<StreamStats>,
}

impl Application {
    /// Opens (and migrates) the database and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let hub = Hub::new();
        let store = Arc::new(Store::open(&config.database_url, Arc::clone(&hub)).await?);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        Ok(Self { listener, addr, config, store, hub, stream_stats: Arc::default() })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store, for operators' checks (and tests that verify stored state).
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Counters over the Subscribe streams.
    pub fn stream_stats(&self) -> Arc<StreamStats> {
        Arc::clone(&self.stream_stats)
    }

    /// Serves until `shutdown` completes, then stops accepting calls, ends every stream,
    /// lets in-flight calls finish within the grace period, and closes the database pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let (stopping_tx, stopping) = watch::channel(false);
        let settings = StreamSettings {
            heartbeat_interval: self.config.heartbeat_interval,
            poll_interval: self.config.event_poll_interval,
            ..StreamSettings::default()
        };
        let state = ApiState {
            store: Arc::clone(&self.store),
            limits: MessageLimits { max_attachment_bytes: self.config.max_attachment_bytes as usize },
            streams: StreamContext {
                store: Arc::clone(&self.store),
                hub: Arc::clone(&self.hub),
                settings,
                stats: Arc::clone(&self.stream_stats),
                shutdown: stopping.clone(),
            },
        };
        // Room for the largest message: every attachment at its limit, plus the rest.
        let max_message_bytes = (self.config.max_attachment_bytes as usize)
            .saturating_mul(crate::domain::messages::MAX_ATTACHMENTS)
            .saturating_add(1024 * 1024);

        let (health, health_service) = tonic_health::server::health_reporter();
        health::report(&health, ServingStatus::Serving).await;
        let health_watch = tokio::spawn(health::watch_storage(
            health.clone(),
            Arc::clone(&self.store),
            self.config.health_check_interval,
            stopping.clone(),
        ));

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let router = Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .layer(
                // One span per call, with the method, the caller (once authenticated) and
                // the time to answer; one line when it ends, with its status.
                TraceLayer::new_for_grpc()
                    .make_span_with(|request: &http::Request<_>| {
                        tracing::info_span!(
                            "rpc",
                            method = %request.uri().path(),
                            caller = tracing::field::Empty,
                            millis = tracing::field::Empty,
                        )
                    })
                    .on_request(())
                    .on_response(|response: &http::Response<_>, latency: Duration, span: &tracing::Span| {
                        telemetry::on_response(response.headers(), latency, span)
                    })
                    .on_eos(|trailers: Option<&http::HeaderMap>, _: Duration, _: &tracing::Span| {
                        telemetry::on_end_of_stream(trailers)
                    })
                    .on_failure(()),
            )
            .layer(GrpcWebLayer::new())
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                pb::admin_service_server::AdminServiceServer::new(api::AdminApi::new(state.clone()))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                pb::conversation_service_server::ConversationServiceServer::new(api::ConversationApi::new(
                    state.clone(),
                ))
                .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                pb::message_service_server::MessageServiceServer::new(api::MessageApi::new(state.clone()))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(pb::event_service_server::EventServiceServer::new(api::EventApi::new(state)));

        let retention = tokio::spawn(events::retention::run(
            Arc::clone(&self.store),
            self.config.event_retention,
            self.config.event_prune_interval,
            stopping.clone(),
        ));

        let listener = (self.store.backend() == sea_orm::DbBackend::Postgres).then(|| {
            tokio::spawn(events::listener::run(
                self.config.database_url.clone(),
                Arc::clone(&self.hub),
                stopping.clone(),
            ))
        });

        tracing::info!(addr = %self.addr, database = %self.store.backend_name(), "missive is serving");
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let mut stopped = stopping.clone();
        let serve = router.serve_with_incoming_shutdown(incoming, async move {
            let _ = stopped.wait_for(|stopping| *stopping).await;
        });
        tokio::pin!(serve);
        let grace = self.config.shutdown_grace;
        let result = tokio::select! {
            result = &mut serve => result.map_err(StartError::from),
            () = async {
                shutdown.await;
                tracing::info!("shutting down: ending streams, finishing in-flight calls");
                let _ = stopping_tx.send(true);
                health::report(&health, ServingStatus::NotServing).await;
                tokio::time::sleep(grace).await;
            } => {
                // The grace period is over before every connection closed.
                tracing::warn!(?grace, "grace period over; closing the remaining connections");
                Ok(())
            }
        };
        let _ = stopping_tx.send(true);
        let _ = retention.await;
        let _ = health_watch.await;
        if let Some(listener) = listener {
            let _ = listener.await;
        }
        self.store.close().await;
        tracing::info!("missive stopped");
        result
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before binding, so that a signal
/// that arrives as soon as the port answers is not fatal.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals =
            signal(SignalKind::interrupt()).and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGINT/SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
