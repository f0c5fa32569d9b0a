//! Faults of the database under load: the server's PostgreSQL sessions terminated by an
//! administrator (or a failover), a database turned read-only, and a full disk answer
//! UNAVAILABLE or RESOURCE_EXHAUSTED, which clients may retry, never INTERNAL; nothing
//! acknowledged is lost, and the service recovers by itself when the cause goes.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use tonic::Code;

use crate::helpers::{postgres_server, spawn_app, spawn_app_on, sqlite_file, text};

/// PostgreSQL only: SQLite has no sessions to terminate.
#[tokio::test]
#[ignore = "needs PostgreSQL: MISSIVE_TEST_DATABASE_URL=postgres://… and --include-ignored"]
async fn terminated_database_sessions_answer_unavailable_and_the_service_recovers() {
    postgres_server();
    let app = spawn_app().await;
    let buyer = app.member("Buyer").await;
    let seller = app.member("Seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let load_until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut senders = Vec::new();
    for sender in 0..8 {
        let session = app.session(if sender % 2 == 0 { &buyer } else { &seller });
        let conversation_id = conversation.id.clone();
        senders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while tokio::time::Instant::now() < load_until {
                if let Err(status) = session.send_message(text(&conversation_id, "under fire")).await {
                    failures.push((status.code(), status.message().to_owned()));
                }
            }
            failures
        }));
    }
    let admin = Database::connect(&app.database_url).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
            .unwrap();
    }
    let mut failures = Vec::new();
    for sender in senders {
        failures.extend(sender.await.unwrap());
    }

    assert!(!failures.is_empty(), "no send failed: the sessions were not terminated under load");
    let wrong: Vec<_> = failures.iter().filter(|(code, _)| *code != Code::Unavailable).collect();
    assert!(wrong.is_empty(), "{} of {} failures were not UNAVAILABLE: {wrong:?}", wrong.len(), failures.len());
    app.send(&buyer, &conversation.id, "after the storm").await;
    app.assert_no_unread_drift().await;
}

/// A small tmpfs of its own, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounting needs root: the tests that mount one are in [`as_root`].
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|err| panic!("mount: {err}"));
        let stderr = String::from_utf8_lossy(&mounted.stderr);
        assert!(mounted.status.success(), "mounting a tmpfs needs root: {stderr}");
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk with a file, then frees `margin` bytes of it.
    fn fill_leaving(&self, margin: u64) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while filler.write_all(&chunk).and_then(|()| filler.sync_all()).is_ok() {}
        let length = filler.metadata().unwrap().len();
        filler.set_len(length.saturating_sub(margin)).unwrap();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// The tests that need root, ignored where they would fail for the want of it: `.ci/run`,
/// which runs as root, runs this module by name (`--ignored as_root::`), and they fail
/// loudly there if they cannot do their part.
mod as_root {
    use super::*;

    /// A SQLite file on a disk of its own (a PostgreSQL server's disk is not the test's to
    /// fill): it runs in both passes.
    #[tokio::test]
    #[ignore = "needs root: mounts a tmpfs (.ci/run runs it)"]
    async fn a_full_disk_answers_resource_exhausted_and_writes_resume_when_space_returns() {
        let disk = SmallDisk::mount("16m");
        let url = format!("sqlite:{}", disk.path().join("missive.db").display());
        let app = spawn_app_on(&url, |_| {}).await;
        let buyer = app.member("Buyer").await;
        let seller = app.member("Seller").await;
        let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
        disk.fill_leaving(256 * 1024);

        let mut acknowledged = Vec::new();
        let refused = loop {
            match app.session(&buyer).send_message(text(&conversation.id, &"x".repeat(8 * 1024))).await {
                Ok(message) => acknowledged.push(message.id),
                Err(status) => break status,
            }
            assert!(acknowledged.len() < 1000, "the disk never filled");
        };
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(refused.message().contains("storage is full"), "{refused:?}");
        assert_eq!(app.session(&seller).get_unread_count().await.unwrap().unread_count, acknowledged.len() as i64);

        disk.free();
        let after = app.session(&buyer).send_message(text(&conversation.id, "space again")).await.unwrap();
        acknowledged.push(after.id);
        let listed = app.session(&seller).all_messages_in(&conversation.id, 1000).await.unwrap();
        assert_eq!(listed.into_iter().map(|m| m.id).collect::<Vec<_>>(), acknowledged, "every acknowledged message");
        app.assert_no_unread_drift().await;
    }
}

/// SQLite: another process holding the file's write lock (a `sqlite3` shell in a
/// transaction, a bulk import) makes a write wait out the busy timeout, then fail as
/// UNAVAILABLE with nothing of it stored; writes resume once the lock goes.
#[tokio::test]
async fn a_write_lock_held_by_another_process_fails_writes_unavailable_and_they_resume() {
    // A file of its own, in the PostgreSQL pass too.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(&sqlite_file(&dir), |_| {}).await;
    let path = dir.path().join("missive.db");
    let buyer = app.member("Buyer").await;
    let seller = app.member("Seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let before = app.session(&buyer).send_message(text(&conversation.id, "before")).await.unwrap();

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let refused = app.session(&buyer).send_message(text(&conversation.id, "while locked")).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(waited >= Duration::from_secs(9) && waited < Duration::from_secs(30), "waited {waited:?}");
    app.session(&seller).get_unread_count().await.expect("reads go on meanwhile");
    holder.execute_batch("ROLLBACK").unwrap();

    let after = app.session(&buyer).send_message(text(&conversation.id, "after")).await.unwrap();
    let listed = app.session(&seller).all_messages_in(&conversation.id, 100).await.unwrap();
    assert_eq!(listed.into_iter().map(|m| m.id).collect::<Vec<_>>(), [before.id, after.id]);
    app.assert_no_unread_drift().await;
}

/// PostgreSQL only: a SQLite file opened read-write stays so (the full disk is its fault).
#[tokio::test]
#[ignore = "needs PostgreSQL: MISSIVE_TEST_DATABASE_URL=postgres://… and --include-ignored"]
async fn a_read_only_database_answers_unavailable_and_writes_resume_when_it_is_writable() {
    postgres_server();
    let app = spawn_app().await;
    let buyer = app.member("Buyer").await;
    let seller = app.member("Seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    // The administrator works from another database, whose sessions stay writable.
    let (base, database) = app.database_url.rsplit_once('/').unwrap();
    let admin = Database::connect(format!("{base}/postgres")).await.unwrap();
    let reconnect_all = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'");
    // As a failover to a standby does: every new session is read-only.
    admin
        .execute_unprepared(&format!("ALTER DATABASE {database} SET default_transaction_read_only = on"))
        .await
        .unwrap();
    admin.execute_unprepared(&reconnect_all).await.unwrap();

    let mut codes = Vec::new();
    for _ in 0..5 {
        if let Err(status) = app.session(&buyer).send_message(text(&conversation.id, "read-only?")).await {
            codes.push(status.code());
        }
    }
    assert!(codes.contains(&Code::Unavailable), "{codes:?}");
    assert!(codes.iter().all(|code| *code == Code::Unavailable), "{codes:?}");
    app.session(&seller).get_unread_count().await.expect("reads still work");

    admin.execute_unprepared(&format!("ALTER DATABASE {database} RESET default_transaction_read_only")).await.unwrap();
    admin.execute_unprepared(&reconnect_all).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.session(&buyer).send_message(text(&conversation.id, "writable again")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "writes never resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.assert_no_unread_drift().await;
}
