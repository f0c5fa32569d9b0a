//! The server as a whole: [`Application::build`] opens (and migrates) the database, binds
//! the listener and builds every service (Missive's, health, reflection v1 and v1alpha);
//! [`Application::run_until`] starts the jobs, serves (with grpc-web and keepalives) until
//! told to stop, then drains: streams (`Subscribe`, health `Watch`) end UNAVAILABLE,
//! in-flight calls get a grace period, jobs are awaited and the pool is closed. `main` and
//! the tests start exactly this.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tonic_web::GrpcWebLayer;

use crate::{
    api::{self, ApiState, Gate, GateLayer, pb},
    config::Config,
    domain::{Error, messages::MessageLimits},
    events::{
        FeedSettings, Feeds, StreamSettings, StreamStats, listener,
        presence::{self, PresenceTracker},
        signals::Signals,
        stream::StreamContext,
    },
    health,
    jobs::{self, Jobs},
    prometheus::MetricsEndpoint,
    shutdown::Shutdown,
    store::Store,
    telemetry,
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address is taken or not ours.
    #[error("could not listen on {addr} ({flag}): {source}")]
    Bind {
        /// The flag that asked for it.
        flag: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Database(#[from] Error),
    /// The reflection service could not read the descriptors.
    #[error("could not build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A limit cannot be met as configured.
    #[error("{0}")]
    Limit(String),
    /// The TLS files are missing or unusable.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Serving failed.
    #[error("the server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A server that is bound, connected and built, ready to run.
pub struct Application {
    /// Accepts connections once running.
    listener: TcpListener,
    /// Where it listens (the real port when port 0 was asked for).
    addr: SocketAddr,
    config: Config,
    store: Arc<Store>,
    stream_stats: Arc<StreamStats>,
    /// Every gRPC service, health and reflection included.
    routes: Routes,
    /// The keys' door and limits, in front of the routes.
    gate: Arc<Gate>,
    /// The listener's certificate and key, when it speaks TLS.
    tls: Option<ServerTlsConfig>,
    /// Where Prometheus scrapes, when asked for.
    metrics: Option<MetricsEndpoint>,
    health: HealthReporter,
    /// Cancelled to stop streams and jobs.
    shutdown: Shutdown,
    /// What the live side runs besides the streams.
    background: Background,
}

/// The presence task (until started) and the signals the event listener forwards to.
struct Background {
    presence: Option<presence::Task>,
    signals: Arc<Signals>,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and builds the services.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        // Checked before anything is opened: a limit that cannot work stops the start.
        let largest_request = api::DecodeLimits::new(&message_limits(&config)).with_files;
        let key_limits = config.limits.per_key(largest_request).map_err(StartError::Limit)?;
        let tls = crate::tls::load(&config)?;
        let store = Arc::new(Store::open_with(&config.database_url, &config.database.store_settings()).await?);
        let listener = TcpListener::bind(config.listen).await.map_err(|source| StartError::Bind {
            flag: "--listen",
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            flag: "--listen",
            addr: config.listen,
            source,
        })?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(MetricsEndpoint::bind(addr).await.map_err(|source| StartError::Bind {
                flag: "--metrics-listen",
                addr,
                source,
            })?),
            None => None,
        };
        let shutdown = Shutdown::new();
        let stream_stats = Arc::<StreamStats>::default();
        let (state, background) = api_state(&config, &store, &stream_stats, &shutdown);
        let health = HealthReporter::new();
        health::report(&health, ServingStatus::Serving).await;
        let mut routes = api::routes(state);
        routes.add_service(health::service(health.clone(), shutdown.clone()));
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(pb::ERROR_DETAILS_FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        routes.add_service(reflection().build_v1()?).add_service(reflection().build_v1alpha()?);
        let routes = routes.routes();
        let gate = Gate::new(Arc::clone(&store), key_limits);
        Ok(Self {
            listener,
            addr,
            config,
            store,
            stream_stats,
            routes,
            gate,
            tls,
            metrics,
            health,
            shutdown,
            background,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the metrics endpoint, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::local_addr)
    }

    /// The store, for operators' checks (and tests that verify stored state).
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Counters over the Subscribe streams.
    pub fn stream_stats(&self) -> Arc<StreamStats> {
        Arc::clone(&self.stream_stats)
    }

    /// Serves until `stop` completes, then stops accepting calls, ends every stream, lets
    /// in-flight calls finish within the grace period, waits for the jobs and closes the
    /// database pool.
    pub async fn run_until(mut self, stop: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let jobs = self.start_jobs();
        if !self.config.cors_allowed_origins.is_empty() {
            tracing::info!(origins = ?self.config.cors_allowed_origins, "grpc-web calls allowed from these origins (CORS)");
        }
        tracing::info!(
            addr = %self.addr,
            database = %self.store.backend_name(),
            tls = self.tls.is_some(),
            "missive is serving"
        );
        let Self { listener, config, store, routes, gate, tls, health, shutdown, .. } = self;
        let result = serve(listener, routes, gate, tls, &config, async {
            stop.await;
            tracing::info!("shutting down: ending streams, finishing in-flight calls");
            shutdown.cancel();
            health::report(&health, ServingStatus::NotServing).await;
        })
        .await;
        shutdown.cancel();
        jobs.join().await;
        store.close().await;
        tracing::info!("missive stopped");
        result
    }

    fn start_jobs(&mut self) -> Jobs {
        let mut jobs = Jobs::default();
        if let Some(metrics) = self.metrics.take() {
            tracing::info!(addr = %metrics.local_addr(), "metrics at GET /metrics");
            jobs.spawn("metrics endpoint", metrics.serve(Arc::clone(&self.store), self.shutdown.clone()));
        }
        let (store, config, shutdown) = (&self.store, &self.config, &self.shutdown);
        jobs.spawn(
            "storage health",
            jobs::storage_health::run(
                self.health.clone(),
                Arc::clone(store),
                config.health_check_interval,
                shutdown.clone(),
            ),
        );
        jobs.spawn(
            "event retention",
            jobs::retention::run(
                Arc::clone(store),
                config.event_retention,
                config.event_prune_interval,
                shutdown.clone(),
            ),
        );
        jobs.spawn(
            "scheduled delivery",
            jobs::delivery::run(Arc::clone(store), config.schedule_interval, shutdown.clone()),
        );
        jobs.spawn("planner statistics", jobs::statistics::run(Arc::clone(store), shutdown.clone()));
        if let Some(task) = self.background.presence.take() {
            jobs.spawn("presence", task.run(shutdown.clone()));
        }
        if store.backend() == sea_orm::DbBackend::Sqlite {
            jobs.spawn("key refresh", jobs::keys::run(Arc::clone(store), shutdown.clone()));
        }
        if store.backend() == sea_orm::DbBackend::Postgres {
            let signals = Arc::clone(&self.background.signals);
            jobs.spawn(
                "event listener",
                listener::run(config.database_url.clone(), Arc::clone(store), signals, shutdown.clone()),
            );
        }
        jobs
    }
}

/// What the services share, and the live side's background work to start with the jobs.
fn api_state(
    config: &Config,
    store: &Arc<Store>,
    stream_stats: &Arc<StreamStats>,
    shutdown: &Shutdown,
) -> (ApiState, Background) {
    let stream_settings = StreamSettings { heartbeat_interval: config.heartbeat_interval, ..StreamSettings::default() };
    // A fresh id per process: a restarted replica's old leases lapse by themselves.
    let signals = Signals::new(Arc::clone(store), uuid::Uuid::now_v7().simple().to_string());
    let (tracker, presence) = PresenceTracker::new(Arc::clone(store), Arc::clone(&signals));
    let state = ApiState {
        store: Arc::clone(store),
        limits: message_limits(config),
        max_token_ttl: config.max_user_token_ttl,
        streams: StreamContext {
            store: Arc::clone(store),
            feeds: Feeds::new(
                Arc::clone(store),
                FeedSettings { poll_interval: config.event_poll_interval, batch_size: stream_settings.batch_size },
            ),
            settings: stream_settings,
            stats: Arc::clone(stream_stats),
            signals: Arc::clone(&signals),
            presence: tracker,
            shutdown: shutdown.clone(),
        },
        typing: Arc::default(),
    };
    (state, Background { presence: Some(presence), signals })
}

/// Serves `routes` behind `gate` on `listener` until `draining` (which starts the
/// shutdown) is done and every connection closed, or the shutdown grace after that.
async fn serve(
    listener: TcpListener,
    routes: Routes,
    gate: Arc<Gate>,
    tls: Option<ServerTlsConfig>,
    config: &Config,
    draining: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let (grace, limits) = (config.shutdown_grace, &config.limits);
    let (drained_tx, drained) = tokio::sync::oneshot::channel::<()>();
    let mut server = Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .tcp_keepalive(Some(Duration::from_secs(60)));
    if let Some(age) = limits.max_connection_age {
        server = server.max_connection_age(age).max_connection_age_grace(grace);
    }
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    let server = server
        .layer(telemetry::call_trace())
        .layer(tower::util::option_layer(api::cors::layer(&config.cors_allowed_origins)))
        .layer(GrpcWebLayer::new())
        // Inside grpc-web, where every call's status is a header or a trailer.
        .layer(telemetry::calls::CallEndLayer::new())
        .layer(GateLayer(gate))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = drained.await;
        });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.map_err(StartError::from),
        () = async {
            draining.await;
            let _ = drained_tx.send(());
            tokio::time::sleep(grace).await;
        } => {
            // The grace period is over before every connection closed.
            tracing::warn!(?grace, "grace period over; closing the remaining connections");
            Ok(())
        }
    }
}

/// What a message may carry, as configured.
fn message_limits(config: &Config) -> MessageLimits {
    MessageLimits {
        max_attachment_bytes: config.max_attachment_bytes as usize,
        schedule_horizon: i64::try_from(config.schedule_horizon.as_micros()).unwrap_or(i64::MAX),
    }
}
