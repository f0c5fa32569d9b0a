//! Durability under crashes: a real `missive` process, killed with SIGKILL in the middle of
//! a send load three times over, loses nothing it acknowledged, and leaves sequences
//! gap-free and counters equal to a recount; so does one whose SQLite file other processes
//! open, read and close meanwhile, and a backup taken under the load holds everything
//! acknowledged before it began. (Power loss, which a SIGKILL cannot show, is
//! `power.rs`.)

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use missive::api::pb;

use crate::helpers::{Session, TestApp, serve_in_a_process, spawn_app, text};

#[tokio::test]
async fn every_acknowledged_message_survives_repeated_sigkills_during_a_send_load() {
    // The test's own server makes the users and verifies; a child process takes the load
    // and is killed, three times over, each new one on what the last left behind. Both use
    // the same database, as replicas would.
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..3 {
        let (mut child, channel) = serve_in_a_process(&app.database_url, &[]).await;
        let mut senders = Vec::new();
        for sender in 0..8 {
            let session = Session::over(channel.clone(), if sender % 2 == 0 { &buyer.key } else { &seller.key });
            let (conversation_id, acknowledged) = (conversation.id.clone(), Arc::clone(&acknowledged));
            senders.push(tokio::spawn(async move {
                for index in 0.. {
                    let request = pb::SendMessageRequest {
                        request_id: format!("load-{round}-{sender}-{index}"),
                        ..text(&conversation_id, &format!("{round}/{sender}/{index}"))
                    };
                    match session.send_message(request).await {
                        Ok(message) => acknowledged.lock().unwrap().push(message.id),
                        Err(_) => return,
                    }
                }
            }));
        }
        // Kill once a good number of this round's sends were acknowledged, mid-load.
        let target = 200 * (round + 1);
        for _ in 0..300 {
            if acknowledged.lock().unwrap().len() >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
        for sender in senders {
            sender.await.unwrap();
        }
        let count = acknowledged.lock().unwrap().len();
        assert!(count >= target, "only {count} sends were acknowledged before kill {}", round + 1);
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored = app.session(&buyer).all_messages_in(&conversation.id, 100).await.unwrap();
    let stored_ids: HashSet<&String> = stored.iter().map(|m| &m.id).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored_ids.contains(id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged messages were lost: {lost:?}", lost.len(), acknowledged.len());
    // Sequences stay gap-free and counters exact, whatever the kill cut short.
    let sequences: Vec<i64> = stored.iter().map(|m| m.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    app.assert_no_unread_drift().await;
}

/// Whether this run is on SQLite: the tests below are about the SQLite file itself, and
/// run in the SQLite pass of the suite (the PostgreSQL pass has no file to open).
pub(crate) fn on_sqlite() -> bool {
    !std::env::var("MISSIVE_TEST_DATABASE_URL").is_ok_and(|url| url.starts_with("postgres"))
}

/// A new SQLite file in a folder of its own (the folder, the file, its URL), in the
/// PostgreSQL pass too: the tests that take one are about the file.
fn a_new_file() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missive.db");
    let url = crate::helpers::sqlite_file(&dir);
    (dir, path, url)
}

/// A member with a key, made by `missive keys create` (a process that exits) on the file.
pub(crate) async fn member_key(database_url: &str, name: &str) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["keys", "create", "--role", "member", "--display-name", name, "--database-url", database_url])
        .output()
        .await
        .expect("missive keys create runs");
    assert!(output.status.success(), "keys create: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// What an outside tool does: open the file with Python's `sqlite3`, read, close.
async fn read_from_outside(path: &std::path::Path) -> i64 {
    let script = "import sqlite3, sys\n\
                  db = sqlite3.connect(sys.argv[1])\n\
                  print(db.execute('SELECT count(*) FROM messages').fetchone()[0])\n\
                  db.close()\n";
    let output =
        tokio::process::Command::new("python3").args(["-c", script]).arg(path).output().await.expect("python3 runs");
    assert!(output.status.success(), "the outside read failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().parse().unwrap()
}

/// Sends `count` messages as `session`, each acknowledged; their ids.
async fn send_acknowledged(session: &Session, conversation_id: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..count {
        ids.push(session.send_message(text(conversation_id, &format!("m{index}"))).await.expect("acknowledged").id);
    }
    ids
}

/// A `missive` process alone on `url`, with two members (made by `keys create`) in a
/// conversation.
pub(crate) struct Served {
    pub child: tokio::process::Child,
    pub channel: tonic::transport::Channel,
    pub buyer: String,
    pub seller: String,
    pub conversation_id: String,
}

impl Served {
    pub(crate) async fn start(url: &str) -> Served {
        let (buyer, seller) = (member_key(url, "buyer").await, member_key(url, "seller").await);
        let (child, channel) = serve_in_a_process(url, &[]).await;
        let seller_id = Session::over(channel.clone(), &seller).get_caller().await.unwrap().id;
        let conversation = Session::over(channel.clone(), &buyer)
            .create_conversation(pb::CreateConversationRequest {
                participants: vec![pb::NewParticipant { user_id: seller_id, label: "seller".into() }],
                ..Default::default()
            })
            .await
            .unwrap()
            .conversation
            .unwrap();
        Served { child, channel, buyer, seller, conversation_id: conversation.id }
    }

    /// Eight senders, buyer and seller in turn, each sending until a send fails.
    pub(crate) fn load(&self) -> SendLoad {
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let senders = (0..8)
            .map(|sender| {
                let session =
                    Session::over(self.channel.clone(), if sender % 2 == 0 { &self.buyer } else { &self.seller });
                let (conversation_id, acknowledged) = (self.conversation_id.clone(), Arc::clone(&acknowledged));
                tokio::spawn(async move {
                    for index in 0.. {
                        match session.send_message(text(&conversation_id, &format!("{sender}/{index}"))).await {
                            Ok(message) => acknowledged.lock().unwrap().push(message.id),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        SendLoad { acknowledged, senders }
    }

    /// SIGKILL, waited for.
    pub(crate) async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.unwrap();
    }
}

/// Sends under way, and what they were told.
pub(crate) struct SendLoad {
    acknowledged: Arc<Mutex<Vec<String>>>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl SendLoad {
    /// Waits until at least `count` sends were acknowledged (30 s at most).
    pub(crate) async fn until(&self, count: usize) {
        for _ in 0..1500 {
            if self.acknowledged.lock().unwrap().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {count} sends were acknowledged");
    }

    /// What was acknowledged so far.
    pub(crate) fn acknowledged(&self) -> Vec<String> {
        self.acknowledged.lock().unwrap().clone()
    }

    /// Once the server is gone: everything acknowledged.
    pub(crate) async fn finish(self) -> Vec<String> {
        for sender in self.senders {
            sender.await.unwrap();
        }
        self.acknowledged.lock().unwrap().clone()
    }
}

/// Asserts that `app` holds every message of `expected` (`what` names them) in the
/// conversation its participant with `key` reads, with gap-free sequences and counters
/// equal to a recount; what is stored.
pub(crate) async fn holds_every(
    app: &TestApp,
    key: &str,
    conversation_id: &str,
    expected: &[String],
    what: &str,
) -> Vec<pb::Message> {
    let stored = app.session_with_key(key).all_messages_in(conversation_id, 100).await.unwrap();
    let ids: HashSet<&String> = stored.iter().map(|m| &m.id).collect();
    let lost = expected.iter().filter(|id| !ids.contains(id)).count();
    assert_eq!(lost, 0, "{lost} of {} {what} are missing", expected.len());
    let sequences: Vec<i64> = stored.iter().map(|m| m.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    app.assert_no_unread_drift().await;
    stored
}

#[tokio::test]
async fn a_process_that_opens_and_closes_the_file_takes_nothing_acknowledged_with_it() {
    // One server process is the file's only user; a second process opens it, reads and
    // closes it between two bursts of sends; then the server is killed.
    let (_dir, path, url) = a_new_file();
    let mut served = Served::start(&url).await;
    let buyer = Session::over(served.channel.clone(), &served.buyer);
    let mut acknowledged = send_acknowledged(&buyer, &served.conversation_id, 50).await;
    assert_eq!(read_from_outside(&path).await, 50);
    acknowledged.extend(send_acknowledged(&buyer, &served.conversation_id, 50).await);
    served.kill().await;

    let app = verifier(&url).await;
    holds_every(&app, &served.seller, &served.conversation_id, &acknowledged, "acknowledged messages").await;
}

/// A server on `url` in this process, with the database's one account as its own.
pub(crate) async fn verifier(url: &str) -> TestApp {
    let mut app = TestApp::serve_database(url).await;
    let accounts = missive::store::seed::account_ids(&app.store, 2).await.unwrap();
    app.account_id = accounts.into_iter().next().expect("an account");
    app
}

#[tokio::test]
async fn outside_readers_and_a_backup_during_a_send_load_lose_nothing() {
    let (dir, path, url) = a_new_file();
    let mut served = Served::start(&url).await;
    // Another process opens the file, reads and closes it, over and over.
    let reader = "import sqlite3, sys, time\n\
                  while True:\n    db = sqlite3.connect(sys.argv[1])\n    \
                  db.execute('SELECT count(*) FROM messages').fetchone()\n    db.close()\n    time.sleep(0.01)\n";
    let mut outside = tokio::process::Command::new("python3")
        .args(["-c", reader])
        .arg(&path)
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let load = served.load();
    load.until(150).await;
    let before_backup = load.acknowledged();
    let backup = dir.path().join("backup.db");
    let backed_up = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .arg("backup")
        .arg(&backup)
        .args(["--database-url", &url])
        .output()
        .await
        .unwrap();
    assert!(backed_up.status.success(), "backup: {}", String::from_utf8_lossy(&backed_up.stderr));
    load.until(before_backup.len() + 150).await;
    served.kill().await;
    let acknowledged = load.finish().await;
    outside.start_kill().unwrap();
    outside.wait().await.unwrap();

    // The killed server's file holds everything it acknowledged, gap-free and exact.
    let app = verifier(&url).await;
    holds_every(&app, &served.seller, &served.conversation_id, &acknowledged, "acknowledged messages").await;

    // The backup, restored as docs/operations.md says into a new place, holds everything
    // acknowledged before it began.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_path = restored_dir.path().join("missive.db");
    std::fs::copy(&backup, &restored_path).unwrap();
    let restored = verifier(&format!("sqlite:{}", restored_path.display())).await;
    let what = "messages acknowledged before the backup";
    holds_every(&restored, &served.seller, &served.conversation_id, &before_backup, what).await;
}

/// What `missive serve` on `url` printed when it stopped; fails if it served instead.
async fn refused_to_serve(url: &str) -> String {
    let serving = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), serving).await.expect("it stops by itself").unwrap();
    assert!(!output.status.success(), "it served a damaged file");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_damaged_file_is_refused_at_start_saying_what_to_do() {
    let (_dir, path, url) = a_new_file();
    member_key(&url, "someone").await;
    let pristine = std::fs::read(&path).unwrap();

    // Pages past the first overwritten, as a failing disk would leave them.
    let mut damaged = pristine.clone();
    for byte in &mut damaged[8192..pristine.len() - 4096] {
        *byte = 0x5a;
    }
    std::fs::write(&path, &damaged).unwrap();
    let said = refused_to_serve(&url).await;
    assert!(said.contains("is damaged") && said.contains("restore the latest backup"), "{said}");

    // A header no database has: the same refusal.
    let mut headless = pristine;
    headless[..100].fill(0x5a);
    std::fs::write(&path, &headless).unwrap();
    let said = refused_to_serve(&url).await;
    assert!(said.contains("is damaged") && said.contains(".recover"), "{said}");
}

/// `missive backup` as a process; whether it succeeded, and what it said.
pub(crate) async fn backup_to(url: &str, destination: &std::path::Path) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .arg("backup")
        .arg(destination)
        .args(["--database-url", url])
        .output()
        .await
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_backup_keeps_the_files_permissions_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path, url) = a_new_file();
    member_key(&url, "someone").await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Two at once: both whole, each readable by the file's owner only (it holds secrets).
    let (first, second) = (dir.path().join("first.db"), dir.path().join("second.db"));
    let (made_first, made_second) = tokio::join!(backup_to(&url, &first), backup_to(&url, &second));
    assert!(made_first.0 && made_second.0, "{made_first:?} {made_second:?}");
    for copy in [&first, &second] {
        assert_eq!(std::fs::metadata(copy).unwrap().permissions().mode() & 0o777, 0o600, "{copy:?}");
        verifier(&format!("sqlite:{}", copy.display())).await.shutdown().await;
    }
    // Never over an existing file, nor into a folder that is not there; no leftovers.
    let before = std::fs::read(&first).unwrap();
    let (made, said) = backup_to(&url, &first).await;
    assert!(!made && said.contains("exists already"), "{said}");
    assert_eq!(std::fs::read(&first).unwrap(), before);
    let (made, said) = backup_to(&url, &dir.path().join("nowhere/backup.db")).await;
    assert!(!made && said.contains("PATH") && said.contains("no folder"), "{said}");
    let partial =
        std::fs::read_dir(dir.path()).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    assert!(!partial, "a partial copy was left behind");
}
