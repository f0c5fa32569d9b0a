//! Durability under crashes: a real `missive` process, killed with SIGKILL in the middle of
//! a send load three times over, loses nothing it acknowledged, and leaves sequences
//! gap-free and counters equal to a recount.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use missive::api::pb;

use crate::helpers::{Session, serve_in_a_process, spawn_app, text};

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
