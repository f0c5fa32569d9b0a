//! Backups of the embedded database while it serves: `VACUUM INTO` copies a consistent
//! snapshot of the file (one read transaction, so writers go on meanwhile) into a new file
//! of this run's own, which is checked and flushed and only then linked to its name (a
//! link fails where a file exists: nothing is ever overwritten), so that a backup that
//! exists is whole. The copy is made with the live file's permissions: it holds the same
//! secrets. It opens the file as any other process would, which is safe because the server
//! never drops its own SQLite locks (see `migrate.rs`). On PostgreSQL, `pg_dump` or
//! point-in-time recovery do this job.

use std::{
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use sea_orm::sqlx::{self, Connection, sqlite::SqliteConnectOptions, sqlite::SqliteConnection};

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
    let Some(source) = migrate::sqlite_file(url).map(PathBuf::from) else {
        return Err(Error::invalid(
            "--database-url",
            "names no SQLite file: backups copy one; on PostgreSQL use pg_dump or point-in-time recovery \
             (see the README's Backups)",
        ));
    };
    let folder = destination.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(Error::invalid("PATH", format!("there is no folder {}", folder.display())));
    }
    if destination.exists() {
        return Err(Error::invalid("PATH", format!("{} exists already: name a new file", destination.display())));
    }
    let mode = std::fs::metadata(&source)
        .map_err(|err| Error::invalid("--database-url", format!("cannot read {}: {err}", source.display())))?
        .permissions()
        .mode();
    let partial = folder.join(format!(".{}.partial", uuid::Uuid::now_v7().simple()));
    let made = copy(&source, &partial, mode).await.and_then(|()| seal(&partial, destination, folder));
    let _ = std::fs::remove_file(&partial);
    made.map(|bytes| Backup { path: destination.to_owned(), bytes })
}

/// The snapshot of `source` in a new file at `partial`, with permissions `mode`, checked.
async fn copy(source: &Path, partial: &Path, mode: u32) -> Result<(), Error> {
    let failed = |err: &dyn std::fmt::Display| Error::Unavailable(format!("the backup failed: {err}"));
    // Made empty first, with the live file's permissions; VACUUM INTO fills an empty file.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(partial)
        .map_err(|err| failed(&err))?;
    let options =
        SqliteConnectOptions::new().filename(source).create_if_missing(false).busy_timeout(Duration::from_secs(10));
    let mut live = SqliteConnection::connect_with(&options).await.map_err(|err| failed(&err))?;
    let copied = sqlx::query("VACUUM INTO ?").bind(partial.to_string_lossy().into_owned()).execute(&mut live).await;
    let _ = live.close().await;
    copied.map_err(|err| failed(&err))?;
    let mut copy = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(partial))
        .await
        .map_err(|err| failed(&err))?;
    let found: Result<Vec<String>, _> = sqlx::query_scalar(integrity::QUICK_CHECK).fetch_all(&mut copy).await;
    let _ = copy.close().await;
    // A copy that fails its check is a damaged original: the message names the original.
    integrity::verdict(&source.display().to_string(), found.map_err(|err| failed(&err))?)
}

/// Flushes the copy at `partial` to disk and links it to `destination` (failing if that
/// exists), flushing `folder` too so that the name survives a power cut; its size.
fn seal(partial: &Path, destination: &Path, folder: &Path) -> Result<u64, Error> {
    let sealed = (|| -> std::io::Result<u64> {
        let file = std::fs::File::open(partial)?;
        file.sync_all()?;
        std::fs::hard_link(partial, destination)?;
        std::fs::File::open(folder)?.sync_all()?;
        file.metadata().map(|metadata| metadata.len())
    })();
    sealed.map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Error::invalid("PATH", format!("{} exists already: name a new file", destination.display()))
        }
        _ => Error::Unavailable(format!("could not write the backup: {err}")),
    })
}
