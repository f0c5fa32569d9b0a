//! Presence and typing: who is online (an open stream on any replica), last seen times,
//! debounced presence events to those who share a conversation, and ephemeral typing.

use std::time::Duration;

use missive::api::pb;
use tonic::{Code, Streaming};

use crate::helpers::{TestApp, TestUser, WAIT, assert_code, serve_in_a_process, spawn_app, wait_until};

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

/// The next presence change of `user` within `wait`, skipping other events.
async fn next_presence_of(stream: &mut Streaming<pb::Event>, user: &TestUser, wait: Duration) -> Option<pb::Presence> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let event = next_of(stream, pb::EventType::PresenceChanged, left).await?;
        let presence = presence_of(&event);
        if presence.user_id == user.id {
            return Some(presence);
        }
    }
}

/// The presence changes `stream` delivers before the first event `marker` picks, which must
/// come: a test that something does not arrive waits for a marker sent after it would have.
async fn presence_before(stream: &mut Streaming<pb::Event>, marker: impl Fn(&pb::Event) -> bool) -> Vec<pb::Presence> {
    let mut changes = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("the marker in time")
            .expect("a healthy stream")
            .expect("an open stream");
        if marker(&event) {
            return changes;
        }
        if event.r#type == pb::EventType::PresenceChanged as i32 {
            changes.push(presence_of(&event));
        }
    }
}

#[tokio::test]
async fn presence_follows_streams_debounced_and_only_to_those_who_share_a_conversation() {
    let app = spawn_app().await;
    let (buyer, seller, stranger) =
        (app.member("Buyer").await, app.member("Seller").await, app.member("Stranger").await);
    // Markers: a witness shares a conversation with the buyer and the seller, and another
    // with the stranger, who shares none with the seller.
    let witness = app.member("Witness").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller"), (&witness, "witness")]).await;
    let aside = app.conversation(&witness, &[(&stranger, "stranger")]).await;
    assert!(!participant(&app, &buyer, &conversation.id, &seller).await.online);

    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    let mut strangers = app.session(&stranger).subscribe_after("").await.unwrap();

    let sellers = app.session(&seller).subscribe_after("").await.unwrap();
    let online = next_presence_of(&mut buyers, &seller, Duration::from_secs(5)).await.expect("online");
    assert!(online.online);
    let shown = participant(&app, &buyer, &conversation.id, &seller).await;
    assert!(shown.online && shown.last_seen_time.is_none());

    // A connection that drops and comes back at once changes nothing.
    drop(sellers);
    wait_until("the server to see the stream close", WAIT, async || app.open_streams() == 2).await;
    let sellers = app.session(&seller).subscribe_after("").await.unwrap();
    // The marker: the witness comes and goes after that, so it goes offline (announced
    // OFFLINE_AFTER after its stream closed) after the seller would have.
    drop(app.session(&witness).subscribe_after("").await.unwrap());
    let witness_offline = |event: &pb::Event| {
        event.r#type == pb::EventType::PresenceChanged as i32
            && matches!(presence_of(event), pb::Presence { ref user_id, online: false, .. } if *user_id == witness.id)
    };
    let changes = presence_before(&mut buyers, witness_offline).await;
    assert!(changes.iter().all(|change| change.user_id != seller.id), "{changes:?}");
    assert!(participant(&app, &buyer, &conversation.id, &seller).await.online, "still online");

    drop(sellers);
    let offline = next_presence_of(&mut buyers, &seller, Duration::from_secs(8)).await.expect("offline");
    assert!(!offline.online && offline.last_seen_time.is_some());
    let shown = participant(&app, &buyer, &conversation.id, &seller).await;
    assert!(!shown.online);
    assert_eq!(shown.last_seen_time, offline.last_seen_time);

    // The stranger heard nothing of the seller: the witness's typing, told after the
    // seller's going offline, reaches it after that would have.
    app.session(&witness).typing(&aside.id, true).await.unwrap();
    let changes = presence_before(&mut strangers, |event| event.r#type == pb::EventType::Typing as i32).await;
    assert!(changes.iter().all(|change| change.user_id != seller.id), "{changes:?}");
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
