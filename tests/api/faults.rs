//! Faults of the database under load: the server's PostgreSQL sessions terminated by an
//! administrator (or a failover) answer UNAVAILABLE, which clients may retry, never
//! INTERNAL; and the service recovers by itself.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use tonic::Code;

use crate::helpers::{spawn_app, text};

#[tokio::test]
async fn terminated_database_sessions_answer_unavailable_and_the_service_recovers() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return; // SQLite has no sessions to terminate.
    }
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
