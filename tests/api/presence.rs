//! Presence and typing: who is online (an open stream on any replica), last seen times,
//! debounced presence events to those who share a conversation, and ephemeral typing.

use std::time::Duration;

use missive::api::pb;
use tonic::{Code, Streaming};

use crate::helpers::{TestApp, TestUser, assert_code, serve_in_a_process, spawn_app};

/// The next event of `kind` within `wait`, skipping others (heartbeats, notifications).
async fn next_of(stream: &mut Streaming<pb::Event>, kind: pb::EventType, wait: Duration) -> Option<pb::Event> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, stream.message()).await {
            Ok(Ok(Some(event))) if event.r#type == kind as i32 => return Some(event),
            Ok(Ok(Some(_))) => continue,
            _ => return None,
        }
    }
}

fn presence_of(event: &pb::Event) -> pb::Presence {
    match &event.payload {
        Some(pb::event::Payload::Presence(presence)) => presence.clone(),
        other => panic!("not a presence change: {other:?}"),
    }
}

async fn participant(app: &TestApp, viewer: &TestUser, conversation_id: &str, user: &TestUser) -> pb::Participant {
    let conversation = app.session(viewer).get_conversation(conversation_id).await.unwrap();
    conversation.participants.into_iter().find(|p| p.user_id == user.id).unwrap()
}

#[tokio::test]
async fn presence_follows_streams_debounced_and_only_to_those_who_share_a_conversation() {
    let app = spawn_app().await;
    let (buyer, seller, stranger) =
        (app.member("Buyer").await, app.member("Seller").await, app.member("Stranger").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    assert!(!participant(&app, &buyer, &conversation.id, &seller).await.online);

    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    let mut strangers = app.session(&stranger).subscribe_after("").await.unwrap();

    let sellers = app.session(&seller).subscribe_after("").await.unwrap();
    let online = next_of(&mut buyers, pb::EventType::PresenceChanged, Duration::from_secs(5)).await.expect("online");
    let online = presence_of(&online);
    assert_eq!((online.user_id.as_str(), online.online), (seller.id.as_str(), true));
    let shown = participant(&app, &buyer, &conversation.id, &seller).await;
    assert!(shown.online && shown.last_seen_time.is_none());

    // A connection that drops and comes back at once changes nothing.
    drop(sellers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sellers = app.session(&seller).subscribe_after("").await.unwrap();
    assert!(next_of(&mut buyers, pb::EventType::PresenceChanged, Duration::from_secs(4)).await.is_none());

    drop(sellers);
    let offline = next_of(&mut buyers, pb::EventType::PresenceChanged, Duration::from_secs(8)).await.expect("offline");
    let offline = presence_of(&offline);
    assert!(!offline.online && offline.last_seen_time.is_some());
    let shown = participant(&app, &buyer, &conversation.id, &seller).await;
    assert!(!shown.online);
    assert_eq!(shown.last_seen_time, offline.last_seen_time);

    assert!(next_of(&mut strangers, pb::EventType::PresenceChanged, Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn typing_reaches_the_other_participants_live_only_and_is_rate_limited() {
    let app = spawn_app().await;
    let (buyer, seller, stranger) =
        (app.member("Buyer").await, app.member("Seller").await, app.member("Stranger").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut sellers = app.session(&seller).subscribe_after("").await.unwrap();
    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    let mut strangers = app.session(&stranger).subscribe_after("").await.unwrap();

    app.session(&buyer).typing(&conversation.id, true).await.unwrap();
    let typing = next_of(&mut sellers, pb::EventType::Typing, Duration::from_secs(5)).await.expect("typing");
    assert_eq!(
        (typing.actor_id.as_str(), typing.conversation_id.as_str()),
        (buyer.id.as_str(), conversation.id.as_str())
    );
    let Some(pb::event::Payload::Typing(signal)) = &typing.payload else { panic!("{typing:?}") };
    assert!(signal.typing);
    assert!(next_of(&mut buyers, pb::EventType::Typing, Duration::from_millis(300)).await.is_none(), "not one's own");
    assert!(next_of(&mut strangers, pb::EventType::Typing, Duration::from_millis(100)).await.is_none());

    // Never in the log: resuming from before it replays no typing.
    let mut replay = app.session(&seller).subscribe_after("0").await.unwrap();
    assert!(next_of(&mut replay, pb::EventType::Typing, Duration::from_millis(300)).await.is_none());
    // Its cursor is a safe place to resume from.
    app.session(&seller).subscribe_after(&typing.cursor).await.unwrap();

    assert_code(app.session(&stranger).typing(&conversation.id, true).await, Code::NotFound);
    let agent = app.agent("Agent").await;
    assert_code(app.session(&agent).typing(&conversation.id, true).await, Code::FailedPrecondition);
    let mut refused = None;
    for _ in 0..20 {
        if let Err(status) = app.session(&seller).typing(&conversation.id, true).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("20 indicators at once are more than the allowance");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
}

#[tokio::test]
async fn presence_and_typing_cross_replicas() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("Buyer").await, app.member("Seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let (_process, channel) = serve_in_a_process(&app.database_url, &[]).await;
    let other_replica = crate::helpers::Session::over(channel, &seller.key);

    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    let sellers = other_replica.subscribe_after("").await.unwrap();
    let postgres = app.database_url.starts_with("postgres");
    if postgres {
        let online = next_of(&mut buyers, pb::EventType::PresenceChanged, Duration::from_secs(5)).await;
        assert!(presence_of(&online.expect("told across replicas")).online);
    }
    // Whatever the database, every replica reads the same presence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !participant(&app, &buyer, &conversation.id, &seller).await.online {
        assert!(tokio::time::Instant::now() < deadline, "the seller's stream on the other replica counts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if postgres {
        other_replica.typing(&conversation.id, true).await.unwrap();
        assert!(next_of(&mut buyers, pb::EventType::Typing, Duration::from_secs(5)).await.is_some());
    } else {
        eprintln!("signals cross processes through PostgreSQL: events checked on PostgreSQL only");
    }
    drop(sellers);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while participant(&app, &buyer, &conversation.id, &seller).await.online {
        assert!(tokio::time::Instant::now() < deadline, "offline once its last stream closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
