//! The command line against a running server: `missive users create`, `keys list|revoke`,
//! `conversations create|list`, `send`, `messages list` and `tail`, run as a user would (the
//! real binary, `--server` and `--key`), their JSON lines parsed; and its mistakes named.

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::helpers::{TestApp, WAIT, spawn_app};

/// `missive <args>` with the server and `key`: (success, stdout lines as JSON, stderr).
async fn missive(app: &TestApp, key: &str, args: &[&str]) -> (bool, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(args)
        .args(["--server", &format!("http://{}", app.addr), "--key", key])
        .output()
        .await
        .expect("the missive binary runs");
    let lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
        .collect();
    (output.status.success(), lines, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `missive <args>` that must succeed; its JSON lines.
async fn ok(app: &TestApp, key: &str, args: &[&str]) -> Vec<Value> {
    let (success, lines, stderr) = missive(app, key, args).await;
    assert!(success, "missive {args:?} failed: {stderr}");
    lines
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("no {field} in {value}")).to_owned()
}

#[tokio::test]
async fn an_operator_creates_users_sends_lists_and_revokes_from_the_command_line() {
    let app = spawn_app().await;
    let admin_key = app.admin.key.clone();
    let created = ok(&app, &admin_key, &["users", "create", "--display-name", "Buyer", "--with-key", "phone"]).await;
    let (buyer_id, buyer_key) = (text(&created[0], "id"), text(&created[1], "key"));
    assert_eq!(text(&created[0], "role"), "ROLE_MEMBER");
    let seller = app.member("seller").await;
    let buyer = crate::helpers::TestUser { id: buyer_id.clone(), key: buyer_key.clone() };
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;

    let sent = ok(&app, &buyer_key, &["send", &conversation.id, "Is it still available?"]).await;
    assert_eq!(
        (text(&sent[0], "senderId"), text(&sent[0], "content")),
        (buyer_id.clone(), "Is it still available?".into())
    );
    let listed = ok(&app, &buyer_key, &["messages", "list", &conversation.id]).await;
    assert_eq!(listed.iter().map(|m| text(m, "content")).collect::<Vec<_>>(), ["Is it still available?"]);
    let conversations = ok(&app, &buyer_key, &["conversations", "list"]).await;
    assert_eq!(conversations.iter().map(|c| text(c, "id")).collect::<Vec<_>>(), [conversation.id.as_str()]);

    let keys = ok(&app, &admin_key, &["keys", "list", "--user", &buyer_id]).await;
    assert_eq!(keys.len(), 1);
    let revoked = ok(&app, &admin_key, &["keys", "revoke", &text(&keys[0], "id")]).await;
    assert!(revoked[0]["revokeTime"].is_string(), "{}", revoked[0]);
    let (success, _, stderr) = missive(&app, &buyer_key, &["conversations", "list"]).await;
    assert!(!success && stderr.contains("Unauthenticated"), "a revoked key is refused: {stderr}");
    let (success, _, stderr) = missive(&app, &admin_key, &["send", "conv_nope", "x"]).await;
    assert!(!success && stderr.contains("InvalidArgument: conversation_id"), "{stderr}");
}

#[tokio::test]
async fn a_conversation_created_from_the_command_line_takes_messages_sent_from_it() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let created = ok(
        &app,
        &buyer.key,
        &[
            "conversations",
            "create",
            "--participant",
            &format!("{}=seller", seller.id),
            "--caller-label",
            "buyer",
            "--subject-kind",
            "listing",
            "--subject-id",
            "L-1042",
            "--subject-title",
            "2021 Volvo FH 500",
        ],
    )
    .await;
    assert_eq!(created.len(), 1, "one line: what the server answered");
    let conversation = &created[0]["conversation"];
    let conversation_id = text(conversation, "id");
    let subject = &conversation["subject"];
    assert_eq!(
        [text(subject, "kind"), text(subject, "externalId"), text(subject, "title")],
        ["listing", "L-1042", "2021 Volvo FH 500"]
    );
    let mut labels: Vec<(String, String)> = conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|participant| (text(participant, "userId"), text(participant, "label")))
        .collect();
    labels.sort();
    let mut expected = [(buyer.id.clone(), "buyer".to_owned()), (seller.id.clone(), "seller".to_owned())];
    expected.sort();
    assert_eq!(labels, expected);

    ok(&app, &buyer.key, &["send", &conversation_id, "Is it still available?"]).await;
    let listed = ok(&app, &seller.key, &["messages", "list", &conversation_id]).await;
    assert_eq!(listed.iter().map(|m| text(m, "content")).collect::<Vec<_>>(), ["Is it still available?"]);

    let (success, _, stderr) = missive(&app, &buyer.key, &["conversations", "create", "--participant", "bogus"]).await;
    assert!(!success && stderr.contains("InvalidArgument: participants[0].user_id"), "{stderr}");
}

#[tokio::test]
async fn tail_prints_one_line_per_event_and_resumes_from_a_cursor() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut tail = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["tail", "--server", &format!("http://{}", app.addr), "--key", &seller.key, "--heartbeats"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| -> Value {
        // The seller's notifications and the buyer's presence come between: not this test's.
        loop {
            let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("a line in time").unwrap().unwrap();
            let event: Value = serde_json::from_str(&line).unwrap();
            if !matches!(event["type"].as_str(), Some("EVENT_TYPE_NOTIFICATION" | "EVENT_TYPE_PRESENCE_CHANGED")) {
                return event;
            }
        }
    };
    // The first line is the stream's position: from then on, nothing is missed.
    assert_eq!(text(&next(&mut lines).await, "type"), "EVENT_TYPE_HEARTBEAT");
    app.send(&buyer, &conversation.id, "first").await;
    app.send(&buyer, &conversation.id, "second").await;
    let first = next(&mut lines).await;
    let second = next(&mut lines).await;
    assert_eq!(text(&first, "type"), "EVENT_TYPE_MESSAGE_CREATED");
    assert_eq!(text(&first["message"], "content"), "first");
    assert_eq!(text(&second["message"], "content"), "second");
    drop(tail);

    let mut resumed = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args([
            "tail",
            "--server",
            &format!("http://{}", app.addr),
            "--key",
            &seller.key,
            "--after",
            &text(&first, "cursor"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(resumed.stdout.take().unwrap()).lines();
    let replayed = next(&mut lines).await;
    assert_eq!(
        (text(&replayed, "cursor"), text(&replayed["message"], "content")),
        (text(&second, "cursor"), "second".into())
    );
}

#[tokio::test]
async fn tail_says_where_to_resume_when_the_server_ends_the_stream() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let tail = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["tail", "--server", &format!("http://{}", app.addr), "--key", &member.key, "--heartbeats"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Its first line: the stream is open.
    let mut stdout = BufReader::new(tail.stdout.unwrap()).lines();
    let heartbeat = tokio::time::timeout(WAIT, stdout.next_line()).await.unwrap().unwrap().unwrap();
    let cursor = text(&serde_json::from_str(&heartbeat).unwrap(), "cursor");

    app.shutdown().await;

    let mut stderr = String::new();
    let mut errors = BufReader::new(tail.stderr.unwrap());
    tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read_to_string(&mut errors, &mut stderr))
        .await
        .unwrap()
        .unwrap();
    assert!(stderr.contains(&format!("resume with --after \"{cursor}\"")), "{stderr}");
}

#[tokio::test]
async fn connection_mistakes_are_named() {
    let cases = [
        (vec!["conversations", "list", "--server", "127.0.0.1:1", "--key", "k"], "needs its scheme"),
        (vec!["conversations", "list", "--server", "http://127.0.0.1:1", "--key", " "], "no key"),
        (vec!["conversations", "list", "--server", "http://127.0.0.1:1"], "no key: pass --key or set MISSIVE_KEY"),
        (
            vec!["conversations", "list", "--server", "http://127.0.0.1:1", "--key", "k"],
            "cannot reach http://127.0.0.1:1: ",
        ),
        (
            vec!["conversations", "list", "--server", "http://127.0.0.1:1", "--key", "k", "--ca-cert", "ca.pem"],
            "--ca-cert is for https://",
        ),
    ];
    for (args, said) in cases {
        let output =
            Command::new(env!("CARGO_BIN_EXE_missive")).args(&args).env_remove("MISSIVE_KEY").output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(said), "{args:?}: {stderr}");
        // Each cause once ("tcp connect error: tcp connect error: …" was twice).
        let causes: Vec<&str> = stderr.trim_end().split(": ").collect();
        assert!(causes.windows(2).all(|pair| pair[0] != pair[1]), "{args:?}: a cause repeats: {stderr}");
    }
}
