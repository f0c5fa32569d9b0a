//! Probing the database for the health service. On PostgreSQL the probe reads through a
//! connection of its own, not the pool's: through the pool, a probe during an outage waited
//! for a connection as long as the calls did (the pool retries connecting until its acquire
//! timeout), so it timed out as "slow" and calls kept waiting the full timeout while health
//! already said NOT_SERVING. Its own connection tells the cases apart: a connection the
//! database refuses or breaks off is a database that fails (calls are then refused at
//! once); a read the server cancels for its timeouts, no answer in time, or "too many
//! connections" is a busy one, and calls wait their turn. The connection is kept from one
//! probe to the next, and its statements are cancelled by the server itself before the
//! probe gives up on them, so a probe stuck behind a lock leaves no backend behind. (A
//! SQLite file is never away: its probe reads through the pool.)

use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement,
    sqlx::{
        self, Connection,
        postgres::{PgConnectOptions, PgConnection},
    },
};
use tokio::sync::Mutex;

use super::Probe;

/// The read every probe makes: a real table, not a bare ping, so that a database that is
/// locked or lost its schema counts as not answering.
const READ: &str = "SELECT id FROM accounts LIMIT 1";

/// How the database is probed.
pub(super) enum Prober {
    /// Through the pool (SQLite).
    Pool,
    /// Through a PostgreSQL connection of the probe's own.
    Own(Box<OwnConnection>),
}

/// The probe's own PostgreSQL connection, made again after a failure.
pub(super) struct OwnConnection {
    options: PgConnectOptions,
    connection: Mutex<Option<PgConnection>>,
}

impl Prober {
    /// The prober for `db`'s database.
    pub(super) fn new(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let options = db.get_postgres_connection_pool().connect_options().as_ref().clone();
                Self::Own(Box::new(OwnConnection { options, connection: Mutex::new(None) }))
            }
            _ => Self::Pool,
        }
    }

    /// What one read within `timeout` found.
    pub(super) async fn probe(&self, db: &DatabaseConnection, timeout: Duration) -> Probe {
        match self {
            Self::Pool => {
                let read = Statement::from_string(db.get_database_backend(), READ);
                match tokio::time::timeout(timeout, db.query_one_raw(read)).await {
                    Ok(Ok(_)) => Probe::Answers,
                    Ok(Err(_)) => Probe::Fails,
                    Err(_) => Probe::Slow,
                }
            }
            // The pool closed (at shutdown): nothing can be served, whatever the database.
            Self::Own(_) if db.get_postgres_connection_pool().is_closed() => Probe::Fails,
            Self::Own(own) => own.probe(timeout).await,
        }
    }

    /// Closes the probe's own connection.
    pub(super) async fn close(&self) {
        if let Self::Own(own) = self
            && let Some(connection) = own.connection.lock().await.take()
        {
            let _ = connection.close().await;
        }
    }
}

/// What a read on the probe's own connection found, and whether the connection is still
/// fit for the next probe.
enum Read {
    Answered,
    /// Cancelled by the server's own timeouts (the connection stays usable), or no answer
    /// in time (the connection, mid-statement, is dropped).
    Slow {
        keep: bool,
    },
    Failed,
}

impl OwnConnection {
    async fn probe(&self, timeout: Duration) -> Probe {
        let mut held = self.connection.lock().await;
        // A kept connection may have been closed under it (a recycled backend, a proxy):
        // that alone is no outage, so a new connection is tried at once.
        if let Some(connection) = held.as_mut() {
            match read(connection, timeout).await {
                Read::Answered => return Probe::Answers,
                Read::Slow { keep } => {
                    if !keep {
                        *held = None;
                    }
                    return Probe::Slow;
                }
                Read::Failed => *held = None,
            }
        }
        let mut connection = match tokio::time::timeout(timeout, self.connect(timeout)).await {
            Ok(Ok(connection)) => connection,
            // Too many connections: busy, not away.
            Ok(Err(err)) if database_code(&err).as_deref() == Some("53300") => return Probe::Slow,
            // Refused, reset, unknown host, not accepting connections: unreachable.
            Ok(Err(_)) => return Probe::Fails,
            // No answer in time: unreachable or only overwhelmed, which the probe cannot
            // tell apart; calls are not refused for it.
            Err(_) => return Probe::Slow,
        };
        match read(&mut connection, timeout).await {
            Read::Answered => {
                *held = Some(connection);
                Probe::Answers
            }
            Read::Slow { keep } => {
                if keep {
                    *held = Some(connection);
                }
                Probe::Slow
            }
            Read::Failed => Probe::Fails,
        }
    }

    /// A new connection whose statements the server itself cancels before the probe gives
    /// up on them: a read stuck behind a lock then ends, and leaves no backend behind.
    async fn connect(&self, timeout: Duration) -> Result<PgConnection, sqlx::Error> {
        let mut connection = PgConnection::connect_with(&self.options).await?;
        let limit = (timeout * 2 / 3).as_millis().to_string();
        sqlx::query("SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $1, false)")
            .bind(limit)
            .execute(&mut connection)
            .await?;
        Ok(connection)
    }
}

/// The probe's read on `connection`.
async fn read(connection: &mut PgConnection, timeout: Duration) -> Read {
    match tokio::time::timeout(timeout, sqlx::query(READ).fetch_optional(connection)).await {
        Ok(Ok(_)) => Read::Answered,
        // Cancelled by statement_timeout or lock_timeout.
        Ok(Err(err)) if matches!(database_code(&err).as_deref(), Some("57014" | "55P03")) => Read::Slow { keep: true },
        Ok(Err(_)) => Read::Failed,
        Err(_) => Read::Slow { keep: false },
    }
}

/// PostgreSQL's code for `err`, when the database answered with one.
fn database_code(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    }
}
