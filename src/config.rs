//! Configuration: command-line flags, each with an environment fallback, validated before
//! anything starts. A bad value exits non-zero with a message naming the flag.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand};

/// Missive: a gRPC messaging service with a gap-free event stream.
#[derive(Debug, Parser)]
#[command(name = "missive", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `missive` alone serves, with these flags.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve(Config),
    /// Manage API keys from the command line (the way to get the first admin key).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a user with a new API key and print only the key on stdout.
    ///
    /// The user goes into the account named by --account; without it, into the database's
    /// only account, which is created when the database has none. --new-account starts
    /// another account (tenant). Example: `missive keys create --role admin`.
    Create(CreateKeyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateKeyArgs {
    /// The new user's role.
    #[arg(long, value_enum, default_value = "admin")]
    pub role: RoleArg,
    /// The account (acc_…) to create the user in.
    #[arg(long, conflicts_with = "new_account")]
    pub account: Option<String>,
    /// Create a new account (tenant) for the user, even when the database has others.
    #[arg(long)]
    pub new_account: bool,
    /// The name of an account this command creates.
    #[arg(long, default_value = "default")]
    pub account_name: String,
    /// The new user's display name [default: the role, e.g. "Admin"].
    #[arg(long)]
    pub display_name: Option<String>,
    /// A label for the key, e.g. "bootstrap".
    #[arg(long, default_value = "bootstrap")]
    pub key_name: String,
    /// Database URL (as for `serve`).
    #[arg(long, env = "MISSIVE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Agent,
    Member,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite:missive.db";

/// How the server runs.
#[derive(Debug, Clone, Args)]
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
    /// How often streams re-read the log without a wake-up: a safety net under the wake-ups
    /// (in-process, and PostgreSQL NOTIFY between replicas); on SQLite shared by several
    /// processes it is how they see each other's events.
    #[arg(long, env = "MISSIVE_EVENT_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub event_poll_interval: Duration,
    /// How often the database is pinged for the health service.
    #[arg(long, env = "MISSIVE_HEALTH_CHECK_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub health_check_interval: Duration,
    /// How long shutdown waits for in-flight calls before closing connections.
    #[arg(long, env = "MISSIVE_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The defaults, for `database_url`, listening on a free loopback port: what tests and
    /// embedders start from.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let mut config = Cli::parse_from(["missive"]).serve;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.database_url = database_url.into();
        config
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

fn parse_database_url(value: &str) -> Result<String, String> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
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
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["missive"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cli.serve.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = Cli::try_parse_from(["missive", "--listen", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("--listen"), "{err}");
        let err = Cli::try_parse_from(["missive", "--database-url", "mysql://x"]).unwrap_err().to_string();
        assert!(err.contains("--database-url"), "{err}");
        let err = Cli::try_parse_from(["missive", "serve", "--heartbeat-interval", "0s"]).unwrap_err().to_string();
        assert!(err.contains("--heartbeat-interval"), "{err}");
    }
}
