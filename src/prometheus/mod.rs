//! Prometheus metrics, for operators: with `--metrics-listen`, the process records metrics
//! (the `metrics` facade, exported by `metrics-exporter-prometheus`) and serves them as text
//! at `GET /metrics` on that separate address, so that the gRPC port stays gRPC only.
//!
//! What is measured, and where:
//! - calls by method and code, with latency histograms: `telemetry::calls`, a layer around
//!   every call;
//! - open `Subscribe` streams and events delivered to them: `events::stream`;
//! - write batches, their sizes, and events appended: the store's writer;
//! - database pool use: sampled here at each scrape;
//! - the process (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_open_fds`, `process_start_time_seconds`…, as Prometheus' own clients name
//!   them; `metrics-process`): sampled here at each scrape;
//! - what is running: `missive_build_info{version,rustc,profile} 1`, set once.

use std::{
    net::SocketAddr,
    sync::{Arc, LazyLock, OnceLock},
};

use axum::{Router, extract::State, http::header, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::{shutdown::Shutdown, store::Store};

/// Duration buckets, in seconds: from a read served from memory to the request timeout,
/// then minutes to hours for `Subscribe` streams, which last as long as their clients.
const LATENCY_BUCKETS: [f64; 20] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0, 14400.0,
];

/// The histogram of units per write batch, recorded by the store's writer.
const BATCH_UNITS: &str = "missive_write_batch_units";

/// Units per write batch: one when idle, up to hundreds under load.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Reads the process's figures from the OS.
static PROCESS: LazyLock<metrics_process::Collector> = LazyLock::new(metrics_process::Collector::default);

/// The process's recorder, installed on first use: every server of one process (tests run
/// several) records into, and exports, the same registry.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .and_then(|builder| builder.set_buckets_for_metric(Matcher::Full(BATCH_UNITS.into()), &BATCH_BUCKETS))
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows nothing of this process");
        }
        describe();
        // Counters that may stay at zero a long while are shown from the start, so that
        // rates and alerts over them work at once.
        metrics::counter!("missive_events_delivered_total").absolute(0);
        metrics::counter!("missive_events_appended_total").absolute(0);
        metrics::counter!("missive_write_batches_total", "outcome" => "committed").absolute(0);
        metrics::counter!("missive_write_batches_total", "outcome" => "failed").absolute(0);
        metrics::gauge!("missive_streams_open").set(0.0);
        build_info();
        handle
    })
}

/// The HELP lines: what each metric counts.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("missive_calls_total", "gRPC calls ended, by method and status code");
    describe_histogram!("missive_call_duration_seconds", Unit::Seconds, "Time from request to status, by method");
    describe_gauge!("missive_streams_open", "Subscribe streams open now");
    describe_counter!("missive_events_delivered_total", "Events queued to Subscribe streams");
    describe_counter!("missive_events_appended_total", "Events appended to the log and committed");
    describe_counter!("missive_write_batches_total", "Write transactions (group commits), by outcome");
    describe_histogram!(BATCH_UNITS, "Units of work (one per write request) per write batch");
    describe_gauge!("missive_db_pool_connections", "Database connections open, by state (idle, in_use)");
    describe_gauge!("missive_db_pool_max_connections", "The most database connections the pool opens");
    describe_gauge!("missive_build_info", "Always 1: the version running, the compiler and the build profile");
    PROCESS.describe();
}

/// `missive_build_info`: the labels say what runs, so that a dashboard can tell replicas'
/// versions apart during a rollout.
fn build_info() {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    metrics::gauge!(
        "missive_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "rustc" => env!("MISSIVE_RUSTC_VERSION"),
        "profile" => profile,
    )
    .set(1.0);
}

/// The metrics listener, bound at start so that a taken port stops the server at once.
pub struct MetricsEndpoint {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsEndpoint {
    /// Binds `addr` and starts recording.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        recorder();
        Ok(Self { listener, addr })
    }

    /// Where it listens (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `GET /metrics` until `shutdown`.
    pub async fn serve(self, store: Arc<Store>, shutdown: Shutdown) {
        let app = Router::new().route("/metrics", get(scrape)).with_state(store);
        if let Err(err) = axum::serve(self.listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::error!(error = %err, "the metrics endpoint failed");
        }
    }
}

/// One scrape: the pool's use and the process's figures now, then every metric in
/// Prometheus' text format.
async fn scrape(State(store): State<Arc<Store>>) -> ([(header::HeaderName, &'static str); 1], String) {
    PROCESS.collect();
    let pool = store.pool_usage();
    metrics::gauge!("missive_db_pool_connections", "state" => "idle").set(pool.idle);
    metrics::gauge!("missive_db_pool_connections", "state" => "in_use").set(pool.open.saturating_sub(pool.idle));
    metrics::gauge!("missive_db_pool_max_connections").set(pool.max);
    let handle = recorder();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}
