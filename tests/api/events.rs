//! Subscribe: replay from a cursor then live, no gap, no duplicate, in order, filtered to
//! what the caller may see.

use std::{collections::HashSet, time::Duration};

use missive::api::pb;
use tonic::{Code, Streaming};

use crate::helpers::{
    Session, TestApp, TestUser, WAIT, assert_code, assert_invalid, next_events, next_of_type, note, spawn_app,
    spawn_app_on, spawn_app_with, sqlite_file, text, wait_until,
};

async fn subscribe(app: &TestApp, user: &TestUser, after: &str) -> Streaming<pb::Event> {
    app.session(user).subscribe_after(after).await.expect("subscribe")
}

/// The id of `user`'s (only) API key, as its admin lists it.
async fn key_of(app: &TestApp, user: &TestUser) -> String {
    let listed = app
        .as_admin()
        .list_api_keys(pb::ListApiKeysRequest { user_id: user.id.clone(), ..Default::default() })
        .await
        .unwrap();
    listed.api_keys[0].id.clone()
}

/// Reads `stream` until it ends, which must be UNAUTHENTICATED with nothing but heartbeats
/// before it (`when` says which attempt, for the message).
async fn ends_unauthenticated(stream: &mut Streaming<pb::Event>, when: &str) {
    let status = loop {
        match tokio::time::timeout(WAIT, stream.message()).await.expect("the stream ends in time") {
            Ok(Some(event)) if event.r#type == pb::EventType::Heartbeat as i32 => {}
            Ok(Some(event)) => panic!("{when} delivered after the revoke: {event:?}"),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{when}");
}

fn types(events: &[pb::Event]) -> Vec<pb::EventType> {
    events.iter().map(|e| pb::EventType::try_from(e.r#type).unwrap()).collect()
}

/// The events' cursors, which must all differ.
fn cursors(events: &[pb::Event]) -> Vec<String> {
    let cursors: Vec<String> = events.iter().map(|e| e.cursor.clone()).collect();
    assert_eq!(cursors.iter().collect::<HashSet<_>>().len(), cursors.len(), "one cursor per event: {cursors:?}");
    cursors
}

fn message_content(event: &pb::Event) -> String {
    match &event.payload {
        Some(pb::event::Payload::Message(message)) => message.content.clone(),
        other => panic!("not a message event: {other:?}"),
    }
}

#[tokio::test]
async fn a_live_stream_starts_with_its_cursor_then_delivers_changes() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let mut stream = subscribe(&app, &seller, "").await;
    let first = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.r#type, pb::EventType::Heartbeat as i32);

    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let sent = app.send(&buyer, &conversation.id, "hello").await;
    app.session(&seller).mark_all_read(&conversation.id).await.unwrap();

    let events = next_events(&mut stream, 3).await;
    assert_eq!(
        types(&events),
        vec![pb::EventType::ConversationCreated, pb::EventType::MessageCreated, pb::EventType::MessagesRead]
    );
    assert!(!cursors(&events).contains(&first.cursor));
    assert_eq!(events[1].actor_id, buyer.id);
    assert_eq!(events[1].conversation_id, conversation.id);
    assert_eq!(message_content(&events[1]), "hello");
    let Some(pb::event::Payload::MessagesRead(read)) = &events[2].payload else { panic!("{:?}", events[2]) };
    assert_eq!(
        (read.user_id.clone(), read.message_ids.clone(), read.unread_count),
        (seller.id.clone(), vec![sent.id], 0)
    );
}

#[tokio::test]
async fn resuming_from_the_last_cursor_delivers_exactly_what_was_missed() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut stream = subscribe(&app, &seller, "0").await;
    let seen = next_events(&mut stream, 1).await;
    let cursor = seen[0].cursor.clone();
    drop(stream);

    let mut missed = Vec::new();
    for index in 0..12 {
        missed.push(app.send(&buyer, &conversation.id, &format!("while away {index}")).await.id);
    }
    app.session(&seller).mark_read(&conversation.id, &missed[..3]).await.unwrap();

    let mut resumed = subscribe(&app, &seller, &cursor).await;
    let events = next_events(&mut resumed, 13).await;
    let contents: Vec<String> = events[..12].iter().map(message_content).collect();
    assert_eq!(contents, (0..12).map(|i| format!("while away {i}")).collect::<Vec<_>>());
    assert_eq!(types(&events[12..]), vec![pb::EventType::MessagesRead]);
    let positions = cursors(&events);
    assert!(!positions.contains(&cursor));
    // Each cursor resumes right after its own event.
    let mut from_middle = subscribe(&app, &seller, &positions[5]).await;
    let rest = next_events(&mut from_middle, 7).await;
    assert_eq!(cursors(&rest), positions[6..]);

    // And then live, with no duplicate at the hand-over.
    app.send(&buyer, &conversation.id, "live").await;
    let live = next_events(&mut resumed, 1).await;
    assert_eq!(message_content(&live[0]), "live");
    assert!(!positions.contains(&cursors(&live)[0]), "a new event, not one replayed");
}

#[tokio::test]
async fn concurrent_senders_are_delivered_once_each_in_one_order() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let mut members = Vec::new();
    for index in 0..4 {
        members.push(app.member(&format!("m{index}")).await);
    }
    let mut conversations = Vec::new();
    for member in &members {
        conversations.push(app.conversation(member, &[(&agent, "agent")]).await.id);
    }
    let mut stream = subscribe(&app, &agent, "0").await;
    let created = next_events(&mut stream, 4).await;
    assert_eq!(types(&created), vec![pb::EventType::ConversationCreated; 4]);

    let per_sender = 15;
    let mut tasks = Vec::new();
    for (member, conversation_id) in members.iter().zip(&conversations) {
        let (session, member, conversation_id) = (app.session(member), member.clone(), conversation_id.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0..per_sender {
                session.send_message(text(&conversation_id, &format!("{} {index}", member.id))).await.unwrap();
            }
        }));
    }

    let events = next_events(&mut stream, members.len() * per_sender).await;
    for task in tasks {
        task.await.unwrap();
    }
    let positions = cursors(&events);
    // A replay gives the same events in the same order as the live stream did.
    let mut replay = subscribe(&app, &agent, &created[3].cursor).await;
    assert_eq!(cursors(&next_events(&mut replay, events.len()).await), positions);
    let contents: HashSet<String> = events.iter().map(message_content).collect();
    assert_eq!(contents.len(), members.len() * per_sender, "every message exactly once");
    for member in &members {
        let own: Vec<String> = events.iter().map(message_content).filter(|c| c.starts_with(&member.id)).collect();
        assert_eq!(
            own,
            (0..per_sender).map(|i| format!("{} {i}", member.id)).collect::<Vec<_>>(),
            "each sender's order kept"
        );
    }
}

#[tokio::test]
async fn a_member_sees_only_its_conversations_and_never_a_private_note() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let other_customer = app.member("other customer").await;
    let agent = app.agent("agent").await;
    let supervisor = app.agent("supervisor").await;
    let mine =
        app.conversation(&agent, &[(&customer, "customer"), (&agent, "agent"), (&supervisor, "supervisor")]).await;
    let theirs = app.conversation(&agent, &[(&other_customer, "customer"), (&agent, "agent")]).await;
    app.send(&agent, &theirs.id, "not for you").await;
    let as_agent = app.session(&agent);
    let note = as_agent.send_message(note(&mine.id, "internal note")).await.unwrap();
    // The supervisor reads the note: that the note was read is staff's business too.
    app.session(&supervisor).mark_all_read(&mine.id).await.unwrap();
    as_agent.delete_message(&note.id).await.unwrap();
    as_agent.archive_conversation(&mine.id).await.unwrap();
    app.send(&agent, &mine.id, "for you").await;

    let mut stream = subscribe(&app, &customer, "0").await;
    let events = next_events(&mut stream, 2).await;
    assert_eq!(types(&events), vec![pb::EventType::ConversationCreated, pb::EventType::MessageCreated]);
    assert!(events.iter().all(|e| e.conversation_id == mine.id));
    assert_eq!(message_content(&events[1]), "for you");
    // Nothing else is pending: the next thing is a heartbeat-free silence, proven by a
    // marker event arriving next.
    app.send(&agent, &mine.id, "marker").await;
    assert_eq!(message_content(&next_events(&mut stream, 1).await[0]), "marker");

    let mut staff_stream = subscribe(&app, &agent, "0").await;
    let staff_events = next_events(&mut staff_stream, 9).await;
    assert_eq!(
        types(&staff_events),
        vec![
            pb::EventType::ConversationCreated,
            pb::EventType::ConversationCreated,
            pb::EventType::MessageCreated,
            pb::EventType::MessageCreated,
            pb::EventType::MessagesRead,
            pb::EventType::MessageDeleted,
            pb::EventType::ConversationArchived,
            pb::EventType::MessageCreated,
            pb::EventType::MessageCreated,
        ]
    );
}

#[tokio::test]
async fn accounts_never_see_each_others_events() {
    let app = spawn_app().await;
    let other_account = app.create_account("other").await;
    let other_admin = app.bootstrap_user(&other_account, pb::Role::Admin, "other admin").await;
    let member = app.member("member").await;
    let my_conversation = app.conversation(&app.admin, &[(&member, "member")]).await;

    let mut mine = subscribe(&app, &app.admin, "0").await;
    let mut theirs = subscribe(&app, &other_admin, "0").await;
    let my_first = next_events(&mut mine, 1).await;
    assert_eq!(types(&my_first), vec![pb::EventType::ConversationCreated]);
    assert_eq!(my_first[0].conversation_id, my_conversation.id);

    // The other account writes; then each account writes a marker after the other's writes.
    let other_member = app.bootstrap_user(&other_account, pb::Role::Member, "other member").await;
    let their_conversation = app.conversation(&other_admin, &[(&other_member, "member")]).await;
    app.send(&other_admin, &their_conversation.id, "theirs").await;
    app.send(&member, &my_conversation.id, "my marker").await;
    app.send(&other_admin, &their_conversation.id, "their marker").await;

    // Each stream delivers in cursor order, so anything foreign written before a marker
    // would arrive before it: the next events up to the marker are exactly our own.
    let my_next = next_events(&mut mine, 1).await;
    assert_eq!(types(&my_next), vec![pb::EventType::MessageCreated]);
    assert_eq!(
        (my_next[0].conversation_id.as_str(), message_content(&my_next[0]).as_str()),
        (my_conversation.id.as_str(), "my marker"),
        "nothing of the other account came before my marker"
    );
    let their_events = next_events(&mut theirs, 3).await;
    assert_eq!(
        types(&their_events),
        vec![pb::EventType::ConversationCreated, pb::EventType::MessageCreated, pb::EventType::MessageCreated],
        "nothing of my account came before their marker, not even from the replay"
    );
    assert!(their_events.iter().all(|e| e.conversation_id == their_conversation.id), "{their_events:?}");
    assert_eq!(
        their_events[1..].iter().map(message_content).collect::<Vec<_>>(),
        vec!["theirs".to_string(), "their marker".to_string()]
    );
}

#[tokio::test]
async fn filters_select_event_types_and_conversations() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let first = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let second = app.conversation(&buyer, &[(&seller, "seller")]).await;
    app.send(&buyer, &first.id, "in first").await;
    app.send(&buyer, &second.id, "in second").await;

    let mut stream = app
        .session(&seller)
        .subscribe(pb::SubscribeRequest {
            after: "0".into(),
            types: vec![pb::EventType::MessageCreated as i32],
            conversation_ids: vec![second.id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();

    let events = next_events(&mut stream, 1).await;
    assert_eq!(message_content(&events[0]), "in second");
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats_with_a_resumable_cursor() {
    let app = spawn_app_with(|config| config.heartbeat_interval = Duration::from_millis(200)).await;
    let member = app.member("member").await;
    let other = app.member("other").await;
    let conversation = app.conversation(&other, &[(&member, "buyer")]).await;
    let mut stream = subscribe(&app, &member, "0").await;
    // The conversation's creation, then the member's notification of it.
    next_events(&mut stream, 1).await;
    next_of_type(&mut stream, pb::EventType::Notification, 1).await;

    let heartbeat = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(heartbeat.r#type, pb::EventType::Heartbeat as i32);
    let second = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(second.r#type, pb::EventType::Heartbeat as i32);

    app.send(&other, &conversation.id, "after the heartbeat").await;
    let mut resumed = subscribe(&app, &member, &heartbeat.cursor).await;
    assert_eq!(message_content(&next_events(&mut resumed, 1).await[0]), "after the heartbeat");
}

#[tokio::test]
async fn a_stalled_subscriber_neither_slows_senders_nor_grows_the_server_buffer() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    // Subscribes over a connection with HTTP/2's default 64 KiB windows (tonic's are 2 MiB
    // and 5 MiB, which would let the client buffer the whole burst), takes the first event,
    // and then reads nothing while a burst goes by.
    let small_windows = tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stalled = Session::over(small_windows, &seller.key).subscribe_after("0").await.unwrap();
    next_events(&mut stalled, 1).await;
    let big = "x".repeat(4_000);
    let burst = 500;

    // Were a send to wait for the stalled subscriber it would wait for ever: each must
    // finish on its own.
    for index in 0..burst {
        tokio::time::timeout(WAIT, app.send(&buyer, &conversation.id, &format!("{index} {big}")))
            .await
            .unwrap_or_else(|_| panic!("send {index} waited on a subscriber that reads nothing"));
    }
    // The stream fills what it can, the HTTP/2 window and then its queue, and stops there:
    // with its queue full its task waits, and hands over nothing more while the client
    // reads nothing. (Were the stream to pull the whole burst, its queue would never fill.)
    let capacity = app.stream_queue_capacity();
    wait_until("the stalled stream's queue to fill", WAIT, async || app.peak_stream_queue() == capacity).await;

    // The server pulled from the log only what fits in the stalled stream's queue and the
    // connection's flow-control window, not the burst: the rest waits in the database. At
    // most the queue, what the client's 64 KiB window takes (16 of these events), and as
    // much again as the queue for what HTTP/2 buffers and what came before the burst (65
    // in all here).
    let handed_over = app.events_queued_for_streams() as usize;
    let most = 2 * capacity + 65_535 / big.len();
    assert!(
        handed_over <= most,
        "{handed_over} of {burst} events were pulled for a client that reads nothing (at most {most})"
    );

    // The subscriber catches up from the log with nothing lost.
    let events = next_events(&mut stalled, burst).await;
    let contents: Vec<String> =
        events.iter().map(|e| message_content(e).split(' ').next().unwrap().to_string()).collect();
    assert_eq!(contents, (0..burst).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_bad_or_future_cursor_is_invalid() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    for after in ["yesterday", "-5", "999999"] {
        let request = pb::SubscribeRequest { after: after.into(), ..Default::default() };
        assert_invalid(app.session(&member).subscribe(request).await, "after");
    }
    let bad_filter = pb::SubscribeRequest { types: vec![42], ..Default::default() };
    assert_invalid(app.session(&member).subscribe(bad_filter).await, "types[0]");
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_window_must_resync() {
    let app = spawn_app_with(|config| {
        config.event_retention = Duration::from_millis(300);
        config.event_prune_interval = Duration::from_millis(100);
    })
    .await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    app.send(&buyer, &conversation.id, "old news").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let status = assert_code(app.session(&seller).subscribe_after("0").await, Code::FailedPrecondition);
    assert!(status.message().contains("resync"), "{status:?}");

    // Without a cursor the client starts again from now.
    let mut fresh = subscribe(&app, &seller, "").await;
    let first = tokio::time::timeout(WAIT, fresh.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.r#type, pb::EventType::Heartbeat as i32);
    app.send(&buyer, &conversation.id, "new").await;
    assert_eq!(message_content(&next_events(&mut fresh, 1).await[0]), "new");
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_stream() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let stream = subscribe(&app, &member, "").await;
    assert_eq!(app.open_streams(), 1);

    drop(stream);

    let deadline = std::time::Instant::now() + WAIT;
    while app.open_streams() != 0 {
        assert!(std::time::Instant::now() < deadline, "the stream's task is still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A second server on `primary`'s database. SQLite replicas (processes sharing a file) see
/// each other by polling; PostgreSQL replicas are woken by NOTIFY, so the poll interval is
/// left long there.
async fn replica_of(primary: &TestApp) -> TestApp {
    primary
        .replica(|config| {
            if !config.database_url.starts_with("postgres") {
                config.event_poll_interval = Duration::from_millis(100);
            }
        })
        .await
}

#[tokio::test]
async fn a_subscriber_on_one_replica_sees_what_was_sent_through_another() {
    let primary = spawn_app().await;
    let replica = replica_of(&primary).await;
    let buyer = primary.member("buyer").await;
    let seller = primary.member("seller").await;
    let conversation = primary.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut stream = subscribe(&replica, &seller, "").await;
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();

    primary.send(&buyer, &conversation.id, "through the primary").await;

    let started = std::time::Instant::now();
    assert_eq!(message_content(&next_events(&mut stream, 1).await[0]), "through the primary");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_revoke_through_one_replica_ends_the_stream_on_another_before_its_next_event() {
    let primary = spawn_app().await;
    let on_postgres = primary.database_url.starts_with("postgres");
    let replica = replica_of(&primary).await;
    let buyer = primary.member("buyer").await;
    let seller = primary.member("seller").await;
    let conversation = primary.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut stream = subscribe(&replica, &seller, "").await;
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    let key_id = key_of(&primary, &seller).await;

    primary.as_admin().revoke_api_key(&key_id).await.unwrap();
    if !on_postgres {
        // Processes sharing a SQLite file cannot tell each other: cached keys expire.
        tokio::time::sleep(missive::store::seed::SHARED_FILE_MAX_AGE).await;
    }
    primary.send(&buyer, &conversation.id, "after the revoke").await;

    ends_unauthenticated(&mut stream, "").await;
}

#[tokio::test]
async fn a_revoked_key_ends_its_stream() {
    let app = spawn_app_with(|config| config.heartbeat_interval = Duration::from_millis(200)).await;
    let member = app.member("member").await;
    let mut stream = subscribe(&app, &member, "").await;
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    let key_id = key_of(&app, &member).await;

    app.as_admin().revoke_api_key(&key_id).await.unwrap();

    ends_unauthenticated(&mut stream, "").await;
}

#[tokio::test]
async fn a_revoke_reaches_an_open_stream_within_a_second_and_before_the_next_event() {
    // Default heartbeats (15 s): nothing but the revoke itself may end the stream in time.
    let app = spawn_app().await;
    let member = app.member("member").await;
    let other = app.member("other").await;
    let conversation = app.conversation(&other, &[(&member, "member")]).await;
    let mut stream = subscribe(&app, &member, "").await;
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    let key_id = key_of(&app, &member).await;

    let revoked_at = std::time::Instant::now();
    app.as_admin().revoke_api_key(&key_id).await.unwrap();
    app.send(&other, &conversation.id, "after the revoke").await;

    let status = match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
        Err(_) => panic!("the stream did not end within a second"),
        Ok(Ok(Some(event))) => panic!("delivered after the revoke: {event:?}"),
        Ok(Ok(None)) => panic!("the stream ended without a status"),
        Ok(Err(status)) => status,
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(revoked_at.elapsed() < Duration::from_secs(1), "{:?}", revoked_at.elapsed());
}

#[tokio::test]
async fn a_member_learns_nothing_of_notes_from_read_events() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let supervisor = app.agent("supervisor").await;
    let conversation =
        app.conversation(&agent, &[(&customer, "customer"), (&agent, "agent"), (&supervisor, "supervisor")]).await;
    app.session(&agent).send_message(note(&conversation.id, "note")).await.unwrap();
    app.send(&agent, &conversation.id, "public").await;
    app.session(&supervisor).mark_all_read(&conversation.id).await.unwrap();
    app.send(&agent, &conversation.id, "marker").await;

    let mut stream = subscribe(&app, &customer, "0").await;
    let events = next_events(&mut stream, 4).await;

    assert_eq!(
        types(&events),
        vec![
            pb::EventType::ConversationCreated,
            pb::EventType::MessageCreated,
            pb::EventType::MessagesRead,
            pb::EventType::MessageCreated
        ]
    );
    let Some(pb::event::Payload::MessagesRead(read)) = &events[2].payload else { panic!("{:?}", events[2]) };
    assert_eq!(read.message_ids.len(), 1, "only the public message");
    assert_eq!(read.unread_count, 0, "the supervisor's count of what the member could also see");
}

#[tokio::test]
async fn a_heartbeat_only_filter_sends_only_heartbeats() {
    let app = spawn_app_with(|config| config.heartbeat_interval = Duration::from_millis(200)).await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    app.send(&buyer, &conversation.id, "hidden by the filter").await;

    let request =
        pb::SubscribeRequest { after: "0".into(), types: vec![pb::EventType::Heartbeat as i32], ..Default::default() };
    let mut stream = app.session(&seller).subscribe(request).await.unwrap();

    for _ in 0..3 {
        let event = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(event.r#type, pb::EventType::Heartbeat as i32);
    }
}

/// The contents of the message events in `events`.
fn contents(events: &[pb::Event]) -> Vec<String> {
    events.iter().filter(|e| e.r#type == pb::EventType::MessageCreated as i32).map(message_content).collect()
}

/// Every event of a stream up to its next heartbeat (for a resumed stream: its replay).
async fn replay(stream: &mut Streaming<pb::Event>) -> Vec<pb::Event> {
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
        if event.r#type == pb::EventType::Heartbeat as i32 {
            return events;
        }
        events.push(event);
    }
}

#[tokio::test]
async fn a_replay_judges_membership_as_of_the_moment_the_stream_opens() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let (left, joined) = (app.member("left").await, app.member("joined").await);
    let agent_session = app.session(&agent);

    // `left` took part in one conversation and was removed from it.
    let former = app.conversation(&agent, &[(&left, "customer")]).await;
    app.send(&agent, &former.id, "while left took part").await;
    agent_session.remove_participant(&former.id, &left.id).await.unwrap();
    app.send(&agent, &former.id, "after left was removed").await;
    // `joined` was added to another one after its first message.
    let later = app.conversation(&agent, &[]).await;
    app.send(&agent, &later.id, "before joined was added").await;
    agent_session.add_participant(&later.id, &joined.id, "customer").await.unwrap();
    app.send(&agent, &later.id, "after joined was added").await;

    let left_replay = replay(&mut subscribe(&app, &left, "0").await).await;
    assert_eq!(contents(&left_replay), Vec::<String>::new(), "not a conversation of theirs any more");
    assert!(types(&left_replay).contains(&pb::EventType::ParticipantRemoved), "but its own removal");
    let joined_replay = replay(&mut subscribe(&app, &joined, "0").await).await;
    assert_eq!(contents(&joined_replay), ["before joined was added", "after joined was added"]);
}

#[tokio::test]
async fn a_live_stream_follows_membership_as_the_log_moves() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let member = app.member("member").await;
    let conversation = app.conversation(&agent, &[]).await;
    let mut stream = subscribe(&app, &member, "").await;
    replay(&mut stream).await;

    app.send(&agent, &conversation.id, "before").await;
    app.session(&agent).add_participant(&conversation.id, &member.id, "customer").await.unwrap();
    app.send(&agent, &conversation.id, "while a participant").await;
    app.session(&agent).remove_participant(&conversation.id, &member.id).await.unwrap();
    app.send(&agent, &conversation.id, "after").await;
    // A marker in a conversation the member keeps, to know the stream has seen everything.
    let own = app.conversation(&agent, &[(&member, "customer")]).await;
    app.send(&agent, &own.id, "marker").await;

    let mut seen = Vec::new();
    while !contents(&seen).contains(&"marker".to_string()) {
        seen.extend(next_events(&mut stream, 1).await);
    }
    assert_eq!(contents(&seen), ["while a participant", "marker"]);
    assert_eq!(
        types(&seen)[..2],
        [pb::EventType::ParticipantAdded, pb::EventType::MessageCreated],
        "added, then the message sent while it took part"
    );
}

/// A cursor says nothing of other accounts: it moves by one per event of the caller's own
/// account, whatever other tenants do, and the head it names is the account's own.
#[tokio::test]
async fn cursors_reveal_nothing_of_other_accounts() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut stream = subscribe(&app, &seller, "").await;
    let opened = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    let other_account = app.create_account("busy neighbour").await;
    let (ann, bob) = (
        app.bootstrap_user(&other_account, pb::Role::Member, "ann").await,
        app.bootstrap_user(&other_account, pb::Role::Member, "bob").await,
    );
    let theirs = app.conversation(&ann, &[(&bob, "bob")]).await;

    app.send(&buyer, &conversation.id, "one").await;
    for index in 0..8 {
        app.send(&ann, &theirs.id, &format!("busy {index}")).await;
    }
    app.send(&buyer, &conversation.id, "two").await;

    // Sealed: no number to subtract, and neighbours look unrelated.
    let positions = cursors(&next_events(&mut stream, 2).await);
    for cursor in positions.iter().chain([&opened.cursor]) {
        assert_eq!(cursor.len(), 22, "{cursor}");
        assert!(!cursor.bytes().all(|b| b.is_ascii_digit()), "{cursor}");
    }
    // Another account's cursor opens to nothing here, and errors name no position.
    let mut neighbours = subscribe(&app, &bob, "").await;
    let their_head = tokio::time::timeout(WAIT, neighbours.message()).await.unwrap().unwrap().unwrap();
    for (cursor, code) in [(&their_head.cursor, Code::InvalidArgument), (&"99999".to_owned(), Code::InvalidArgument)] {
        let status = app.session(&seller).subscribe_after(cursor).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(!status.message().bytes().any(|b| b.is_ascii_digit()), "{status:?}");
    }
    // The seller's own cursors work, one after another.
    let mut resumed = subscribe(&app, &seller, &opened.cursor).await;
    let again = next_events(&mut resumed, 2).await;
    assert_eq!(cursors(&again), positions);
}

/// Typing and presence signals are live only, never in the log, but go only to a key that
/// still works: after a revoke is answered, the stream gets none, only its end. Others send
/// meanwhile, so that the log's wake-up of the revoke may come after a signal.
#[tokio::test]
async fn no_signal_reaches_a_stream_after_its_key_was_revoked() {
    let app = spawn_app().await;
    let (first, second) = (app.member("first").await, app.member("second").await);
    let busy = app.conversation(&first, &[(&second, "second")]).await.id;
    let sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut load = Vec::new();
    for sender in [&first, &second, &first, &second] {
        let (session, busy, sending) = (app.session(sender), busy.clone(), std::sync::Arc::clone(&sending));
        load.push(tokio::spawn(async move {
            while sending.load(std::sync::atomic::Ordering::Relaxed) {
                session.send_message(text(&busy, "busy")).await.unwrap();
            }
        }));
    }
    for round in 0..10 {
        // New users each round: typing is rate-limited per user.
        let other = app.member(&format!("other {round}")).await;
        let member = app.member(&format!("member {round}")).await;
        let conversation = app.conversation(&other, &[(&member, "member")]).await;
        let mut stream = subscribe(&app, &member, "").await;
        tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
        let key_id = key_of(&app, &member).await;

        app.as_admin().revoke_api_key(&key_id).await.unwrap();
        // Signals at once: typing, and presence (another stream of the other user opens).
        app.session(&other).typing(&conversation.id, true).await.unwrap();
        let _presence = subscribe(&app, &other, "").await;

        ends_unauthenticated(&mut stream, &format!("round {round}")).await;
    }
    sending.store(false, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
}

/// Processes sharing a SQLite file hear nothing of each other's revokes: each re-reads the
/// keys it has cached twice a second (`jobs::keys`), so a revoke through one ends the
/// streams of the other within a second, and no signal passes through it after that,
/// however busy typing is there. (On PostgreSQL the revoke's NOTIFY tells every replica at
/// once; the test is SQLite's, on a file of its own in both passes.)
#[tokio::test]
async fn a_revoke_through_another_process_stops_its_signals_within_a_second() {
    // A file of its own, in the PostgreSQL pass too.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(&sqlite_file(&dir), |_| {}).await;
    let other = app.replica(|_| {}).await;
    let member = app.member("member").await;
    let typer = app.member("typer").await;
    let conversation = app.conversation(&typer, &[(&member, "member")]).await;
    let mut stream = other.session(&member).subscribe_after("").await.unwrap();
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();

    let key = key_of(&app, &member).await;
    let revoked = std::time::Instant::now();
    app.as_admin().revoke_api_key(&key).await.unwrap();
    let typing = other.session(&typer);
    let conversation_id = conversation.id.clone();
    let typer_task = tokio::spawn(async move {
        loop {
            let _ = typing.typing(&conversation_id, true).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let status = loop {
        match tokio::time::timeout(WAIT, stream.message()).await.expect("the stream ends in time") {
            Ok(Some(event)) => {
                let late = revoked.elapsed();
                assert!(late < Duration::from_secs(1), "{event:?} delivered {late:?} after the revoke");
            }
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    typer_task.abort();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(revoked.elapsed() < Duration::from_millis(1500), "ended {:?} after the revoke", revoked.elapsed());
}
