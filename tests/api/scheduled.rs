//! Scheduled messages: pending until their time, then delivered once as if sent then,
//! across restarts and replicas; listed, changed, canceled, sent now, or failed.

use std::time::Duration;

use missive::api::pb;
use tonic::Code;

use crate::helpers::{
    Session, TestApp, assert_code, assert_invalid, in_future, micros, next_events, serve_in_a_process, spawn_app,
    spawn_app_with, text,
};

fn later(conversation_id: &str, content: &str, after: Duration) -> pb::SendMessageRequest {
    pb::SendMessageRequest { schedule_time: Some(in_future(after)), ..text(conversation_id, content) }
}

/// Waits until `conversation_id` holds `count` messages as `user` sees them.
async fn wait_for_messages(app: &TestApp, user: &crate::helpers::TestUser, conversation_id: &str, count: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let total = app.session(user).messages_in(conversation_id).await.unwrap().total_size;
        if total >= count {
            assert_eq!(total, count, "delivered more than once");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {total} of {count} messages arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scheduled_message_waits_unseen_then_arrives_in_order_as_if_sent_then() {
    let app = spawn_app().await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let mut seller_stream = app.session(&seller).subscribe_after("").await.unwrap();
    let mut buyer_stream = app.session(&buyer).subscribe_after("").await.unwrap();

    // A retry repeats its request exactly, schedule time included.
    let reminder = pb::SendMessageRequest {
        request_id: "reminder-1".into(),
        ..later(&conversation.id, "Price drops tomorrow", Duration::from_millis(1500))
    };
    let scheduled = app.session(&seller).send_message(reminder.clone()).await.unwrap();
    assert_eq!(scheduled.state, pb::MessageState::Scheduled as i32);
    assert_eq!(scheduled.sequence, 0);
    let scheduled_event = &next_events(&mut seller_stream, 1).await[0];
    assert_eq!(scheduled_event.r#type, pb::EventType::MessageScheduled as i32);
    // Meanwhile, nothing of it shows.
    assert_code(app.session(&buyer).get_message(&scheduled.id).await, Code::NotFound);
    assert_code(app.session(&buyer).get_scheduled(&scheduled.id).await, Code::NotFound);
    assert_eq!(app.unread(&buyer).await, (0, 0));
    assert_eq!(app.session(&buyer).messages_in(&conversation.id).await.unwrap().total_size, 0);
    let listed = app.session(&seller).list_scheduled("").await.unwrap();
    assert_eq!(listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [scheduled.id.as_str()]);
    app.send(&buyer, &conversation.id, "Any news?").await;

    let delivered = next_events(&mut buyer_stream, 2).await;
    assert_eq!(delivered[0].r#type, pb::EventType::MessageCreated as i32, "the buyer's own message first");
    let Some(pb::event::Payload::Message(arrived)) = &delivered[1].payload else { panic!("a message event") };
    assert_eq!(delivered[1].r#type, pb::EventType::MessageCreated as i32);
    assert_eq!((arrived.id.as_str(), arrived.sequence), (scheduled.id.as_str(), 2), "its place at delivery");
    assert_eq!(arrived.state, pb::MessageState::Sent as i32);
    let late = micros(arrived.create_time) - micros(scheduled.schedule_time);
    assert!((0..1_500_000).contains(&late), "delivered {late} µs after its time");
    assert_eq!(app.unread(&buyer).await, (1, 1));
    assert!(app.session(&seller).list_scheduled("").await.unwrap().is_empty());
    assert_eq!(app.session(&buyer).get_message(&scheduled.id).await.unwrap().content, "Price drops tomorrow");
    app.assert_no_unread_drift().await;
    // What became of it, for its sender; too late to cancel or send again.
    let became = app.session(&seller).get_scheduled(&scheduled.id).await.unwrap();
    assert_eq!((became.state, became.sequence), (pb::MessageState::Sent as i32, 2));
    assert_code(app.session(&seller).cancel_scheduled(&scheduled.id).await, Code::FailedPrecondition);
    assert_code(app.session(&seller).send_scheduled_now(&scheduled.id).await, Code::FailedPrecondition);
    assert_code(app.session(&buyer).get_scheduled(&scheduled.id).await, Code::NotFound);
    assert_code(app.session(&buyer).cancel_scheduled(&scheduled.id).await, Code::NotFound);
    // A retry of the send, now that its time has passed, returns what it became.
    let retried = app.session(&seller).send_message(reminder).await.unwrap();
    assert_eq!((retried.id, retried.state), (scheduled.id.clone(), pb::MessageState::Sent as i32));
    assert_eq!(app.session(&buyer).messages_in(&conversation.id).await.unwrap().total_size, 2, "not sent twice");
}

#[tokio::test]
async fn a_schedule_time_must_be_ahead_within_the_horizon() {
    let app = spawn_app_with(|config| config.schedule_horizon = Duration::from_secs(3600)).await;
    let agent = app.agent("Agent").await;
    let conversation = app.conversation(&agent, &[]).await;
    let session = app.session(&agent);
    let past = pb::SendMessageRequest {
        schedule_time: Some(prost_types::Timestamp { seconds: 1_600_000_000, nanos: 0 }),
        ..text(&conversation.id, "x")
    };
    assert_invalid(session.send_message(past).await, "schedule_time");
    let too_far = session.send_message(later(&conversation.id, "x", Duration::from_secs(7200))).await;
    let status = assert_code(too_far, Code::InvalidArgument);
    assert!(status.message().contains("schedule_time: is too far ahead: at most 1h from now"), "{}", status.message());
    let relayed = pb::SendMessageRequest {
        envelope: Some(pb::Envelope {
            channel: pb::Channel::Sms as i32,
            external_id: "SM1".into(),
            ..Default::default()
        }),
        ..later(&conversation.id, "x", Duration::from_secs(60))
    };
    assert_invalid(session.send_message(relayed).await, "envelope.external_id");
    let first = pb::CreateConversationRequest {
        first_message: Some(later("", "hello", Duration::from_secs(60))),
        ..Default::default()
    };
    assert_invalid(session.create_conversation(first).await, "first_message.schedule_time");
    assert!(session.list_scheduled("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_scheduled_image_arrives_with_its_files_under_the_same_ids() {
    let app = spawn_app().await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let photo = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let request = pb::SendMessageRequest {
        kind: pb::MessageKind::Image as i32,
        attachments: vec![pb::NewAttachment {
            filename: "truck.png".into(),
            media_type: "image/png".into(),
            data: photo.clone(),
            ..Default::default()
        }],
        ..later(&conversation.id, "", Duration::from_millis(600))
    };
    let scheduled = app.session(&seller).send_message(request).await.unwrap();
    let file = scheduled.attachments[0].clone();
    assert_eq!((file.filename.as_str(), file.size_bytes), ("truck.png", photo.len() as i64));
    assert_eq!(app.session(&seller).get_scheduled(&scheduled.id).await.unwrap().attachments, vec![file.clone()]);
    assert_code(app.session(&seller).get_attachment(&file.id).await, Code::NotFound);

    wait_for_messages(&app, &buyer, &conversation.id, 1).await;
    let sent = app.session(&buyer).get_message(&scheduled.id).await.unwrap();
    assert_eq!(sent.attachments, vec![file.clone()], "the same files, under the same ids");
    assert_eq!(app.session(&buyer).get_attachment(&file.id).await.unwrap().data, photo);
}

#[tokio::test]
async fn the_sender_changes_cancels_or_sends_at_once_and_staff_see_the_conversations() {
    let app = spawn_app().await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let agent = app.agent("Agent").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let as_seller = app.session(&seller);
    let mut seller_stream = as_seller.subscribe_after("").await.unwrap();
    let mut buyer_stream = app.session(&buyer).subscribe_after("").await.unwrap();
    let hour = Duration::from_secs(3600);
    let once = pb::SendMessageRequest { request_id: "r1".into(), ..later(&conversation.id, "one", hour) };
    let first = as_seller.send_message(once.clone()).await.unwrap();
    let retried = as_seller.send_message(once.clone()).await.unwrap();
    assert_eq!(retried.id, first.id, "a retried scheduling returns the first");
    let second = as_seller.send_message(later(&conversation.id, "two", 2 * hour)).await.unwrap();

    let mut changed = first.clone();
    changed.content = "one, edited".into();
    changed.schedule_time = Some(in_future(3 * hour));
    let changed = as_seller.update_scheduled(changed, &["content", "schedule_time"]).await.unwrap();
    assert_eq!(changed.content, "one, edited");
    let order: Vec<String> =
        as_seller.list_scheduled(&conversation.id).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(order, [second.id.clone(), first.id.clone()], "soonest first");
    let mut too_early = changed.clone();
    too_early.schedule_time = Some(prost_types::Timestamp { seconds: 1, nanos: 0 });
    assert_invalid(as_seller.update_scheduled(too_early, &["schedule_time"]).await, "message.schedule_time");

    // Others: the buyer sees none of it; staff see the conversation's and may cancel.
    assert_code(app.session(&buyer).cancel_scheduled(&first.id).await, Code::NotFound);
    assert!(app.session(&buyer).list_scheduled(&conversation.id).await.unwrap().is_empty());
    assert_eq!(app.session(&agent).list_scheduled(&conversation.id).await.unwrap().len(), 2);
    assert_code(app.session(&agent).update_scheduled(changed.clone(), &["content"]).await, Code::PermissionDenied);

    let sent = as_seller.send_scheduled_now(&second.id).await.unwrap();
    assert_eq!((sent.state, sent.sequence), (pb::MessageState::Sent as i32, 1));
    assert_eq!(app.session(&buyer).get_message(&second.id).await.unwrap().content, "two");
    let canceled = app.session(&agent).cancel_scheduled(&first.id).await.unwrap();
    assert_eq!(canceled.state, pb::MessageState::Canceled as i32);
    assert_eq!(as_seller.get_scheduled(&first.id).await.unwrap().state, pb::MessageState::Canceled as i32);
    assert_code(as_seller.send_scheduled_now(&first.id).await, Code::FailedPrecondition);
    assert!(as_seller.list_scheduled("").await.unwrap().is_empty(), "canceled ones are not listed");
    let retried_again = as_seller.send_message(once).await.unwrap();
    assert_eq!(
        (retried_again.id.as_str(), retried_again.state),
        (first.id.as_str(), pb::MessageState::Canceled as i32),
        "a retry after the cancel does not schedule it again"
    );
    assert_eq!(app.session(&buyer).messages_in(&conversation.id).await.unwrap().total_size, 1);

    let types = |events: Vec<pb::Event>| events.into_iter().map(|e| e.r#type).collect::<Vec<_>>();
    assert_eq!(
        types(next_events(&mut seller_stream, 5).await),
        [
            pb::EventType::MessageScheduled as i32,
            pb::EventType::MessageScheduled as i32,
            pb::EventType::ScheduledMessageUpdated as i32,
            pb::EventType::MessageCreated as i32,
            pb::EventType::ScheduledMessageCanceled as i32,
        ],
        "the sender hears of each change (a retry makes none)"
    );
    assert_eq!(types(next_events(&mut buyer_stream, 1).await), [pb::EventType::MessageCreated as i32]);
    app.send(&buyer, &conversation.id, "thanks").await;
    let Some(pb::event::Payload::Message(next)) = next_events(&mut buyer_stream, 1).await.remove(0).payload else {
        panic!("a message event")
    };
    assert_eq!(next.content, "thanks", "nothing else of the seller's schedule reached the buyer");
}

#[tokio::test]
async fn a_message_that_can_no_longer_be_sent_fails_and_tells_its_sender() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let seller = app.member("Seller").await;
    let hour = Duration::from_secs(3600);
    let conversation = app.conversation(&agent, &[(&seller, "seller")]).await;
    let other = app.conversation(&agent, &[(&seller, "seller")]).await;
    let mut seller_stream = app
        .session(&seller)
        .subscribe(pb::SubscribeRequest {
            types: vec![pb::EventType::ScheduledMessageFailed as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let doomed = app.session(&seller).send_message(later(&conversation.id, "too late", hour)).await.unwrap();
    let removed = app.session(&seller).send_message(later(&other.id, "left", hour)).await.unwrap();
    // The agent's own note in `other` is not affected by the seller leaving.
    let note = pb::SendMessageRequest { private: true, ..later(&other.id, "note", hour) };
    let kept = app.session(&agent).send_message(note).await.unwrap();
    app.session(&agent).delete_conversation(&conversation.id).await.unwrap();
    app.session(&agent).remove_participant(&other.id, &seller.id).await.unwrap();

    // At once, not at their time an hour from now.
    let failures = next_events(&mut seller_stream, 2).await;
    let failed: Vec<pb::Message> = failures
        .iter()
        .map(|event| match &event.payload {
            Some(pb::event::Payload::Message(message)) => message.clone(),
            other => panic!("not a message event: {other:?}"),
        })
        .collect();
    let reason_of = |id: &str| failed.iter().find(|m| m.id == id).unwrap().failure_reason.clone();
    assert!(reason_of(&doomed.id).contains("was deleted"), "{}", reason_of(&doomed.id));
    assert!(reason_of(&removed.id).contains("no longer takes part"), "{}", reason_of(&removed.id));
    let listed = app.session(&seller).list_scheduled("").await.unwrap();
    assert!(listed.iter().all(|m| m.state == pb::MessageState::Failed as i32) && listed.len() == 2);
    assert_code(app.session(&seller).send_scheduled_now(&doomed.id).await, Code::FailedPrecondition);
    app.session(&seller).cancel_scheduled(&doomed.id).await.unwrap();
    assert_eq!(app.session(&seller).list_scheduled("").await.unwrap().len(), 1, "dismissed");
    assert_eq!(app.session(&agent).messages_in(&other.id).await.unwrap().total_size, 0);
    assert_eq!(app.session(&agent).get_scheduled(&kept.id).await.unwrap().state, pb::MessageState::Scheduled as i32);

    // What only the due time can tell: a sender whose role no longer allows the message.
    let own = app.conversation(&agent, &[(&agent, "agent")]).await;
    let demoted_note = pb::SendMessageRequest { private: true, ..later(&own.id, "soon", Duration::from_secs(2)) };
    let demoted = app.session(&agent).send_message(demoted_note).await.unwrap();
    let member = pb::User { id: agent.id.clone(), role: pb::Role::Member as i32, ..Default::default() };
    app.as_admin()
        .update_user(pb::UpdateUserRequest {
            user: Some(member),
            update_mask: Some(prost_types::FieldMask { paths: vec!["role".into()] }),
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let message = app.session(&agent).get_scheduled(&demoted.id).await.unwrap();
        if message.state != pb::MessageState::Scheduled as i32 {
            break message;
        }
        assert!(tokio::time::Instant::now() < deadline, "still scheduled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.state, pb::MessageState::Failed as i32);
    assert!(failed.failure_reason.contains("may no longer send it"), "{}", failed.failure_reason);
}

#[tokio::test]
async fn a_message_due_while_the_server_was_down_is_delivered_once_on_start() {
    let app = spawn_app().await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let scheduled = app
        .session(&seller)
        .send_message(later(&conversation.id, "while you slept", Duration::from_millis(800)))
        .await
        .unwrap();

    let app = app.restart_after(Duration::from_millis(1500)).await;

    wait_for_messages(&app, &buyer, &conversation.id, 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    wait_for_messages(&app, &buyer, &conversation.id, 1).await;
    // Sent by the restarted server: the first one stopped before the due time and the second
    // started 1.5 s later, so the delivery is at least that much after it.
    let delivered = app.session(&buyer).get_message(&scheduled.id).await.unwrap();
    let late = micros(delivered.create_time) - micros(scheduled.schedule_time);
    assert!(late >= 500_000, "delivered {late} µs after its time: by the server that was stopping?");
    assert_eq!(app.unread(&buyer).await, (1, 1));
    assert!(app.session(&seller).list_scheduled("").await.unwrap().is_empty());
}

/// Two servers on one database, the second a separate `missive` process, both looking for
/// due messages every 50 ms: each of many messages falling due together arrives once.
#[tokio::test]
async fn two_server_processes_deliver_each_due_message_once() {
    let app = spawn_app_with(|config| config.schedule_interval = Duration::from_millis(50)).await;
    let (_process, channel) = serve_in_a_process(&app.database_url, &["--schedule-interval", "50ms"]).await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    const MESSAGES: usize = 60;
    for index in 0..MESSAGES {
        let request = later(&conversation.id, &format!("m{index}"), Duration::from_millis(1500 + 5 * index as u64));
        let session = if index % 2 == 0 { app.session(&seller) } else { Session::over(channel.clone(), &seller.key) };
        session.send_message(request).await.unwrap();
    }

    wait_for_messages(&app, &buyer, &conversation.id, MESSAGES as i64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let messages = app.session(&buyer).all_messages_in(&conversation.id, 100).await.unwrap();
    let mut contents: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
    contents.sort();
    contents.dedup();
    assert_eq!((messages.len(), contents.len()), (MESSAGES, MESSAGES), "each once");
    let sequences: Vec<i64> = messages.iter().map(|m| m.sequence).collect();
    assert_eq!(sequences, (1..=MESSAGES as i64).collect::<Vec<_>>());
    assert_eq!(app.unread(&buyer).await, (MESSAGES as i64, 1));
    app.assert_no_unread_drift().await;
}
