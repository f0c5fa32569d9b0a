//! Statement budgets: how many statements an operation sends to the database, counted, not
//! timed, so that they hold on any machine and a change that quietly adds round trips (a
//! query per item, a re-read of what a unit just wrote, a timer per stream) fails here.
//!
//! The operations run against a second server *process* on the test's database, started
//! with its statement log (`missive::sql`) written to a file of its own, so that nothing
//! else this test binary runs meanwhile is counted; its background jobs are set far apart,
//! so that what is counted is the operation's.

use std::{path::Path, process::Stdio, time::Duration};

use missive::api::pb;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::helpers::{Session, TestApp, TestUser, assert_invalid, spawn_app, text};

/// A server process whose statements are counted.
struct Counted {
    _process: Child,
    log: tempfile::NamedTempFile,
    channel: Channel,
}

impl Counted {
    /// The `missive` binary on `app`'s database, logging its statements.
    async fn start(app: &TestApp) -> Counted {
        Self::start_with(app, &[]).await
    }

    /// [`Counted::start`] with `flags` besides.
    async fn start_with(app: &TestApp, flags: &[&str]) -> Counted {
        let log = tempfile::NamedTempFile::new().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let far_apart = "1h";
        let process = Command::new(env!("CARGO_BIN_EXE_missive"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", &app.database_url])
            .args(["--schedule-interval", far_apart, "--event-prune-interval", far_apart])
            .args(["--health-check-interval", far_apart, "--event-poll-interval", far_apart])
            .args(["--calls-per-second", "100000", "--call-burst", "100000"])
            .args(flags)
            .env("RUST_LOG", "warn,missive::sql=trace")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .kill_on_drop(true)
            .spawn()
            .expect("the missive binary starts");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
                let counted = Counted { _process: process, log, channel };
                // Up once it answers a call that reads the database.
                if counted.session(&app.admin).get_unread_count().await.is_ok() {
                    return counted;
                }
                panic!("the counted server does not answer");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the counted server did not start");
    }

    fn session(&self, user: &TestUser) -> Session {
        Session::over(self.channel.clone(), &user.key)
    }

    /// The statements logged so far.
    fn statements(&self) -> Vec<String> {
        statements_in(self.log.path())
    }

    /// The statements `operation` ran (after a moment for any stragglers to be logged).
    async fn during<T>(&self, operation: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
        let before = self.statements().len();
        let value = operation.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        (value, self.statements().split_off(before))
    }
}

fn statements_in(path: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    log.lines().filter(|line| line.contains("missive::sql")).map(str::to_owned).collect()
}

/// Each list page and the unread count run the same number of statements whatever the
/// data's size: nothing per item on the page, nothing per conversation of the caller.
#[tokio::test]
async fn every_page_runs_a_fixed_number_of_statements_whatever_the_datas_size() {
    let app = spawn_app().await;
    let (member, other, agent) = (app.member("member").await, app.member("other").await, app.agent("agent").await);
    let mut conversations = Vec::new();
    let mut counts = Vec::new();
    for size in [2, 12] {
        while conversations.len() < size {
            let conversation = app.conversation(&member, &[(&other, "seller"), (&agent, "support")]).await;
            for n in 0..3 {
                app.send(&other, &conversation.id, &format!("message {n}")).await;
            }
            conversations.push(conversation);
        }
        let counted = Counted::start(&app).await;
        let (as_member, as_agent) = (counted.session(&member), counted.session(&agent));
        let first = conversations[0].id.clone();
        let page = |page_size| pb::ListConversationsRequest { page_size, ..Default::default() };
        let messages = pb::ListMessagesRequest { conversation_id: first.clone(), ..Default::default() };
        let (_, inbox) = counted.during(as_member.list_conversations(page(50))).await;
        let (_, staff_inbox) = counted.during(as_agent.list_conversations(page(50))).await;
        let (_, small_page) = counted.during(as_agent.list_conversations(page(1))).await;
        let (_, listed) = counted.during(as_member.list_messages(messages)).await;
        let (_, unread) = counted.during(as_member.get_unread_count()).await;
        counts.push([inbox.len(), staff_inbox.len(), small_page.len(), listed.len(), unread.len()]);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements of [inbox, staff inbox, one-item page, messages, unread] at 2 and 12 conversations"
    );
    let [inbox, staff_inbox, _, listed, unread] = counts[1];
    assert!(inbox <= 12 && staff_inbox <= 12 && listed <= 6, "{:?}", counts[1]);
    assert_eq!(unread, 1, "the unread count is one read");
}

/// `depth` reads each kind of related object once for the page (seed 003's levels): a
/// page of 2 messages and one of 20 run the same statements, at every depth; and each
/// depth shows what it promises.
#[tokio::test]
async fn a_deep_page_of_messages_runs_the_statements_of_a_small_one() {
    let app = spawn_app().await;
    let (member, other, agent) = (app.member("member").await, app.member("other").await, app.agent("agent").await);
    let conversation = app.conversation(&member, &[(&other, "seller"), (&agent, "support")]).await;
    for n in 0..20 {
        let sender = [&member, &other, &agent][n % 3];
        app.send(sender, &conversation.id, &format!("message {n}")).await;
    }
    let counted = Counted::start(&app).await;
    let as_member = counted.session(&member);
    let page = |depth, page_size| pb::ListMessagesRequest {
        conversation_id: conversation.id.clone(),
        page_size,
        depth: Some(depth),
        ..Default::default()
    };
    as_member.list_messages(page(0, 1)).await.unwrap(); // the key, read once and cached
    let mut statements = Vec::new();
    for depth in 0..=2 {
        let (small, small_statements) = counted.during(as_member.list_messages(page(depth, 2))).await;
        let (large, large_statements) = counted.during(as_member.list_messages(page(depth, 20))).await;
        let (small, large) = (small.unwrap(), large.unwrap());
        assert_eq!((small.messages.len(), large.messages.len()), (2, 20));
        assert_eq!(small_statements.len(), large_statements.len(), "depth {depth}: 2 messages and 20");
        statements.push(large_statements.len());
        for message in &large.messages {
            let participants = message.conversation.as_ref().map(|c| c.participants.clone()).unwrap_or_default();
            match depth {
                0 => assert!(message.sender.is_none() && message.conversation.is_none()),
                1 => {
                    assert_eq!(message.sender.as_ref().map(|u| u.id.as_str()), Some(message.sender_id.as_str()));
                    assert!(participants.len() == 3 && participants.iter().all(|p| p.user.is_none()));
                }
                _ => {
                    assert!(message.sender.is_some());
                    assert!(participants.len() == 3 && participants.iter().all(|p| p.user.is_some()));
                    let subject = message.conversation.as_ref().and_then(|c| c.subject.as_ref());
                    assert_eq!(subject, conversation.subject.as_ref());
                }
            }
        }
    }
    // Depth 1 reads the senders, and the conversation with its newest message and the
    // participants' presence; depth 2 the participants' users: a few reads for the page.
    assert!(statements[1] <= statements[0] + 6 && statements[2] == statements[1] + 1, "{statements:?}");
    assert_invalid(as_member.list_messages(page(3, 2)).await, "depth");
    assert_invalid(as_member.list_messages(page(-1, 2)).await, "depth");
    let both = pb::ListMessagesRequest { view: pb::View::Full as i32, ..page(1, 2) };
    assert_invalid(as_member.list_messages(both).await, "depth");
}

/// A text message sent into a conversation of three, with a request id: a fixed, small
/// number of statements (the send path's budget), whoever takes part.
#[tokio::test]
async fn a_send_runs_within_its_statement_budget() {
    let app = spawn_app().await;
    let (buyer, seller, agent) = (app.member("buyer").await, app.member("seller").await, app.agent("agent").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller"), (&agent, "support")]).await;
    let counted = Counted::start(&app).await;
    let as_buyer = counted.session(&buyer);
    as_buyer.send_message(text(&conversation.id, "warm-up")).await.unwrap();
    let mut request = text(&conversation.id, "counted");
    request.request_id = "counted-send".into();
    let (sent, mut statements) = counted.during(as_buyer.send_message(request)).await;
    sent.unwrap();
    // Other replicas hear of new events by one NOTIFY per account after commit, coalesced
    // over every unit of the last few milliseconds: not a send's own.
    statements.retain(|sql| !sql.contains("pg_notify"));
    let budget = if app.database_url.starts_with("postgres") { SEND_ON_POSTGRES } else { SEND_ON_SQLITE };
    assert!(statements.len() <= budget, "{} statements, budget {budget}:\n{}", statements.len(), statements.join("\n"));
}

/// Statements a send may run on PostgreSQL (each a round trip).
const SEND_ON_POSTGRES: usize = 12;
/// On SQLite, where a statement is a function call, not a round trip.
const SEND_ON_SQLITE: usize = 10;

/// Opening a stream runs a handful of statements whatever else is open, and open streams
/// left idle run none each: over two heartbeat intervals the server's statements are the
/// same few per account and replica (the key refresh, presence), not one per stream.
#[tokio::test]
async fn streams_open_in_a_few_statements_and_idle_ones_run_none_each() {
    let app = spawn_app().await;
    let host = app.member("host").await;
    let mut users = Vec::new();
    for n in 0..10 {
        let user = app.member(&format!("member {n}")).await;
        app.conversation(&host, &[(&user, "guest")]).await;
        users.push(user);
    }
    let counted = Counted::start_with(&app, &["--heartbeat-interval", "1s"]).await;
    for user in &users {
        // Each key is looked up once by its first call, as a client's first call does.
        counted.session(user).get_unread_count().await.unwrap();
    }
    let (streams, opening) = counted
        .during(async {
            let mut streams = Vec::new();
            for user in users.iter().chain(&users).chain(&users) {
                let mut stream = counted.session(user).subscribe_after("").await.unwrap();
                stream.message().await.unwrap().expect("a first heartbeat");
                streams.push(stream);
            }
            streams
        })
        .await;
    let per_stream = opening.len() as f64 / streams.len() as f64;
    assert!(per_stream <= OPENING, "{per_stream} statements per stream opened:\n{}", opening.join("\n"));

    let (_, idle) = counted.during(tokio::time::sleep(Duration::from_millis(2500))).await;
    assert!(
        idle.len() < IDLE,
        "{} statements while {} streams idled over two heartbeats:\n{}",
        idle.len(),
        streams.len(),
        idle.join("\n")
    );
    drop(streams);
}

/// Statements per stream opened (live, its key cached).
const OPENING: f64 = 5.0;
/// Statements of a whole server over 2.5 s of idle streams: its jobs', per account.
const IDLE: usize = 8;
