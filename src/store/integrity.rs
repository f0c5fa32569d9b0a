//! The SQLite file's integrity, checked before it is served: a file damaged by a failing
//! disk, a copy taken the wrong way (a `cp` of a live file without its `-wal`) or an
//! outside tool is refused with what to do, instead of serving wrong answers or failing
//! calls later one by one. `PRAGMA quick_check` reads every page once (it skips the
//! costlier cross-checks of indexes against tables that `integrity_check` makes): about a
//! second per 500 MB on this project's benchmark machine. PostgreSQL checks its own pages.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::domain::Error;

/// The problems `quick_check` reports at most, in the refusal.
const REPORTED: u32 = 5;

/// Ok when `db` (a SQLite database at `path`) passes `quick_check`; else UNAVAILABLE with
/// what it found and what to do.
pub async fn check(db: &DatabaseConnection, path: &str) -> Result<(), Error> {
    let statement = Statement::from_string(DbBackend::Sqlite, format!("PRAGMA quick_check({REPORTED})"));
    let found: Vec<String> = match db.query_all_raw(statement).await {
        Ok(rows) => rows.iter().filter_map(|row| row.try_get_by_index::<String>(0).ok()).collect(),
        Err(err) => vec![err.to_string()],
    };
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    Err(damaged(path, &found.join("; ")))
}

/// The refusal to serve a damaged file at `path`.
pub fn damaged(path: &str, found: &str) -> Error {
    Error::Unavailable(format!(
        "the database file {path} is damaged ({found}); Missive will not serve it. Stop every process using \
         it, then restore the latest backup (`missive backup`, see the README's Backups) or salvage what can be \
         read into a new file with `sqlite3 {path} .recover | sqlite3 recovered.db`"
    ))
}

/// Whether `err` is SQLite saying the file is damaged (SQLITE_CORRUPT) or not a database at
/// all (SQLITE_NOTADB): a header too broken to open gets the same refusal.
pub fn is_damage(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    let (DbErr::Conn(runtime) | DbErr::Query(runtime) | DbErr::Exec(runtime)) = err else { return false };
    let RuntimeErr::SqlxError(source) = runtime else { return false };
    let sqlx::Error::Database(database) = source.as_ref() else { return false };
    database.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| matches!(code & 0xff, 11 | 26))
}
