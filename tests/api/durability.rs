//! Durability under a crash: a real `missive` process, killed with SIGKILL in the middle of
//! a send load, loses nothing it acknowledged, and leaves counters equal to a recount.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use missive::api::pb;

use crate::helpers::{Session, serve_in_a_process, spawn_app, text};

#[tokio::test]
async fn every_acknowledged_message_survives_a_sigkill_during_a_send_load() {
    // The test's own server makes the users and verifies; the child process takes the load
    // and is killed. Both use the same database, as replicas would.
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let (mut child, channel) = serve_in_a_process(&app.database_url, &[]).await;

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
