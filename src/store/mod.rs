//! Persistence: sea-orm entities and queries over SQLite or PostgreSQL, and the one place
//! that opens write transactions ([`Store::write`]). Every change of one request is one
//! transaction that also appends the request's events to the log, so the log and the data
//! never disagree.

mod accounts;
mod conversations;
pub mod entities;
mod events;
mod json;
mod messages;
mod reads;
mod users;

use std::{sync::Arc, time::Duration};

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    SqlErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    domain::{Caller, Error, Micros, events::NewEvent, now_micros},
    events::Hub,
};

pub use events::{EventBatch, RetentionReport};
pub use reads::UnreadDrift;

/// The database and what every write needs.
pub struct Store {
    db: DatabaseConnection,
    /// SQLite admits one writer at a time and answers a second one with SQLITE_BUSY instead
    /// of queueing it; serializing writers in-process queues them fairly instead. PostgreSQL
    /// needs no gate: writers of one account queue on an advisory lock (see [`Store::write`]).
    write_gate: Option<Mutex<()>>,
    /// Woken after every commit that appended events.
    hub: Arc<Hub>,
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str, hub: Arc<Hub>) -> Result<Self, Error> {
        let db = connect(url).await?;
        migrations::Migrator::up(&db, None)
            .await
            .map_err(|err| Error::Unavailable(format!("could not migrate the database: {err}")))?;
        let write_gate = (db.get_database_backend() == DbBackend::Sqlite).then(|| Mutex::new(()));
        Ok(Self { db, write_gate, hub })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// "sqlite" or "postgres", for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// Whether the database answers, for the health service.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    /// Closes the connection pool: calls after this fail as UNAVAILABLE.
    pub async fn close(&self) {
        if let Err(err) = self.db.close_by_ref().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
    }

    /// Begins the write transaction of one request by `caller`. Every request's writes go
    /// through here (pruning the log is the one other writer, in `events`), which keeps the
    /// door open for batching concurrent writes into one commit later.
    ///
    /// On PostgreSQL the transaction first takes an advisory lock on the account, held until
    /// commit: sequence values are handed out before commit, so without it a subscriber
    /// could read event 11 before event 10 commits and skip 10 for ever. With it, the
    /// account's writes commit in sequence order, and unread counters are never updated by
    /// two writers of one account at once.
    pub(crate) async fn write<'s>(&'s self, caller: &Caller) -> Result<WriteTx<'s>, Error> {
        self.write_as(&caller.account_id, &caller.user_id).await
    }

    pub(crate) async fn write_as<'s>(&'s self, account_id: &str, actor_id: &str) -> Result<WriteTx<'s>, Error> {
        let gate = self.gate().await;
        let txn = self.begin_write().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [account_id.into()],
            ))
            .await?;
        }
        Ok(WriteTx {
            txn,
            hub: &self.hub,
            account_id: account_id.to_owned(),
            actor_id: actor_id.to_owned(),
            now: now_micros(),
            events: Vec::new(),
            _gate: gate,
        })
    }
}

impl Store {
    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: it takes the
    /// write lock at once, waiting out other processes (busy timeout), instead of failing
    /// with SQLITE_BUSY when its first write finds that another process wrote since its
    /// first read.
    async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
    }

    /// Waits for the SQLite writer's turn (nothing on PostgreSQL).
    async fn gate(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }
}

/// An open write transaction. Dropping it without [`WriteTx::commit`] rolls back.
pub(crate) struct WriteTx<'s> {
    txn: DatabaseTransaction,
    hub: &'s Hub,
    account_id: String,
    actor_id: String,
    /// The time of the change: one clock reading for every row the request writes.
    pub now: Micros,
    events: Vec<NewEvent>,
    _gate: Option<MutexGuard<'s, ()>>,
}

impl WriteTx<'_> {
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Records an event to append at commit.
    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Appends the events, commits, and wakes the account's subscribers.
    pub async fn commit(self) -> Result<(), Error> {
        let appended = !self.events.is_empty();
        events::append(&self.txn, &self.account_id, &self.actor_id, self.now, self.events).await?;
        if appended && self.txn.get_database_backend() == DbBackend::Postgres {
            // Delivered at commit to every replica's listener (see `events::listener`).
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [crate::events::listener::CHANNEL.into(), self.account_id.clone().into()],
                ))
                .await?;
        }
        self.txn.commit().await?;
        if appended {
            self.hub.wake(&self.account_id);
        }
        Ok(())
    }
}

async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|sqlite| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss,
            // and an acknowledged message must survive that.
            sqlite
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
        if url.contains(":memory:") || url.contains("mode=memory") {
            // Each connection to an in-memory database is a database of its own: keep one.
            options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
        } else {
            options.max_connections(8);
        }
    } else {
        options.max_connections(32);
    }
    Database::connect(options)
        .await
        .map_err(|err| Error::Unavailable(format!("could not open the database {}: {err}", redact(url))))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            // Callers check the uniqueness they know of and say which field clashed; this is
            // the backstop for a race, and the constraint's name stays in the log.
            tracing::debug!(%detail, "unique constraint violated");
            return Error::AlreadyExists("the resource already exists".into());
        }
        use sea_orm::{RuntimeErr, sqlx};
        let lost_connection = |runtime: &RuntimeErr| {
            matches!(
                runtime,
                RuntimeErr::SqlxError(source)
                    if matches!(source.as_ref(), sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
            )
        };
        match &err {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Error::Unavailable(err.to_string()),
            DbErr::Query(runtime) | DbErr::Exec(runtime) if lost_connection(runtime) => {
                Error::Unavailable(err.to_string())
            }
            _ => Error::Internal(err.to_string()),
        }
    }
}

/// Reads one row by primary key within the caller's account, or NOT_FOUND.
async fn find_in_account<E, C>(
    conn: &C,
    kind: &'static str,
    id: &str,
    account_id: &str,
    account_of: impl Fn(&E::Model) -> &str,
) -> Result<E::Model, Error>
where
    E: EntityTrait,
    E::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = String>,
    C: ConnectionTrait,
{
    E::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .filter(|row| account_of(row) == account_id)
        .ok_or_else(|| Error::not_found(kind, id))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::*;

    #[tokio::test]
    async fn sqlite_is_opened_durable_with_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("missive.db").display());
        let store = Store::open(&url, Hub::new()).await.unwrap();
        let pragma = |name: &str| {
            let db = &store.db;
            let statement = Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}"));
            async move { db.query_one_raw(statement).await.unwrap().unwrap().try_get_by_index::<String>(0).ok() }
        };
        let number = |name: &'static str| {
            let db = &store.db;
            let statement = Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}"));
            async move { db.query_one_raw(statement).await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap() }
        };

        assert_eq!(pragma("journal_mode").await.as_deref(), Some("wal"));
        assert_eq!(number("synchronous").await, 2, "FULL");
        assert_eq!(number("foreign_keys").await, 1);
        assert!(number("busy_timeout").await >= 1000);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://me:secret@db/x"), "postgres://me:***@db/x");
        assert_eq!(redact("sqlite:missive.db"), "sqlite:missive.db");
    }
}
