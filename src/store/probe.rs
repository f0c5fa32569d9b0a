//! Probing the database for the health service. On PostgreSQL the probe reads through a
//! connection of its own, not the pool's: through the pool, a probe during an outage waited
//! for a connection as long as the calls did (the pool retries connecting until its acquire
//! timeout), so it timed out as "slow" and calls kept waiting the full timeout while health
//! already said NOT_SERVING. Its own connection tells the two apart: a connection refused,
//! broken or not made in time is a database that fails; a read that is only slow on a
//! working connection is a busy one. (A SQLite file is never away: its probe reads through
//! the pool.)

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
            Self::Own(own) => {
                let OwnConnection { options, connection } = own.as_ref();
                let mut held = connection.lock().await;
                let connected = match held.take() {
                    Some(connected) => connected,
                    // Refused, or no answer to a new connection: unreachable either way.
                    None => match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
                        Ok(Ok(connected)) => connected,
                        Ok(Err(_)) | Err(_) => return Probe::Fails,
                    },
                };
                let mut connected = connected;
                match tokio::time::timeout(timeout, sqlx::query(READ).fetch_optional(&mut connected)).await {
                    Ok(Ok(_)) => {
                        *held = Some(connected);
                        Probe::Answers
                    }
                    // The connection is dropped after a failure, and after a read given up
                    // half way, which leaves it in no known state: the next probe connects.
                    Ok(Err(_)) => Probe::Fails,
                    Err(_) => Probe::Slow,
                }
            }
        }
    }
}
