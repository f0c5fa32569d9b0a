//! How the server runs: [`Config`], with explicit defaults ([`Config::default`]) and, for
//! the command line, a flag and a `MISSIVE_*` environment variable per field, validated
//! before anything starts (a bad value exits non-zero naming the flag). Only the command
//! line reads the environment: code that builds a `Config` itself never does.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;

/// Where data lives unless told otherwise: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:missive.db";

/// How the server runs.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Config {
    /// Address to listen on for gRPC (and grpc-web). Port 0 picks a free port.
    #[arg(long, env = "MISSIVE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Database URL: `sqlite:PATH` (created if missing; relative to the working directory)
    /// or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(long, env = "MISSIVE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: String,
    /// Largest attachment accepted, in bytes.
    #[arg(long, env = "MISSIVE_MAX_ATTACHMENT_BYTES", default_value_t = 5 * 1024 * 1024,
          value_parser = clap::value_parser!(u32).range(1..=64 * 1024 * 1024))]
    pub max_attachment_bytes: u32,
    /// Heartbeat interval on an idle Subscribe stream (e.g. 15s).
    #[arg(long, env = "MISSIVE_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// How long events are kept for resuming streams (e.g. 7d).
    #[arg(long, env = "MISSIVE_EVENT_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub event_retention: Duration,
    /// How often events past the retention window are pruned.
    #[arg(long, env = "MISSIVE_EVENT_PRUNE_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub event_prune_interval: Duration,
    /// How often each account's log reader re-reads the log without a wake-up (one read per
    /// account with open streams, however many streams): a safety net under the wake-ups
    /// (in-process, and PostgreSQL NOTIFY between replicas); on SQLite shared by several
    /// processes it is how they see each other's events.
    #[arg(long, env = "MISSIVE_EVENT_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub event_poll_interval: Duration,
    /// How often the database is probed for the health service.
    #[arg(long, env = "MISSIVE_HEALTH_CHECK_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub health_check_interval: Duration,
    /// How far ahead a message may be scheduled (e.g. 365d).
    #[arg(long, env = "MISSIVE_SCHEDULE_HORIZON", default_value = "365d", value_parser = parse_duration)]
    pub schedule_horizon: Duration,
    /// How often due scheduled messages are looked for (one indexed query each time): a
    /// message is delivered about this long after its time at most, unless very many fall
    /// due at once.
    #[arg(long, env = "MISSIVE_SCHEDULE_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub schedule_interval: Duration,
    /// How long shutdown waits for in-flight calls before closing connections.
    #[arg(long, env = "MISSIVE_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Origins of web pages allowed to call over grpc-web (CORS), comma-separated, e.g.
    /// `https://app.example.com,http://localhost:5173`; `*` allows any. Unset: none, and
    /// browsers refuse calls from pages on other origins.
    #[arg(long, env = "MISSIVE_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = crate::api::cors::parse_origin)]
    pub cors_allowed_origins: Vec<String>,
    /// The longest a user token (CreateUserToken) may work; a request for longer is refused.
    #[arg(long, env = "MISSIVE_MAX_USER_TOKEN_TTL", default_value = "24h", value_parser = parse_token_ttl)]
    pub max_user_token_ttl: Duration,
    /// Address to serve Prometheus metrics on (`GET /metrics`), e.g. 127.0.0.1:9090; apart
    /// from the gRPC port. Unset: no metrics are recorded.
    #[arg(long, env = "MISSIVE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A PEM file with the server's certificate chain: with --tls-key, the listener speaks
    /// only TLS (HTTP/2 by ALPN). Unset: plaintext, for a TLS-terminating proxy or loopback.
    #[arg(long, env = "MISSIVE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// A PEM file with the private key of --tls-cert.
    #[arg(long, env = "MISSIVE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// What one key, one call and one connection may take.
    #[command(flatten)]
    pub limits: Limits,
    /// How the database is connected to (PostgreSQL in production).
    #[command(flatten)]
    pub database: DatabaseOptions,
}

/// How the database is connected to and written. The pool and the timeouts matter on
/// PostgreSQL, where several replicas share one server's connections (see
/// docs/deployment.md).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DatabaseOptions {
    /// Connections this replica opens to PostgreSQL at most (replicas × this must stay
    /// under the server's max_connections). SQLite opens one for writes and one per
    /// thread that reads at once.
    #[arg(long, env = "MISSIVE_DATABASE_MAX_CONNECTIONS", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub database_max_connections: u32,
    /// Write transactions one replica runs at once on PostgreSQL (each holds a connection
    /// while it runs). 1: one transaction at a time, batching what waits (for one replica:
    /// batches of several can deadlock, which PostgreSQL breaks by failing one).
    #[arg(long, env = "MISSIVE_DATABASE_WRITERS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub database_writers: u32,
    /// How long a call waits for a database connection before it fails as UNAVAILABLE.
    #[arg(long, env = "MISSIVE_DATABASE_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub database_acquire_timeout: Duration,
    /// PostgreSQL cancels a statement that runs longer (its `statement_timeout`).
    #[arg(long, env = "MISSIVE_DATABASE_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_statement_timeout: Duration,
    /// The name this replica's connections show in PostgreSQL's `pg_stat_activity`.
    #[arg(long, env = "MISSIVE_DATABASE_APPLICATION_NAME", default_value = "missive")]
    pub database_application_name: String,
    /// Check a SQLite file's pages before serving it (`PRAGMA quick_check`), refusing a
    /// damaged file: one read of the whole file (for 400 MB, 0.6 s when cached and 8 s from
    /// a cold disk on a development machine). `false` skips it, for very large files;
    /// `missive backup` checks its copies all the same.
    #[arg(long, env = "MISSIVE_DATABASE_CHECK_AT_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub database_check_at_start: bool,
}

impl DatabaseOptions {
    /// What the store is opened with.
    pub fn store_settings(&self) -> crate::store::StoreSettings {
        crate::store::StoreSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
            statement_timeout: Some(self.database_statement_timeout),
            application_name: self.database_application_name.clone(),
            writers: self.database_writers as usize,
            check_at_start: self.database_check_at_start,
        }
    }
}

impl Default for DatabaseOptions {
    /// The same values as the flags' defaults.
    fn default() -> Self {
        Self {
            database_max_connections: 32,
            database_writers: 16,
            database_acquire_timeout: Duration::from_secs(3),
            database_statement_timeout: Duration::from_secs(30),
            database_application_name: "missive".into(),
            database_check_at_start: true,
        }
    }
}

/// What one key, one call and one connection may take: the operators' limits. (Limits that
/// are part of the API's contract, such as the length of a message, are the same on every
/// server and live with the types they bound.)
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Limits {
    /// Unary calls one API key may make per second, sustained. Over it: RESOURCE_EXHAUSTED
    /// with a RetryInfo saying when to retry.
    #[arg(long, env = "MISSIVE_CALLS_PER_SECOND", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub calls_per_second: u32,
    /// Unary calls one API key may make at once above the sustained rate.
    #[arg(long, env = "MISSIVE_CALL_BURST", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub call_burst: u32,
    /// Calls one API key may have in progress at once.
    #[arg(long, env = "MISSIVE_MAX_CALLS_IN_FLIGHT_PER_KEY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_calls_in_flight_per_key: u32,
    /// Bytes of request bodies one API key's calls in progress may hold in memory at once;
    /// a request that would take it over is refused RESOURCE_EXHAUSTED. At least the
    /// largest request a method accepts (a message with the most attachments). Unset:
    /// twice that (about 104 MiB with the default --max-attachment-bytes).
    #[arg(long, env = "MISSIVE_MAX_REQUEST_MEMORY_PER_KEY", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_request_memory_per_key: Option<u64>,
    /// `Subscribe` streams one API key may have open at once.
    #[arg(long, env = "MISSIVE_MAX_STREAMS_PER_KEY", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_key: u32,
    /// `Subscribe` streams one API key may open per second, sustained.
    #[arg(long, env = "MISSIVE_STREAM_OPENS_PER_SECOND", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub stream_opens_per_second: u32,
    /// `Subscribe` streams one API key may open at once above the sustained rate.
    #[arg(long, env = "MISSIVE_STREAM_OPEN_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub stream_open_burst: u32,
    /// The longest a unary call may run (a client's shorter `grpc-timeout` wins); streams
    /// are not bound by it.
    #[arg(long, env = "MISSIVE_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How often the server pings an idle HTTP/2 connection.
    #[arg(long, env = "MISSIVE_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    #[arg(long, env = "MISSIVE_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,
    /// Close connections older than this (gracefully: streams end and clients resume from
    /// their cursor), so that clients spread over new replicas. Unset: no limit.
    #[arg(long, env = "MISSIVE_MAX_CONNECTION_AGE", value_parser = parse_duration)]
    pub max_connection_age: Option<Duration>,
}

impl Limits {
    /// What the gate holds each key to, where the largest request a method accepts is
    /// `largest_request` bytes; an error naming the flag when the memory budget cannot hold
    /// that request.
    pub fn per_key(&self, largest_request: usize) -> Result<crate::api::KeyLimits, String> {
        // The body of the largest request: the message and gRPC's 5-byte frame prefix.
        let largest_body = largest_request.saturating_add(5);
        let max_request_memory = match self.max_request_memory_per_key {
            None => largest_body.saturating_mul(2),
            Some(bytes) if (bytes as usize) < largest_body => {
                return Err(format!(
                    "--max-request-memory-per-key {bytes} is smaller than the largest request body a method accepts \
                     ({largest_body} bytes, a message with the most attachments of --max-attachment-bytes): \
                     raise it, or leave it unset for twice that"
                ));
            }
            Some(bytes) => bytes as usize,
        };
        Ok(crate::api::KeyLimits {
            max_request_memory,
            calls_per_second: self.calls_per_second,
            call_burst: self.call_burst,
            max_calls_in_flight: self.max_calls_in_flight_per_key,
            stream_opens_per_second: self.stream_opens_per_second,
            stream_open_burst: self.stream_open_burst,
            max_streams: self.max_streams_per_key,
            request_timeout: self.request_timeout,
        })
    }
}

impl Default for Limits {
    /// The same values as the flags' defaults.
    fn default() -> Self {
        Self {
            calls_per_second: 500,
            call_burst: 1000,
            max_calls_in_flight_per_key: 32,
            max_request_memory_per_key: None,
            max_streams_per_key: 100,
            stream_opens_per_second: 10,
            stream_open_burst: 100,
            request_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_connection_age: None,
        }
    }
}

impl Default for Config {
    /// The same values as the flags' defaults (a test holds them equal).
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            max_attachment_bytes: 5 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(15),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            event_prune_interval: Duration::from_secs(60),
            event_poll_interval: Duration::from_secs(30),
            health_check_interval: Duration::from_secs(1),
            schedule_horizon: Duration::from_secs(365 * 24 * 3600),
            schedule_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
            max_user_token_ttl: Duration::from_secs(24 * 3600),
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            limits: Limits::default(),
            database: DatabaseOptions::default(),
        }
    }
}

impl Config {
    /// The defaults for `database_url`, listening on a free loopback port: what tests and
    /// embedders start from.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)), database_url: database_url.into(), ..Self::default() }
    }
}

/// Longer durations are mistakes, and would overflow the clock arithmetic they feed.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn parse_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|err| format!("{err} (use e.g. 500ms, 15s, 1m, 7d)"))?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    if duration > MAX_DURATION {
        return Err("must be at most 10 years".into());
    }
    Ok(duration)
}

/// The longest a user token may work: at least a minute, or no token could be minted
/// with room to use it.
fn parse_token_ttl(value: &str) -> Result<Duration, String> {
    let ttl = parse_duration(value)?;
    if ttl < Duration::from_secs(60) {
        return Err("must be at least 1m".into());
    }
    Ok(ttl)
}

/// A database URL Missive can open.
pub fn parse_database_url(value: &str) -> Result<String, String> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if value.trim() == "sqlite:" {
        return Err("sqlite: needs a file path (e.g. sqlite:missive.db) or sqlite::memory:".into());
    }
    if supported.iter().any(|prefix| value.starts_with(prefix)) {
        Ok(value.to_owned())
    } else {
        Err("must start with sqlite: (e.g. sqlite:missive.db) or postgres:// (e.g. postgres://user@host/db)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_memory_budget_holds_the_largest_request_or_the_server_does_not_start() {
        let limits = |bytes| Limits { max_request_memory_per_key: bytes, ..Limits::default() };
        // A request of 1000 bytes is a body of 1005: the gRPC frame's prefix is 5 bytes.
        assert_eq!(limits(None).per_key(1000).unwrap().max_request_memory, 2010, "twice the largest by default");
        assert_eq!(limits(Some(1005)).per_key(1000).unwrap().max_request_memory, 1005);
        let refused = limits(Some(1004)).per_key(1000).unwrap_err();
        assert!(refused.starts_with("--max-request-memory-per-key 1004"), "{refused}");
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("11y").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn only_known_databases_are_accepted() {
        assert!(parse_database_url("postgresql://u@h/d").is_ok());
        assert!(parse_database_url("mysql://x").is_err());
        assert!(parse_database_url("sqlite:").is_err());
        assert!(parse_token_ttl("30s").is_err());
    }
}
