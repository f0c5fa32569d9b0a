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
};

use rusqlite::{Connection, OpenFlags};

use super::{integrity, migrate, sqlite};
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
             (see docs/operations.md, Backups)",
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
    let original = source.display().to_string();
    let (source, partial) = (source.to_owned(), partial.to_owned());
    let found = tokio::task::spawn_blocking(move || -> rusqlite::Result<Vec<String>> {
        let live = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        live.busy_timeout(sqlite::BUSY_TIMEOUT)?;
        live.execute("VACUUM INTO ?1", [partial.to_string_lossy()])?;
        drop(live);
        let copy = Connection::open_with_flags(&partial, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut check = copy.prepare(integrity::QUICK_CHECK)?;
        check.query_map([], |row| row.get::<_, String>(0))?.collect()
    })
    .await
    .map_err(|err| failed(&err))?
    .map_err(|err| failed(&err))?;
    // A copy that fails its check is a damaged original: the message names the original.
    integrity::verdict(&original, found)
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
