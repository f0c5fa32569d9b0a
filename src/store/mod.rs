//! Persistence and the use cases that change it: sea-orm over SQLite or PostgreSQL.
//!
//! Words used throughout:
//! - a **unit** (of work) is every change of one request: a function over a [`WriteTx`];
//! - the **door** runs units: [`Store::write`] (`writer.rs`), or `Store::write_in` for a
//!   unit that changes a conversation, which names its target and gets it locked, loaded
//!   and checked before it runs (`door.rs`); the unit's events are appended to the log in
//!   its transaction, so the log and the data never disagree;
//! - a **lane** is a writer task with its connection (`writer.rs`): on SQLite one, on a
//!   thread of its own, committing the units waiting together, each in a savepoint; on
//!   PostgreSQL several, one unit per transaction, concurrently;
//! - a **kernel** is a module the aggregates share (below);
//! - the **horizon** is how far a log reader may deliver: events of transactions older
//!   than every one still running; what lies beyond it is **held back** (`events.rs`).
//!
//! After commit the writer wakes the accounts' log readers here and on other replicas
//! (`wakeups`) and clears changed keys from the key cache (`credentials`). SQLite runs on
//! rusqlite through sea-orm's proxy (`sqlite`), PostgreSQL on sqlx. The modules are the
//! crate's own; code outside it that seeds data goes through [`seed`].
//!
//! - aggregates (use cases: commands are units, queries read the pool): `accounts`,
//!   `users`, `api_keys`, `user_tokens` (the accounts' token secrets), `conversations`,
//!   `participants`, `messages` (with `scheduled` ones), `reads`, `mutes`, `templates`,
//!   `reports`, `notifications`, `presence`, `backup`, `relays` (deliveries, raw payloads,
//!   suppressions), `handling` (staff's handled marks), and the log itself, `events`;
//! - kernels: `access` (load a conversation or message, check visibility, the note
//!   rule's SQL form), `unread` (the counters, following `domain::unread`), `views` (what
//!   a viewer sees), `pending` (waiting messages as stored, shared by the send path and
//!   `scheduled`), `files` (files' bytes, once per digest), `integrity` (the start-up
//!   check);
//! - below them: `door`, `writer`, `tx` (a unit's transaction), `sqlite` (the SQLite
//!   engine's connections), `migrate` (the schema, brought up to date once however many
//!   processes start), `probe` (the health probe's connection), `wakeups`,
//!   `credentials` (the key cache), `entities`, `columns`.

mod access;
pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod backup;
mod body;
mod columns;
pub(crate) mod conversations;
pub(crate) mod credentials;
mod door;
pub(crate) mod entities;
pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod handling;
mod integrity;
pub(crate) mod messages;
mod migrate;
pub(crate) mod mutes;
pub(crate) mod notifications;
pub(crate) mod participants;
mod pending;
pub(crate) mod presence;
mod probe;
pub(crate) mod reads;
pub(crate) mod relays;
pub(crate) mod reports;
pub(crate) mod scheduled;
pub(crate) mod search;
pub mod seed;
mod sqlite;
pub(crate) mod templates;
#[cfg(test)]
mod testing;
mod tx;
pub(crate) mod unread;
pub(crate) mod user_tokens;
pub(crate) mod users;
mod views;
pub(crate) mod wakeups;
mod writer;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::domain::Error;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use credentials::Credentials;
pub use tx::{UnitFuture, WriteTx};
pub use wakeups::Hub;
pub use writer::WriterSettings;

/// How the store connects and writes; from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Connections the pool opens at most, on PostgreSQL (SQLite opens one for the writer
    /// and one per thread that reads at once: see `sqlite/`).
    pub max_connections: u32,
    /// How long a call waits for a connection (or for one to be made) before it fails as
    /// UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// PostgreSQL cancels a statement that runs longer (`statement_timeout`); none when
    /// unset.
    pub statement_timeout: Option<Duration>,
    /// How the connections name themselves to PostgreSQL (`application_name`, shown in
    /// `pg_stat_activity`).
    pub application_name: String,
    /// Write transactions in flight at once on PostgreSQL.
    pub writers: usize,
    /// Whether a SQLite file's pages are checked before it is served (`integrity.rs`).
    pub check_at_start: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: 32,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Some(Duration::from_secs(30)),
            application_name: "missive".into(),
            writers: WriterSettings::default().lanes,
            check_at_start: true,
        }
    }
}

/// What a probe of the database found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A read answered in time.
    Answers,
    /// The read failed: the database refused the connection, or broke it off.
    Fails,
    /// No answer in time, or (PostgreSQL) too many connections: busy, as far as the probe
    /// can tell.
    Slow,
}

/// A page of a listing, with the cursor to the next one and a total.
#[derive(Debug, Clone)]
pub struct Listing<T, Total = u64> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Continues after the last item; empty on the last page.
    pub next_page_token: String,
    /// How many items the whole listing has.
    pub total: Total,
}

/// Connections of the pool, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Open now (idle or in use).
    pub open: u32,
    /// Open and idle.
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

/// The database and what every write needs.
pub struct Store {
    db: DatabaseConnection,
    /// Runs every write, in batches that commit once (see `writer.rs`).
    writer: writer::Writer,
    /// Woken after every commit that appended events.
    hub: Arc<Hub>,
    /// What keys act as, kept current by the writer (see `credentials.rs`).
    credentials: Arc<Credentials>,
    /// Whether the database answered the last probe (`jobs::storage_health`): while it
    /// does not, calls fail at once instead of each waiting out the pool.
    reachable: AtomicBool,
    /// How the database is probed.
    prober: probe::Prober,
    /// The SQLite engine's connections (`db` is its readers'); none on PostgreSQL.
    sqlite: Option<sqlite::Sqlite>,
    /// Each account's cursor key, read once (`accounts::cursor_key`): it never changes.
    cursor_keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`) with the default settings and
    /// brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, Error> {
        Self::open_with(url, &StoreSettings::default()).await
    }

    /// Connects to `url` as `settings` say and brings the schema up to date.
    pub async fn open_with(url: &str, settings: &StoreSettings) -> Result<Self, Error> {
        let sqlite = match url.starts_with("sqlite:") {
            true => Some(
                sqlite::Sqlite::open(migrate::sqlite_file(url).as_deref()).await.map_err(|err| opening(url, err))?,
            ),
            false => None,
        };
        let mut db = match &sqlite {
            Some(sqlite) => sqlite.readers.clone(),
            None => connect_postgres(url, settings).await?,
        };
        let writes = sqlite.as_ref().map_or(&db, |sqlite| &sqlite.writer).clone();
        prepare_schema(writes, url, settings).await?;
        // From now on, the statements are the service's own (see `log_statement`).
        match &sqlite {
            Some(sqlite) => sqlite.log_writes(),
            None => db.set_metric_callback(|info| log_statement(&info.statement.sql, info.elapsed, info.failed)),
        }
        let writes = sqlite.as_ref().map_or(&db, |sqlite| &sqlite.writer).clone();
        let hub = Hub::new();
        // Replicas on PostgreSQL hear each other's revokes; processes sharing a SQLite file
        // cannot, so there cached keys expire.
        let max_age = sqlite.is_some().then_some(credentials::SHARED_FILE_MAX_AGE);
        let credentials = Arc::new(Credentials::new(max_age));
        let announcer = wakeups::Announcer::start(&db);
        let lanes = WriterSettings { lanes: settings.writers };
        let engine = sqlite.as_ref().map(|sqlite| sqlite.writer_connection.clone());
        let writer =
            writer::Writer::start(writes, engine, Arc::clone(&hub), Arc::clone(&credentials), announcer, lanes);
        let prober = probe::Prober::new(&db);
        Ok(Self {
            db,
            writer,
            hub,
            credentials,
            reachable: AtomicBool::new(true),
            prober,
            sqlite,
            cursor_keys: Default::default(),
        })
    }

    /// Sends `payload` to every replica listening on PostgreSQL channel `channel`.
    pub async fn notify(&self, channel: &str, payload: String) -> Result<(), Error> {
        wakeups::notify(&self.db, channel, &[payload]).await
    }

    /// Records whether the database answered the last probe.
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    /// UNAVAILABLE while the last probe found PostgreSQL unreachable: a call fails at once
    /// rather than wait out the pool's acquire timeout. (A SQLite file is never away; a
    /// slow one is busy, and its calls wait their turn.)
    pub fn ensure_reachable(&self) -> Result<(), Error> {
        if self.backend() != DbBackend::Postgres || self.reachable.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(Error::Unavailable("the database is unreachable; retry shortly".into()))
        }
    }

    /// The wake-ups that commits send, for the streams to listen to.
    pub fn wakeups(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The key cache, for the listener that hears other replicas' revokes.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Which database this is.
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

    /// Whether the database answers a real read within `timeout`, for the health service.
    /// A read of a table, not a bare ping: a database that is locked or gone must count as
    /// not answering.
    pub async fn answers(&self, timeout: Duration) -> bool {
        self.probe(timeout).await == Probe::Answers
    }

    /// What a real read within `timeout` found (see [`Store::answers`]).
    pub async fn probe(&self, timeout: Duration) -> Probe {
        self.prober.probe(&self.db, timeout).await
    }

    /// Brings SQLite's query-planner statistics up to date (PostgreSQL's autovacuum does this
    /// itself). Without them SQLite cannot tell that a member's few participant rows are a
    /// better start than every conversation of the account: at 20,000 conversations a
    /// member's inbox page took 90 ms instead of 2. `PRAGMA optimize` analyzes only tables
    /// whose size changed much since the last time, each bounded by `analysis_limit`, and
    /// goes through the door, since it writes `sqlite_stat1`.
    pub async fn refresh_statistics(&self) -> Result<(), Error> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        self.write_as("", "", |tx| {
            Box::pin(async move {
                tx.conn().execute_unprepared("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002").await?;
                Ok(())
            })
        })
        .await
    }

    /// How the connections are used now, for the metrics.
    pub fn pool_usage(&self) -> PoolUsage {
        if let Some(sqlite) = &self.sqlite {
            return sqlite.usage();
        }
        let pool = self.db.get_postgres_connection_pool();
        let open = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(open);
        PoolUsage { open, idle, max: pool.options().get_max_connections() }
    }

    /// Closes the connections: calls after this fail as UNAVAILABLE.
    pub async fn close(&self) {
        self.prober.close().await;
        if let Some(sqlite) = &self.sqlite {
            return sqlite.close();
        }
        if let Err(err) = self.db.close_by_ref().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
    }
}

/// Checks a SQLite file's pages (unless told not to) and brings the schema up to date,
/// through `db`, the connection that writes. On SQLite this runs off the tokio workers: it
/// waits on the disk.
async fn prepare_schema(db: DatabaseConnection, url: &str, settings: &StoreSettings) -> Result<(), Error> {
    let url = url.to_owned();
    let check_at_start = settings.check_at_start;
    let backend = db.get_database_backend();
    let prepare = async move {
        if let Some(path) = migrate::sqlite_file(&url).filter(|_| check_at_start) {
            integrity::check(&db, &path).await?;
        }
        migrate::migrate(&db, &url).await
    };
    if backend != DbBackend::Sqlite {
        return prepare.await;
    }
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(prepare))
        .await
        .unwrap_or_else(|err| Err(Error::Internal(format!("preparing the database failed: {err}"))))
}

/// The error of a database that could not be opened.
fn opening(url: &str, err: DbErr) -> Error {
    match migrate::sqlite_file(url) {
        Some(path) if integrity::is_damage(&err) => integrity::damaged(&path, &err.to_string()),
        _ => Error::Unavailable(format!("could not open the database {}: {err}", redact(url))),
    }
}

async fn connect_postgres(url: &str, settings: &StoreSettings) -> Result<DatabaseConnection, Error> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(settings.acquire_timeout).acquire_timeout(settings.acquire_timeout);
    let (application_name, statement_timeout) = (settings.application_name.clone(), settings.statement_timeout);
    options.max_connections(settings.max_connections).map_sqlx_postgres_opts(move |postgres| {
        let postgres = postgres.application_name(&application_name);
        match statement_timeout {
            Some(timeout) => postgres.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]),
            None => postgres,
        }
    });
    Database::connect(options).await.map_err(|err| opening(url, err))
}

/// Logs a statement the service sent (the migrations' are not its own):
/// `RUST_LOG=missive::sql=trace` shows them, and the tests read them to prove that each
/// names its account (see docs/deployment.md on Citus) and to hold statement budgets.
fn log_statement(sql: &str, elapsed: Duration, failed: bool) {
    tracing::trace!(target: STATEMENTS, sql = %sql, micros = elapsed.as_micros() as u64, failed, "statement");
}

/// The tracing target of the statement log.
pub const STATEMENTS: &str = "missive::sql";

/// The URL without its password, for messages. A URL too broken to parse may still hold
/// one: then everything between the scheme and the last `@` goes.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
            _ => url.to_owned(),
        },
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        use sea_orm::{RuntimeErr, sqlx};
        let storage = |runtime: &RuntimeErr| match runtime {
            RuntimeErr::SqlxError(source) => match source.as_ref() {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                    Some(Error::Unavailable(err.to_string()))
                }
                sqlx::Error::Database(database) if database.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                    // Callers check the uniqueness they know of and say which field clashed;
                    // this is the backstop for a race, and the constraint's name stays in the log.
                    tracing::debug!(detail = %database, "unique constraint violated");
                    Some(Error::AlreadyExists("the resource already exists".into()))
                }
                sqlx::Error::Database(database) => {
                    let sqlite = database.try_downcast_ref::<sqlite::SqliteFailure>().is_some();
                    database.code().and_then(|code| storage_condition(sqlite, &code, &err))
                }
                _ => None,
            },
            _ => None,
        };
        match &err {
            DbErr::Conn(runtime) | DbErr::Query(runtime) | DbErr::Exec(runtime) => match storage(runtime) {
                Some(mapped) => mapped,
                None if matches!(err, DbErr::Conn(_)) => Error::Unavailable(err.to_string()),
                None => Error::Internal(err.to_string()),
            },
            DbErr::ConnectionAcquire(_) => Error::Unavailable(err.to_string()),
            _ => Error::Internal(err.to_string()),
        }
    }
}

/// What a database error code (SQLite's or PostgreSQL's) says about the storage rather
/// than the query: full, read-only, unreachable, busy or gone. `None`: a bug.
fn storage_condition(sqlite: bool, code: &str, err: &DbErr) -> Option<Error> {
    const FULL: &str = "storage is full: writes fail until space is freed";
    if sqlite {
        // SQLite's extended codes carry the primary one in their low byte.
        return match code.parse::<i32>().ok()? & 0xff {
            13 => {
                tracing::warn!(%err, "the database's disk is full");
                Some(Error::ResourceExhausted { message: FULL.into(), retry_after: None })
            }
            // Busy, locked, read-only, an I/O error, cannot open, no large files: the file
            // or its disk, not the query.
            5 | 6 | 8 | 10 | 14 | 22 => Some(Error::Unavailable(err.to_string())),
            _ => None,
        };
    }
    match code {
        "53100" => {
            tracing::warn!(%err, "the database's disk is full");
            Some(Error::ResourceExhausted { message: FULL.into(), retry_after: None })
        }
        // The session ended: class 08 (connection exception) and 57P01-03 (terminated by
        // an administrator, crash shutdown, not accepting connections yet); the database
        // read-only (25006, a hot standby or default_transaction_read_only), out of
        // resources (53), or the transaction lost a serialization race or a deadlock (40).
        // The call may be retried; with a request id, safely.
        code if code.starts_with("08") || code.starts_with("53") || code.starts_with("40") => {
            Some(Error::Unavailable(err.to_string()))
        }
        "57P01" | "57P02" | "57P03" | "25006" => Some(Error::Unavailable(err.to_string())),
        // Cancelled: over --database-statement-timeout, which an overloaded database is.
        "57014" => {
            tracing::warn!(%err, "a statement ran past the statement timeout");
            Some(Error::Unavailable(err.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::*;

    #[test]
    fn storage_codes_are_read_by_their_own_database() {
        let err = DbErr::Custom("x".into());
        let code = |sqlite, code| storage_condition(sqlite, code, &err);
        // PostgreSQL's codes may be all digits: they are not SQLite's numbers.
        assert!(matches!(code(false, "08006"), Some(Error::Unavailable(_))));
        assert!(matches!(code(false, "25006"), Some(Error::Unavailable(_))));
        assert!(matches!(code(false, "53100"), Some(Error::ResourceExhausted { .. })));
        assert!(code(false, "23502").is_none(), "a not-null violation is a bug");
        assert!(matches!(code(true, "13"), Some(Error::ResourceExhausted { .. })));
        assert!(matches!(code(true, "1032"), Some(Error::Unavailable(_))), "SQLITE_READONLY_DBMOVED");
        assert!(code(true, "19").is_none(), "a constraint is a bug");
    }

    #[tokio::test]
    async fn sqlite_is_opened_durable_with_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("missive.db").display());
        let store = Store::open(&url).await.unwrap();
        const PRAGMAS: &str = "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
             (SELECT synchronous FROM pragma_synchronous) AS synchronous, \
             (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
             (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout";
        async fn settings<C: ConnectionTrait>(conn: &C) -> (String, i64, i64, i64) {
            let row = conn.query_one_raw(Statement::from_string(DbBackend::Sqlite, PRAGMAS)).await.unwrap().unwrap();
            let number = |name| row.try_get::<i64>("", name).unwrap();
            let journal = row.try_get::<String>("", "journal_mode").unwrap();
            (journal, number("synchronous"), number("foreign_keys"), number("busy_timeout"))
        }
        // A reader's connection, and the writer's (through a unit).
        let read = settings(&store.db).await;
        let written =
            store.write_as("", "", |tx| Box::pin(async move { Ok(settings(tx.conn()).await) })).await.unwrap();
        for (journal, synchronous, foreign_keys, busy_timeout) in [read, written] {
            assert_eq!(journal, "wal");
            assert_eq!(synchronous, 2, "FULL");
            assert_eq!(foreign_keys, 1);
            assert!(busy_timeout >= 1000);
        }
        assert!(store.answers(Duration::from_secs(1)).await);
        store.close().await;
        assert!(!store.answers(Duration::from_secs(1)).await, "a closed store does not answer");
    }

    #[tokio::test]
    async fn statistics_are_gathered_for_the_planner() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        for name in ["one", "two", "three"] {
            let new = crate::domain::users::NewUser::parse(
                Some(crate::domain::users::Role::Member),
                name.into(),
                String::new(),
                String::new(),
                String::new(),
            )
            .unwrap();
            users::create_in(&store, &account_id, new).await.unwrap();
        }
        store.refresh_statistics().await.unwrap();
        let statement =
            Statement::from_string(DbBackend::Sqlite, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'users'");
        let rows = store.db.query_one_raw(statement).await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap();
        assert!(rows > 0, "users was analyzed");
    }

    /// PostgreSQL only (MISSIVE_TEST_DATABASE_URL): the settings reach every session.
    #[tokio::test]
    async fn postgres_sessions_carry_the_configured_timeout_and_name() {
        let Ok(url) = std::env::var("MISSIVE_TEST_DATABASE_URL") else { return };
        if !url.starts_with("postgres") {
            return;
        }
        let settings = StoreSettings {
            statement_timeout: Some(Duration::from_millis(1500)),
            application_name: "missive-settings-test".into(),
            ..StoreSettings::default()
        };
        let store = Store::open_with(&url, &settings).await.unwrap();
        let show = |name: &'static str| {
            let db = &store.db;
            async move {
                let statement = Statement::from_string(DbBackend::Postgres, format!("SHOW {name}"));
                db.query_one_raw(statement).await.unwrap().unwrap().try_get_by_index::<String>(0).unwrap()
            }
        };
        assert_eq!(show("statement_timeout").await, "1500ms");
        assert_eq!(show("application_name").await, "missive-settings-test");
        let slow = Statement::from_string(DbBackend::Postgres, "SELECT pg_sleep(3)");
        assert!(matches!(store.db.execute_raw(slow).await.map_err(Error::from), Err(Error::Unavailable(_))));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://me:secret@db/x"), "postgres://me:***@db/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("sqlite:missive.db"), "sqlite:missive.db");
        assert_eq!(redact("postgres://me:pa#ss@db/x"), "postgres://***@db/x", "unparsable, still redacted");
    }
}
