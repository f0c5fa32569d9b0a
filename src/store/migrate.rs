//! Bringing the schema up to date once, however many processes start at the same moment
//! on one database (replicas after an upgrade, or on a new database): each takes a lock
//! first, runs what is left to run (nothing, for all but the first) and lets go. Without
//! it, two processes create the same table at once and one exits. On PostgreSQL the lock
//! is a session advisory lock; on SQLite an exclusive `flock` on a file of its own beside
//! the database, `<database>-lock`, never on the database file itself: SQLite's locks are
//! POSIX `fcntl` locks, and closing *any* descriptor of a file drops every such lock the
//! process holds on it. A lock taken and let go on the database file dropped the read locks
//! of the server's open connections, so the next outside process to close the file (the
//! `sqlite3` shell, a backup, a monitoring query) believed itself the last user,
//! checkpointed and deleted the WAL under the server, and acknowledged writes were lost.
//! The lock file is kept: removing it would let two processes lock two different files.

use migrations::MigratorTrait;
use sea_orm::{DatabaseConnection, DbBackend, sqlx};

use crate::domain::Error;

/// The advisory lock's key: "missive" and 1, so that nothing else picks it by chance.
const POSTGRES_LOCK_KEY: i64 = 0x6d69_7373_6976_6501;

/// Runs the migrations still to run, under the lock.
pub(super) async fn migrate(db: &DatabaseConnection, url: &str) -> Result<(), Error> {
    let failed = |err: &dyn std::fmt::Display| Error::Unavailable(format!("could not migrate the database: {err}"));
    match db.get_database_backend() {
        DbBackend::Postgres => {
            // Held by one connection of the pool for the migration's length; released when
            // unlocked, or when the connection closes if this process dies meanwhile.
            let mut holder = db.get_postgres_connection_pool().acquire().await.map_err(|err| failed(&err))?;
            let lock = |sql| sqlx::query(sql).bind(POSTGRES_LOCK_KEY);
            lock("SELECT pg_advisory_lock($1)").execute(&mut *holder).await.map_err(|err| failed(&err))?;
            let migrated = migrations::Migrator::up(db, None).await.map_err(|err| failed(&err));
            lock("SELECT pg_advisory_unlock($1)").execute(&mut *holder).await.map_err(|err| failed(&err))?;
            migrated
        }
        _ => {
            let _held = match sqlite_file(url) {
                Some(path) => Some(lock_file(lock_path(&path), path).await.map_err(|err| failed(&err))?),
                None => None,
            };
            migrations::Migrator::up(db, None).await.map_err(|err| failed(&err))
        }
    }
}

/// The file of a `sqlite:` URL; none for an in-memory database, which no one shares.
pub(super) fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest).split('?').next().unwrap_or_default();
    let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    (!in_memory).then(|| path.to_owned())
}

/// The migrations' lock file of database file `path`.
fn lock_path(path: &str) -> String {
    format!("{path}-lock")
}

/// The lock file at `path`, created if missing and locked exclusively (waiting for another
/// process's migration). It is opened read-only (`flock` needs no more), and made with the
/// owner and permissions of `database`: a lock file left by `sudo missive keys create` must
/// not stop the service's own user from starting.
async fn lock_file(path: String, database: String) -> std::io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = match std::fs::File::open(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let owner = std::fs::metadata(&database)?;
                let made =
                    std::fs::OpenOptions::new().write(true).create(true).mode(owner.mode() & 0o666).open(&path)?;
                // Only root may give it away; anyone else made it its own already.
                let _ = std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()));
                made
            }
            opened => opened?,
        };
        file.lock()?;
        Ok(file)
    })
    .await
    .unwrap_or_else(|err| Err(std::io::Error::other(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite:missive.db").as_deref(), Some("missive.db"));
        assert_eq!(sqlite_file("sqlite:///tmp/a.db?mode=rwc").as_deref(), Some("/tmp/a.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite:file:x?mode=memory&cache=shared"), None);
    }
}
