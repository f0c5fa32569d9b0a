//! Backups of the embedded database while it serves: `VACUUM INTO` copies a consistent
//! snapshot of the file (one read transaction, so writers go on meanwhile) into a new
//! file, which is checked, flushed and only then given its name, so that a backup that
//! exists is whole. It opens the file as any other process would, which is safe because
//! the server never drops its own SQLite locks (see `migrate.rs`). On PostgreSQL,
//! `pg_dump` or point-in-time recovery do this job.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

use super::{integrity, migrate};
use crate::domain::Error;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The new file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// Copies the SQLite database of `url` to `destination`, a file that must not exist yet.
pub async fn backup(url: &str, destination: &Path) -> Result<Backup, Error> {
    let field = "PATH";
    if migrate::sqlite_file(url).is_none() {
        return Err(Error::invalid(
            "--database-url",
            "backs up a SQLite file; on PostgreSQL use pg_dump or point-in-time recovery (see the README's Backups)",
        ));
    }
    if destination.exists() {
        return Err(Error::invalid(field, format!("{} exists already: name a new file", destination.display())));
    }
    let partial = PathBuf::from(format!("{}.partial", destination.display()));
    let _ = std::fs::remove_file(&partial);
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).max_connections(1).map_sqlx_sqlite_opts(|sqlite| {
        sqlite.create_if_missing(false).busy_timeout(std::time::Duration::from_secs(10))
    });
    let db =
        Database::connect(options).await.map_err(|err| Error::Unavailable(format!("could not open {url}: {err}")))?;
    let copy = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "VACUUM INTO ?",
        [partial.to_string_lossy().into_owned().into()],
    );
    let copied = db.execute_raw(copy).await.map_err(Error::from);
    db.close().await.ok();
    if let Err(err) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    let bytes = seal(&partial, destination).await.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    Ok(Backup { path: destination.to_owned(), bytes })
}

/// Checks the copy at `partial`, flushes it to disk and renames it to `destination`
/// (flushing the folder too, so that the name survives a power cut); its size.
async fn seal(partial: &Path, destination: &Path) -> Result<u64, Error> {
    let url = format!("sqlite:{}", partial.display());
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false).max_connections(1);
    let copy = Database::connect(options).await.map_err(|err| Error::Unavailable(format!("the copy: {err}")))?;
    let checked = integrity::check(&copy, &partial.display().to_string()).await;
    copy.close().await.ok();
    checked?;
    let (partial, destination) = (partial.to_owned(), destination.to_owned());
    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let file = std::fs::File::open(&partial)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&partial, &destination)?;
        let folder = destination.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(folder)?.sync_all()?;
        Ok(bytes)
    })
    .await
    .map_err(|err| Error::Internal(err.to_string()))?
    .map_err(|err| Error::Unavailable(format!("could not write the backup: {err}")))
}
