//! One rusqlite connection and what sea-orm's proxy asks of it: statements, run on the
//! calling thread, and the transaction levels (the transaction, then a savepoint per nested
//! level) behind sea-orm's begin, commit and rollback.
//!
//! The proxy's begin, commit and rollback return nothing, so a `BEGIN` that waited out the
//! busy timeout or a `COMMIT` that failed (a full disk, a read-only file) would be invisible
//! to sea-orm. A session keeps such a failure until its owner takes it
//! ([`Session::take_failure`]: the writer does after each begin and commit), and refuses
//! statements inside a level that failed to begin, so that nothing runs outside the
//! transaction it believes it is in.

use std::{collections::HashMap, path::Path, time::Duration};

use rusqlite::{Connection, OpenFlags};
use sea_orm::{DbErr, ProxyExecResult, ProxyRow, RuntimeErr, Statement, sqlx};

use super::values::{self, Bind, Kind};

/// How long a statement waits for another process's lock on the file before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: the store's statements, each compiled once.
const STATEMENT_CACHE: usize = 256;

/// A transaction level as the session knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Open,
    /// Its `BEGIN` or `SAVEPOINT` failed: nothing runs in it, and ending it does nothing.
    Failed,
}

/// A connection and its transaction levels.
#[derive(Debug)]
pub(super) struct Session {
    connection: Connection,
    levels: Vec<Level>,
    /// A begin, commit or rollback that failed, until taken.
    failure: Option<DbErr>,
    /// How a transaction begins: the writer's `BEGIN IMMEDIATE` takes the file's write lock
    /// at once (waiting out other processes) instead of failing busy at its first write.
    begin: &'static str,
    /// Each table's columns' kinds, for the `RETURNING` columns SQLite declares no type of.
    tables: HashMap<String, HashMap<String, Kind>>,
}

impl Session {
    /// Opens the database file at `path` (creating it when `create`) as Missive keeps every
    /// connection: WAL, `synchronous=FULL` (WAL with NORMAL may lose the last commits on
    /// power loss, and an acknowledged message must survive that), foreign keys on, a busy
    /// timeout for other processes' locks.
    pub(super) fn open(path: &Path, create: bool, begin: &'static str) -> Result<Self, DbErr> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let connection = Connection::open_with_flags(path, flags).map_err(|err| failure(err, DbErr::Conn))?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(|err| failure(err, DbErr::Conn))?;
        let journal = wal_mode(&connection).map_err(|err| failure(err, DbErr::Conn))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(DbErr::Conn(RuntimeErr::Internal(format!(
                "the database refused WAL (it is in {journal} mode)"
            ))));
        }
        connection
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
            .map_err(|err| failure(err, DbErr::Conn))?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { connection, levels: Vec::new(), failure: None, begin, tables: HashMap::new() })
    }

    /// Runs a query; its rows.
    pub(super) fn query(&mut self, statement: &Statement) -> Result<Vec<ProxyRow>, DbErr> {
        self.ensure_in_good_level()?;
        let mut prepared = self.connection.prepare_cached(&statement.sql).map_err(|err| failure(err, DbErr::Query))?;
        bind(&mut prepared, statement).map_err(|err| failure(err, DbErr::Query))?;
        let mut columns = values::columns(&prepared);
        if let Some(table) = values::written_table(&statement.sql)
            && columns.iter().any(|(_, kind)| *kind == Kind::Untyped)
        {
            returned_kinds(&self.connection, &mut self.tables, table, &mut columns)?;
        }
        let mut rows = prepared.raw_query();
        let mut read = Vec::new();
        while let Some(row) = rows.next().map_err(|err| failure(err, DbErr::Query))? {
            read.push(values::row(&columns, row)?);
        }
        Ok(read)
    }

    /// Runs a command; how many rows it changed. Several statements without parameters (an
    /// operator's `PRAGMA`s) run one after another.
    pub(super) fn execute(&mut self, statement: &Statement) -> Result<ProxyExecResult, DbErr> {
        self.ensure_in_good_level()?;
        let unbound = statement.values.as_ref().is_none_or(|values| values.0.is_empty());
        let ran = match self.connection.prepare_cached(&statement.sql) {
            Ok(mut prepared) => {
                bind(&mut prepared, statement).and_then(|()| {
                    // Stepped to the end: a PRAGMA answers with a row, which is no error here.
                    let mut rows = prepared.raw_query();
                    while rows.next()?.is_some() {}
                    Ok(())
                })
            }
            Err(rusqlite::Error::MultipleStatement) if unbound => self.connection.execute_batch(&statement.sql),
            Err(err) => Err(err),
        };
        ran.map_err(|err| failure(err, DbErr::Exec))?;
        let last_insert_id = u64::try_from(self.connection.last_insert_rowid()).unwrap_or_default();
        Ok(ProxyExecResult { last_insert_id, rows_affected: self.connection.changes() })
    }

    /// Opens a level: the transaction, or a savepoint inside it.
    pub(super) fn begin(&mut self) {
        let depth = self.levels.len();
        let began = if depth == 0 {
            self.connection.execute_batch(self.begin)
        } else {
            self.step(&format!("SAVEPOINT level_{depth}"))
        };
        match began {
            Ok(()) => self.levels.push(Level::Open),
            Err(err) => {
                self.levels.push(Level::Failed);
                self.fail(failure(err, DbErr::Exec));
            }
        }
    }

    /// Closes the innermost level, keeping what it did.
    pub(super) fn commit(&mut self) {
        let Some(Level::Open) = self.levels.pop() else { return };
        let depth = self.levels.len();
        let sql = if depth == 0 { "COMMIT".to_owned() } else { format!("RELEASE level_{depth}") };
        if let Err(err) = self.step(&sql) {
            self.fail(failure(err, DbErr::Exec));
            // A COMMIT that failed may leave the transaction open: nothing of it stands.
            if depth == 0 && !self.connection.is_autocommit() {
                let _ = self.connection.execute_batch("ROLLBACK");
            }
        }
    }

    /// Closes the innermost level, undoing what it did.
    pub(super) fn rollback(&mut self) {
        let Some(Level::Open) = self.levels.pop() else { return };
        let depth = self.levels.len();
        let sql = if depth == 0 {
            "ROLLBACK".to_owned()
        } else {
            format!("ROLLBACK TO level_{depth}; RELEASE level_{depth}")
        };
        // SQLite may have rolled the transaction back itself (a full disk, an I/O error).
        if let Err(err) = self.connection.execute_batch(&sql)
            && !(depth == 0 && self.connection.is_autocommit())
        {
            self.fail(failure(err, DbErr::Exec));
        }
    }

    /// Runs one statement of a transaction's steps, compiled once per connection (a batch
    /// opens and releases a savepoint per unit).
    fn step(&self, sql: &str) -> rusqlite::Result<()> {
        self.connection.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// The failure of a begin, commit or rollback since the last call, if any.
    pub(super) fn take_failure(&mut self) -> Option<DbErr> {
        self.failure.take()
    }

    fn fail(&mut self, err: DbErr) {
        tracing::debug!(error = %err, "a SQLite transaction step failed");
        self.failure.get_or_insert(err);
    }

    fn ensure_in_good_level(&self) -> Result<(), DbErr> {
        // A full disk or an I/O error may have made SQLite roll the transaction back
        // itself: a statement now would run, and commit, on its own.
        if !self.levels.is_empty() && self.connection.is_autocommit() {
            return Err(self.failure.clone().unwrap_or_else(|| {
                DbErr::Exec(RuntimeErr::Internal("SQLite rolled the transaction back after an error".into()))
            }));
        }
        if self.levels.contains(&Level::Failed) {
            return Err(self.failure.clone().unwrap_or_else(|| {
                DbErr::Exec(RuntimeErr::Internal("the transaction this statement belongs to failed to begin".into()))
            }));
        }
        Ok(())
    }
}

/// Types the `RETURNING` columns of a write to `table` from the table's declared columns
/// (read once per connection, and again when a column is missing: a migration added it).
fn returned_kinds(
    connection: &Connection,
    tables: &mut HashMap<String, HashMap<String, Kind>>,
    table: &str,
    columns: &mut [(String, Kind)],
) -> Result<(), DbErr> {
    let known = tables.get(table).is_some_and(|kinds| columns.iter().all(|(name, _)| kinds.contains_key(name)));
    if !known {
        let mut info = connection
            .prepare("SELECT name, type FROM pragma_table_info(?1)")
            .map_err(|err| failure(err, DbErr::Query))?;
        let kinds = info
            .query_map([table], |row| Ok((row.get::<_, String>(0)?, Kind::of(Some(&row.get::<_, String>(1)?)))))
            .and_then(|rows| rows.collect::<Result<HashMap<_, _>, _>>())
            .map_err(|err| failure(err, DbErr::Query))?;
        tables.insert(table.to_owned(), kinds);
    }
    let kinds = &tables[table];
    for (name, kind) in columns.iter_mut().filter(|(_, kind)| *kind == Kind::Untyped) {
        if let Some(declared) = kinds.get(name) {
            *kind = *declared;
        }
    }
    Ok(())
}

/// Puts the file in WAL mode (a no-op once it is); the mode it is in. Processes starting
/// together on a new file all ask at once, and SQLite answers "busy" at once to all but
/// one (its busy timeout does not apply to this change): asked again, they find it done.
fn wal_mode(connection: &Connection) -> rusqlite::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(code, _))
                if code.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            answered => return answered,
        }
    }
}

fn bind(prepared: &mut rusqlite::CachedStatement<'_>, statement: &Statement) -> rusqlite::Result<()> {
    prepared.clear_bindings();
    if let Some(values) = &statement.values {
        for (index, value) in values.0.iter().enumerate() {
            prepared.raw_bind_parameter(index + 1, Bind(value))?;
        }
    }
    Ok(())
}

/// A SQLite error as sea-orm carries a database's errors, so that one mapping
/// (`From<DbErr> for Error`) reads SQLite's codes and PostgreSQL's alike.
pub(super) fn failure(err: rusqlite::Error, kind: fn(RuntimeErr) -> DbErr) -> DbErr {
    let failure = match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.unwrap_or_else(|| code.to_string());
            SqliteFailure { code: code.extended_code, message }
        }
        other => return kind(RuntimeErr::Internal(other.to_string())),
    };
    kind(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Database(Box::new(failure)))))
}

/// What SQLite said: its extended result code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message} (SQLite code {code})")]
pub struct SqliteFailure {
    /// The extended result code; its low byte is the primary one.
    pub code: i32,
    message: String,
}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code {
            // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
