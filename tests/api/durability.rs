//! Durability under a crash: a real `missive` process, killed with SIGKILL in the middle of
//! a send load, loses nothing it acknowledged, and leaves counters equal to a recount.

use std::{
    collections::HashSet,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use missive::api::pb;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::helpers::{Session, spawn_app, text};

/// A free port on the loopback interface, for a child process to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `missive serve` on `database_url`, as a separate process, and a channel to it once it
/// answers.
async fn serve_in_a_process(database_url: &str) -> (Child, Channel) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the missive binary starts");
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    for _ in 0..200 {
        if let Ok(channel) = endpoint.connect().await {
            return (child, channel);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the missive process did not start listening");
}

#[tokio::test]
async fn every_acknowledged_message_survives_a_sigkill_during_a_send_load() {
    // The test's own server makes the users and verifies; the child process takes the load
    // and is killed. Both use the same database, as replicas would.
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let (mut child, channel) = serve_in_a_process(&app.database_url).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for sender in 0..8 {
        let session = Session::over(channel.clone(), if sender % 2 == 0 { &buyer.key } else { &seller.key });
        let (conversation_id, acknowledged) = (conversation.id.clone(), Arc::clone(&acknowledged));
        senders.push(tokio::spawn(async move {
            for index in 0.. {
                let request = pb::SendMessageRequest {
                    request_id: format!("load-{sender}-{index}"),
                    ..text(&conversation_id, &format!("{sender}/{index}"))
                };
                match session.send_message(request).await {
                    Ok(message) => acknowledged.lock().unwrap().push(message.id),
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once a good number of sends were acknowledged, in the middle of the load.
    for _ in 0..300 {
        if acknowledged.lock().unwrap().len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    for sender in senders {
        sender.await.unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "only {} sends were acknowledged before the kill", acknowledged.len());
    let stored = app.session(&buyer).all_messages_in(&conversation.id, 100).await.unwrap();
    let stored_ids: HashSet<&String> = stored.iter().map(|m| &m.id).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored_ids.contains(id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged messages were lost: {lost:?}", lost.len(), acknowledged.len());
    // Sequences stay gap-free and counters exact, whatever the kill cut short.
    let sequences: Vec<i64> = stored.iter().map(|m| m.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());
    app.assert_no_unread_drift().await;
}
