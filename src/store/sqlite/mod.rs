//! The SQLite engine: rusqlite connections behind sea-orm's `proxy`, each statement run on
//! the thread that asked for it, so that no statement crosses threads (sqlx's SQLite driver
//! handed every statement to a worker thread and back: two thread switches per statement,
//! 42 % of a send's CPU).
//!
//! - **The writer's connection** ([`WriterConnection`]) is used by one thread only: the
//!   writer lane's own OS thread (`writer.rs`), which runs whole batches there, commits
//!   and checkpoints included, so that nothing that waits on the disk's flush runs on a
//!   tokio worker. Its transactions begin `IMMEDIATE`.
//! - **Reads** ([`Readers`]) run on the calling thread too, each statement on a connection
//!   taken from the idle ones (or opened) and put back at once; a statement never awaits,
//!   so there are never more connections than threads that read at one moment. In WAL
//!   mode readers never wait for the writer. Inline reads beat reader threads here:
//!   a page read costs tens of microseconds of SQLite work, less than the two thread
//!   switches a hand-off to a reader thread would add (measured: see the benchmarks in
//!   `docs/benchmarks.md`).
//!
//! An in-memory database (`sqlite::memory:`) is a file in a private temporary folder,
//! removed when the store goes: every connection must see the same database, which
//! separate in-memory connections would not.

mod session;
mod values;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Instant,
};

use sea_orm::{
    Database, DatabaseConnection, DbBackend, DbErr, ProxyDatabaseTrait, ProxyExecResult, ProxyRow, RuntimeErr,
    Statement,
};

use session::Session;
pub use session::{BUSY_TIMEOUT, SqliteFailure};

use super::PoolUsage;

/// The engine's connections.
pub(super) struct Sqlite {
    /// For reads.
    pub readers: DatabaseConnection,
    /// For the writer lane only.
    pub writer: DatabaseConnection,
    /// The writer's connection itself, for its transactions' failures.
    pub writer_connection: WriterConnection,
    pool: Arc<Readers>,
}

impl Sqlite {
    /// Opens the database at `location` (a file path, or `None` for an in-memory one),
    /// creating the file if missing.
    pub(super) async fn open(location: Option<&str>) -> Result<Self, DbErr> {
        let (path, temporary) = match location {
            Some(path) => (PathBuf::from(path), None),
            None => {
                let folder = tempfile::Builder::new()
                    .prefix("missive-memory-")
                    .tempdir()
                    .map_err(|err| DbErr::Conn(RuntimeErr::Internal(format!("no temporary folder: {err}"))))?;
                (folder.path().join("missive.db"), Some(folder))
            }
        };
        // The writer opens first: it creates the file and puts it in WAL mode.
        let writer_connection = WriterConnection {
            session: Arc::new(Mutex::new(Some(Session::open(&path, true, "BEGIN IMMEDIATE")?))),
            logged: Arc::new(AtomicBool::new(false)),
        };
        let pool = Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            _temporary: temporary,
        });
        let readers =
            Database::connect_proxy(DbBackend::Sqlite, Arc::new(Box::new(ReadersProxy(Arc::clone(&pool))))).await?;
        let writer = Database::connect_proxy(DbBackend::Sqlite, Arc::new(Box::new(writer_connection.clone()))).await?;
        Ok(Self { readers, writer, writer_connection, pool })
    }

    /// The connections open and idle now (the writer's counted as in use).
    pub(super) fn usage(&self) -> PoolUsage {
        let idle = u32::try_from(lock(&self.pool.idle).len()).unwrap_or(u32::MAX);
        let open = self.pool.opened.load(Ordering::Relaxed) + 1;
        PoolUsage { open, idle, max: open }
    }

    /// Closes every connection: statements after this fail as UNAVAILABLE.
    pub(super) fn close(&self) {
        self.pool.closed.store(true, Ordering::Relaxed);
        lock(&self.pool.idle).clear();
        lock(&self.writer_connection.session).take();
    }

    /// Puts the writer's statements in the statement log from now on: the migrations' and
    /// the start-up check's are not the service's own.
    pub(super) fn log_writes(&self) {
        self.writer_connection.logged.store(true, Ordering::Relaxed);
    }
}

/// A mutex that a panic elsewhere did not spoil: a session's state is whole between
/// statements, each of which runs under the lock to its end.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn closed() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal("the database is closed".into()))
}

/// Runs `statement` through `run`, in the statement log (timed only when the log is on).
fn logged<T>(statement: &Statement, run: impl FnOnce() -> Result<T, DbErr>) -> Result<T, DbErr> {
    if !tracing::enabled!(target: super::STATEMENTS, tracing::Level::TRACE) {
        return run();
    }
    let started = Instant::now();
    let result = run();
    super::log_statement(&statement.sql, started.elapsed(), result.is_err());
    result
}

/// Connections for reads, each used by one statement at a time.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Session>>,
    opened: AtomicU32,
    closed: AtomicBool,
    /// The folder of an in-memory database, removed with the last reader.
    _temporary: Option<tempfile::TempDir>,
}

impl Readers {
    /// Runs `run` on an idle connection (or a new one) on this thread.
    fn with<T>(&self, run: impl FnOnce(&mut Session) -> Result<T, DbErr>) -> Result<T, DbErr> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed());
        }
        let idle = lock(&self.idle).pop();
        let mut session = match idle {
            Some(session) => session,
            None => {
                let session = Session::open(Path::new(&self.path), false, "BEGIN")?;
                self.opened.fetch_add(1, Ordering::Relaxed);
                session
            }
        };
        let result = run(&mut session);
        if self.closed.load(Ordering::Relaxed) {
            self.opened.fetch_sub(1, Ordering::Relaxed);
        } else {
            lock(&self.idle).push(session);
        }
        result
    }
}

#[derive(Debug)]
struct ReadersProxy(Arc<Readers>);

#[async_trait::async_trait]
impl ProxyDatabaseTrait for ReadersProxy {
    async fn query(&self, statement: Statement) -> Result<Vec<ProxyRow>, DbErr> {
        logged(&statement, || self.0.with(|session| session.query(&statement)))
    }

    async fn execute(&self, statement: Statement) -> Result<ProxyExecResult, DbErr> {
        logged(&statement, || self.0.with(|session| session.execute(&statement)))
    }

    // Reads run no transactions: every write goes through the writer, and a transaction
    // here would need one connection for several statements.
    async fn begin(&self) {
        tracing::error!("a transaction was begun on the read connections; it is not one");
    }
}

/// The writer's one connection.
#[derive(Debug, Clone)]
pub(super) struct WriterConnection {
    /// `None` once closed.
    session: Arc<Mutex<Option<Session>>>,
    /// Whether its statements go to the statement log yet.
    logged: Arc<AtomicBool>,
}

impl WriterConnection {
    /// The failure of the last begin, commit or rollback, if any (see `session.rs`).
    pub(super) fn take_failure(&self) -> Result<(), DbErr> {
        match lock(&self.session).as_mut() {
            Some(session) => session.take_failure().map_or(Ok(()), Err),
            None => Err(closed()),
        }
    }

    fn with<T>(&self, statement: &Statement, run: impl FnOnce(&mut Session) -> Result<T, DbErr>) -> Result<T, DbErr> {
        let run = || lock(&self.session).as_mut().map_or_else(|| Err(closed()), run);
        if self.logged.load(Ordering::Relaxed) { logged(statement, run) } else { run() }
    }

    fn step(&self, step: fn(&mut Session)) {
        if let Some(session) = lock(&self.session).as_mut() {
            step(session);
        }
    }
}

#[async_trait::async_trait]
impl ProxyDatabaseTrait for WriterConnection {
    async fn query(&self, statement: Statement) -> Result<Vec<ProxyRow>, DbErr> {
        self.with(&statement, |session| session.query(&statement))
    }

    async fn execute(&self, statement: Statement) -> Result<ProxyExecResult, DbErr> {
        self.with(&statement, |session| session.execute(&statement))
    }

    async fn begin(&self) {
        self.step(Session::begin);
    }

    async fn commit(&self) {
        self.step(Session::commit);
    }

    async fn rollback(&self) {
        self.step(Session::rollback);
    }

    fn start_rollback(&self) {
        self.step(Session::rollback);
    }
}
