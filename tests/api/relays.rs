//! Relays: an outgoing relayed message's delivery (forward only, idempotent, each move an
//! event a relay can resume from), suppressed addresses, raw payloads kept for staff only,
//! staff's handled marks, and the one phone rule for users and envelopes.

use missive::api::pb;
use tonic::Code;

use crate::helpers::{
    Session, TestApp, TestUser, assert_code, assert_invalid, next_events, next_of_type, spawn_app, text,
};

fn sms(from: &str, to: &str) -> Option<pb::Envelope> {
    Some(pb::Envelope {
        channel: pb::Channel::Sms as i32,
        from_address: from.into(),
        to_address: to.into(),
        ..Default::default()
    })
}

fn report(message_id: &str, state: pb::DeliveryState) -> pb::ReportDeliveryRequest {
    pb::ReportDeliveryRequest { message_id: message_id.into(), state: state as i32, ..Default::default() }
}

fn delivery(message: &pb::Message) -> pb::Delivery {
    message.envelope.as_ref().and_then(|e| e.delivery.clone()).expect("an outgoing relayed message has a delivery")
}

fn state(message: &pb::Message) -> pb::DeliveryState {
    pb::DeliveryState::try_from(delivery(message).state).unwrap()
}

/// A conversation between an agent (the CRM's key) and a lead, with the agent's outgoing
/// SMS to the lead.
async fn outgoing_sms(app: &TestApp) -> (Session, pb::Conversation, pb::Message, TestUser) {
    let agent = app.agent("CRM").await;
    let lead = app.member("Lead").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead")]).await;
    let session = app.session(&agent);
    let sent = session
        .send_message(pb::SendMessageRequest {
            envelope: sms("+1 415 555 0100", "(415) 555-2671"),
            ..text(&conversation.id, "Your viewing is at 10:00")
        })
        .await
        .unwrap();
    (session, conversation, sent, lead)
}

#[tokio::test]
async fn delivery_moves_only_forward_and_a_repeat_changes_nothing() {
    let app = spawn_app().await;
    let (relay, _, sent, _) = outgoing_sms(&app).await;
    assert_eq!(state(&sent), pb::DeliveryState::Pending);

    let reported = pb::ReportDeliveryRequest { external_id: "SM1".into(), ..report(&sent.id, pb::DeliveryState::Sent) };
    let after_sent = relay.report_delivery(reported.clone()).await.unwrap();
    assert_eq!(state(&after_sent), pb::DeliveryState::Sent);
    assert_eq!(after_sent.envelope.as_ref().unwrap().external_id, "SM1", "the channel's id is learnt when sent");
    // The same report again: nothing moves, not even the time.
    let repeated = relay.report_delivery(reported).await.unwrap();
    assert_eq!(delivery(&repeated), delivery(&after_sent));

    let delivered = relay.report_delivery(report(&sent.id, pb::DeliveryState::Delivered)).await.unwrap();
    assert_eq!(state(&delivered), pb::DeliveryState::Delivered);
    // Late and out of order: a SENT, then a FAILED, after DELIVERED change nothing.
    let late = relay.report_delivery(report(&sent.id, pb::DeliveryState::Sent)).await.unwrap();
    assert_eq!(delivery(&late), delivery(&delivered));
    let failed =
        pb::ReportDeliveryRequest { error_code: "30008".into(), ..report(&sent.id, pb::DeliveryState::Failed) };
    assert_eq!(delivery(&relay.report_delivery(failed).await.unwrap()), delivery(&delivered));
    assert_eq!(delivery(&relay.get_message(&sent.id).await.unwrap()), delivery(&delivered));
}

#[tokio::test]
async fn a_failure_carries_the_channels_error() {
    let app = spawn_app().await;
    let (relay, _, sent, _) = outgoing_sms(&app).await;
    let failed = pb::ReportDeliveryRequest {
        error_code: "30007".into(),
        error_message: "Carrier filtered the message".into(),
        ..report(&sent.id, pb::DeliveryState::Failed)
    };
    let message = relay.report_delivery(failed).await.unwrap();
    let delivery = delivery(&message);
    assert_eq!(
        (delivery.state, delivery.error_code.as_str(), delivery.error_message.as_str()),
        (pb::DeliveryState::Failed as i32, "30007", "Carrier filtered the message")
    );
    // Final: a late DELIVERED does not undo it.
    let late = relay.report_delivery(report(&sent.id, pb::DeliveryState::Delivered)).await.unwrap();
    assert_eq!(state(&late), pb::DeliveryState::Failed);
}

#[tokio::test]
async fn only_staff_report_and_only_on_outgoing_relayed_messages() {
    let app = spawn_app().await;
    let (relay, conversation, sent, _) = outgoing_sms(&app).await;
    let lead = app.member("Another lead").await;
    let member = app.session(&lead);
    assert_code(member.report_delivery(report(&sent.id, pb::DeliveryState::Sent)).await, Code::PermissionDenied);

    let in_app = app.session(&app.admin).send_message(text(&conversation.id, "in the product")).await.unwrap();
    assert!(in_app.envelope.is_none());
    let refused =
        assert_code(relay.report_delivery(report(&in_app.id, pb::DeliveryState::Sent)).await, Code::FailedPrecondition);
    assert!(refused.message().contains("not an outgoing relayed message"), "{refused:?}");
    let incoming = relay
        .send_message(pb::SendMessageRequest {
            direction: pb::Direction::Incoming as i32,
            envelope: sms("(415) 555-2671", "+1 415 555 0100"),
            ..text(&conversation.id, "Can we make it 11?")
        })
        .await
        .unwrap();
    assert!(incoming.envelope.as_ref().unwrap().delivery.is_none(), "an incoming message has no delivery");
    assert_code(relay.report_delivery(report(&incoming.id, pb::DeliveryState::Sent)).await, Code::FailedPrecondition);

    assert_invalid(relay.report_delivery(report(&sent.id, pb::DeliveryState::Unspecified)).await, "state");
    assert_invalid(relay.report_delivery(report(&sent.id, pb::DeliveryState::Pending)).await, "state");
    assert_invalid(relay.report_delivery(report(&sent.id, pb::DeliveryState::Failed)).await, "error_code");
    let error_on_sent =
        pb::ReportDeliveryRequest { error_code: "1".into(), ..report(&sent.id, pb::DeliveryState::Sent) };
    assert_invalid(relay.report_delivery(error_on_sent).await, "error_code");
    assert_invalid(relay.report_delivery(report("nope", pb::DeliveryState::Sent)).await, "message_id");
    let other_account = app.other_account_agent().await;
    assert_code(
        app.session(&other_account).report_delivery(report(&sent.id, pb::DeliveryState::Sent)).await,
        Code::NotFound,
    );

    // The channel's id is one message's: taken, it names that message; kept, it stays.
    let with_id = pb::ReportDeliveryRequest { external_id: "SM9".into(), ..report(&sent.id, pb::DeliveryState::Sent) };
    relay.report_delivery(with_id).await.unwrap();
    let second = relay
        .send_message(pb::SendMessageRequest { envelope: sms("", "(415) 555-2671"), ..text(&conversation.id, "2") })
        .await
        .unwrap();
    let taken = pb::ReportDeliveryRequest { external_id: "SM9".into(), ..report(&second.id, pb::DeliveryState::Sent) };
    let status = assert_code(relay.report_delivery(taken).await, Code::AlreadyExists);
    assert!(status.message().contains(&sent.id), "{status:?}");
    let changed =
        pb::ReportDeliveryRequest { external_id: "SM10".into(), ..report(&sent.id, pb::DeliveryState::Delivered) };
    assert_code(relay.report_delivery(changed).await, Code::FailedPrecondition);
}

/// What a relay does: subscribe to the SMS it must send (created, PENDING), send each, and
/// after a restart resume from its cursor with nothing missed and nothing repeated.
#[tokio::test]
async fn a_relay_finds_what_to_send_by_subscribing_and_resumes_from_its_cursor() {
    let app = spawn_app().await;
    let (relay, conversation, first, lead) = outgoing_sms(&app).await;
    let to_send = |after: &str| pb::SubscribeRequest {
        after: after.into(),
        types: vec![
            pb::EventType::MessageCreated as i32,
            pb::EventType::MessageUpdated as i32,
            pb::EventType::MessageDeleted as i32,
        ],
        channels: vec![pb::Channel::Sms as i32],
        delivery_states: vec![pb::DeliveryState::Pending as i32],
        ..Default::default()
    };
    // Not for this relay: an email, an in-app message, an incoming SMS.
    let email = pb::Envelope {
        channel: pb::Channel::Email as i32,
        to_address: "lead@example.com".into(),
        ..Default::default()
    };
    relay
        .send_message(pb::SendMessageRequest { envelope: Some(email), ..text(&conversation.id, "mail") })
        .await
        .unwrap();
    relay.send_message(text(&conversation.id, "in-app")).await.unwrap();
    relay
        .send_message(pb::SendMessageRequest {
            direction: pb::Direction::Incoming as i32,
            envelope: sms("(415) 555-2671", ""),
            ..text(&conversation.id, "incoming")
        })
        .await
        .unwrap();

    let mut stream = relay.subscribe(to_send("0")).await.unwrap();
    let seen = next_events(&mut stream, 1).await;
    let Some(pb::event::Payload::Message(message)) = &seen[0].payload else { panic!("{seen:?}") };
    assert_eq!(message.id, first.id);
    let cursor = seen[0].cursor.clone();
    relay.report_delivery(report(&first.id, pb::DeliveryState::Sent)).await.unwrap();
    drop(stream);

    // While the relay is away: another SMS to send.
    let second = relay
        .send_message(pb::SendMessageRequest { envelope: sms("", "(415) 555-2671"), ..text(&conversation.id, "2nd") })
        .await
        .unwrap();
    let mut resumed = relay.subscribe(to_send(&cursor)).await.unwrap();
    let seen = next_events(&mut resumed, 1).await;
    let Some(pb::event::Payload::Message(message)) = &seen[0].payload else { panic!("{seen:?}") };
    assert_eq!(message.id, second.id, "the first, sent meanwhile, is not offered again");

    // Delivery moves reach staff and the sender; the lead, who sees no envelope of the
    // agent's messages, gets none of them.
    let mut outcomes = relay
        .subscribe(pb::SubscribeRequest {
            after: cursor.clone(),
            types: vec![pb::EventType::MessageDeliveryUpdated as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let moved = next_of_type(&mut outcomes, pb::EventType::MessageDeliveryUpdated, 1).await;
    let Some(pb::event::Payload::Message(message)) = &moved[0].payload else { panic!("{moved:?}") };
    assert_eq!((message.id.as_str(), state(message)), (first.id.as_str(), pb::DeliveryState::Sent));
    let mut lead_stream = app.session(&lead).subscribe_after("0").await.unwrap();
    let lead_events = crate::helpers::events_until_heartbeat(&mut lead_stream).await;
    assert!(
        lead_events.iter().all(|e| e.r#type != pb::EventType::MessageDeliveryUpdated as i32),
        "a member learns nothing of the relay: {lead_events:?}"
    );
    assert!(lead_events.iter().all(|e| match &e.payload {
        Some(pb::event::Payload::Message(m)) => m.envelope.is_none(),
        _ => true,
    }));
    // A member's channel filter matches its own messages only.
    let mut filtered = app.session(&lead).subscribe(to_send("0")).await.unwrap();
    assert!(crate::helpers::events_until_heartbeat(&mut filtered).await.is_empty());
    assert_invalid(
        relay.subscribe(pb::SubscribeRequest { channels: vec![pb::Channel::InApp as i32], ..to_send("") }).await,
        "channels[0]",
    );
}

#[tokio::test]
async fn a_suppressed_address_gets_transactional_messages_only() {
    let app = spawn_app().await;
    let agent = app.agent("CRM").await;
    let conversation = app.conversation(&agent, &[]).await;
    let staff = app.session(&agent);
    let suppression = pb::Suppression {
        channel: pb::Channel::Sms as i32,
        address: "(555) 123-4567".into(),
        reason: pb::SuppressionReason::OptedOut as i32,
        note: "replied STOP".into(),
        ..Default::default()
    };
    let added = staff.add_suppression(suppression.clone()).await.unwrap();
    assert_eq!((added.address.as_str(), added.creator_id.as_str()), ("+15551234567", agent.id.as_str()));
    // Adding it again (a second STOP) returns it as it was.
    assert_eq!(staff.add_suppression(pb::Suppression { note: "again".into(), ..suppression }).await.unwrap(), added);

    let to_lead = |transactional| pb::SendMessageRequest {
        envelope: Some(pb::Envelope {
            channel: pb::Channel::Sms as i32,
            to_address: "555-123-4567".into(),
            transactional,
            ..Default::default()
        }),
        ..text(&conversation.id, "New listings near you")
    };
    let refused = assert_code(staff.send_message(to_lead(false)).await, Code::FailedPrecondition);
    assert!(refused.message().contains("+15551234567 is suppressed on sms (opted_out"), "{refused:?}");
    assert_eq!(staff.messages_in(&conversation.id).await.unwrap().total_size, 0, "nothing was stored");
    let receipt = staff.send_message(to_lead(true)).await.unwrap();
    assert!(receipt.envelope.as_ref().unwrap().transactional);
    // What comes from the address is not refused; nor the same number on another channel.
    staff
        .send_message(pb::SendMessageRequest {
            direction: pb::Direction::Incoming as i32,
            envelope: sms("+1 555 123 4567", ""),
            ..text(&conversation.id, "STOP")
        })
        .await
        .unwrap();
    let whatsapp =
        pb::Envelope { channel: pb::Channel::Whatsapp as i32, to_address: "+15551234567".into(), ..Default::default() };
    staff
        .send_message(pb::SendMessageRequest { envelope: Some(whatsapp), ..text(&conversation.id, "wa") })
        .await
        .unwrap();

    let listed = staff.list_suppressions(pb::ListSuppressionsRequest::default()).await.unwrap();
    assert_eq!(listed.suppressions, vec![added.clone()]);
    let asked = pb::ListSuppressionsRequest {
        channel: pb::Channel::Sms as i32,
        address: "+1 (555) 123-4567".into(),
        ..Default::default()
    };
    assert_eq!(staff.list_suppressions(asked).await.unwrap().suppressions.len(), 1);

    staff.remove_suppression(pb::Channel::Sms, "5551234567").await.unwrap();
    staff.send_message(to_lead(false)).await.unwrap();
    assert_code(staff.remove_suppression(pb::Channel::Sms, "5551234567").await, Code::NotFound);

    let member = app.session(&app.member("Lead").await);
    assert_code(member.list_suppressions(Default::default()).await, Code::PermissionDenied);
    assert_code(member.add_suppression(added.clone()).await, Code::PermissionDenied);
    assert_invalid(
        staff.add_suppression(pb::Suppression { channel: pb::Channel::InApp as i32, ..added.clone() }).await,
        "suppression.channel",
    );
    assert_invalid(
        staff.add_suppression(pb::Suppression { address: "call me".into(), ..added.clone() }).await,
        "suppression.address",
    );
    assert_invalid(staff.add_suppression(pb::Suppression { reason: 0, ..added.clone() }).await, "suppression.reason");
    // Suppressions are the account's own.
    let other = app.session(&app.other_account_agent().await);
    assert!(other.list_suppressions(Default::default()).await.unwrap().suppressions.is_empty());
}

#[tokio::test]
async fn suppressions_page_newest_first() {
    let app = spawn_app().await;
    let staff = app.session(&app.admin);
    for n in 0..5 {
        staff
            .add_suppression(pb::Suppression {
                channel: pb::Channel::Email as i32,
                address: format!("lead{n}@example.com"),
                reason: pb::SuppressionReason::Bounced as i32,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = staff
            .list_suppressions(pb::ListSuppressionsRequest { page_size: 2, page_token: token, ..Default::default() })
            .await
            .unwrap();
        seen.extend(page.suppressions.into_iter().map(|s| s.address));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let expected: Vec<String> = (0..5).rev().map(|n| format!("lead{n}@example.com")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_raw_payload_is_kept_for_staff_and_never_shown_elsewhere() {
    let app = spawn_app().await;
    let agent = app.agent("CRM").await;
    let lead = app.member("Lead").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead")]).await;
    let relay = app.session(&agent);
    let payload = br#"{"From":"+15551234567","Body":"secret-raw-marker"}"#.to_vec();
    let mut lead_stream = app.session(&lead).subscribe_after("").await.unwrap();
    let incoming = relay
        .send_message(pb::SendMessageRequest {
            direction: pb::Direction::Incoming as i32,
            envelope: sms("(555) 123-4567", ""),
            raw_payload: payload.clone(),
            ..text(&conversation.id, "Is it still available?")
        })
        .await
        .unwrap();
    let kept = relay.raw_payload(&incoming.id).await.unwrap();
    assert_eq!((kept.message_id.as_str(), kept.data.as_slice()), (incoming.id.as_str(), payload.as_slice()));

    // Not in any read or event: the bytes appear in no encoded message a member gets.
    let marker = b"secret-raw-marker";
    let contains = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker);
    use prost::Message as _;
    let member = app.session(&lead);
    assert!(!contains(&member.get_message(&incoming.id).await.unwrap().encode_to_vec()));
    assert!(!contains(&relay.get_message(&incoming.id).await.unwrap().encode_to_vec()));
    let created = next_of_type(&mut lead_stream, pb::EventType::MessageCreated, 1).await;
    assert!(!contains(&created[0].encode_to_vec()));
    assert_code(member.raw_payload(&incoming.id).await, Code::PermissionDenied);

    assert_code(
        member
            .send_message(pb::SendMessageRequest {
                envelope: sms("(555) 123-4567", ""),
                raw_payload: b"x".to_vec(),
                ..text(&conversation.id, "x")
            })
            .await,
        Code::PermissionDenied,
    );
    assert_invalid(
        relay.send_message(pb::SendMessageRequest { raw_payload: b"x".to_vec(), ..text(&conversation.id, "x") }).await,
        "raw_payload",
    );
    assert_invalid(
        relay
            .send_message(pb::SendMessageRequest {
                envelope: sms("(555) 123-4567", ""),
                raw_payload: vec![b'x'; 64 * 1024 + 1],
                ..text(&conversation.id, "x")
            })
            .await,
        "raw_payload",
    );

    // A delivery report's payload replaces what was kept; a deleted message keeps none.
    let (relay, _, sent, _) = outgoing_sms(&app).await;
    assert_code(relay.raw_payload(&sent.id).await, Code::NotFound);
    let receipt = pb::ReportDeliveryRequest {
        raw_payload: b"{\"MessageStatus\":\"delivered\"}".to_vec(),
        ..report(&sent.id, pb::DeliveryState::Delivered)
    };
    relay.report_delivery(receipt).await.unwrap();
    assert_eq!(relay.raw_payload(&sent.id).await.unwrap().data, b"{\"MessageStatus\":\"delivered\"}");
    relay.delete_message(&incoming.id).await.unwrap();
    assert_code(relay.raw_payload(&incoming.id).await, Code::NotFound);
}

#[tokio::test]
async fn staff_mark_messages_and_conversations_handled_and_filter_their_inbox() {
    let app = spawn_app().await;
    let agent = app.agent("Support").await;
    let lead = app.member("Customer").await;
    let open = app.conversation(&lead, &[(&agent, "support")]).await;
    let done = app.conversation(&lead, &[(&agent, "support")]).await;
    let question = app.send(&lead, &done.id, "Where is my order?").await;
    let staff = app.session(&agent);
    let member = app.session(&lead);
    let mut staff_stream = app.session(&app.admin).subscribe_after("").await.unwrap();

    let handled = staff.set_message_handled(&question.id, true).await.unwrap();
    let mark = handled.handled.clone().expect("marked");
    assert_eq!(mark.handler_id, agent.id);
    // Again: nothing changes, no second event.
    assert_eq!(staff.set_message_handled(&question.id, true).await.unwrap().handled, Some(mark));
    assert!(member.get_message(&question.id).await.unwrap().handled.is_none(), "staff's own business");
    assert_code(member.set_message_handled(&question.id, false).await, Code::PermissionDenied);

    let conversation = staff.set_conversation_handled(&done.id, true).await.unwrap();
    assert_eq!(conversation.handled.as_ref().map(|h| h.handler_id.as_str()), Some(agent.id.as_str()));
    assert!(member.get_conversation(&done.id).await.unwrap().handled.is_none());
    assert_code(member.set_conversation_handled(&done.id, false).await, Code::PermissionDenied);

    let inbox = |handled| pb::ListConversationsRequest { handled: Some(handled), ..Default::default() };
    let ids = |response: pb::ListConversationsResponse| -> Vec<String> {
        response.conversations.into_iter().map(|c| c.id).collect()
    };
    assert_eq!(ids(staff.list_conversations(inbox(false)).await.unwrap()), vec![open.id.clone()]);
    assert_eq!(ids(staff.list_conversations(inbox(true)).await.unwrap()), vec![done.id.clone()]);
    assert_code(member.list_conversations(inbox(true)).await, Code::PermissionDenied);

    let events = next_of_type(&mut staff_stream, pb::EventType::MessageHandled, 1).await;
    let Some(pb::event::Payload::Message(message)) = &events[0].payload else { panic!("{events:?}") };
    assert!(message.handled.is_some());
    next_of_type(&mut staff_stream, pb::EventType::ConversationHandled, 1).await;
    staff.set_message_handled(&question.id, false).await.unwrap();
    let unmarked = next_of_type(&mut staff_stream, pb::EventType::MessageHandled, 1).await;
    let Some(pb::event::Payload::Message(message)) = &unmarked[0].payload else { panic!("{unmarked:?}") };
    assert!(message.handled.is_none());
    // The customer writing again reopens the conversation; staff's replies do not.
    app.send(&agent, &done.id, "It ships tomorrow.").await;
    assert!(staff.get_conversation(&done.id).await.unwrap().handled.is_some(), "a staff reply keeps the mark");
    app.send(&lead, &done.id, "Thanks! One more question.").await;
    assert!(staff.get_conversation(&done.id).await.unwrap().handled.is_none(), "the customer reopened it");
    let reopened = next_of_type(&mut staff_stream, pb::EventType::ConversationHandled, 1).await;
    let Some(pb::event::Payload::Conversation(conversation)) = &reopened[0].payload else { panic!("{reopened:?}") };
    assert!(conversation.handled.is_none());
    assert_eq!(ids(staff.list_conversations(inbox(true)).await.unwrap()), Vec::<String>::new());
    // The member's stream, replaying everything, carries none of it.
    let mut member_stream = member.subscribe_after("0").await.unwrap();
    let member_events = crate::helpers::events_until_heartbeat(&mut member_stream).await;
    let staff_kinds = [pb::EventType::MessageHandled as i32, pb::EventType::ConversationHandled as i32];
    assert!(member_events.iter().all(|e| !staff_kinds.contains(&e.r#type)), "{member_events:?}");
}

#[tokio::test]
async fn the_seeds_phone_spellings_are_stored_in_e164_for_users_and_envelopes_alike() {
    let app = spawn_app().await;
    let admin = app.session(&app.admin);
    for spelling in ["(555) 123-4567", "555-123-4567", "+1 555 123 4567", "5551234567"] {
        let user = admin
            .create_user(pb::CreateUserRequest {
                user: Some(pb::User {
                    role: pb::Role::Member as i32,
                    display_name: "Lead".into(),
                    phone: spelling.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(user.phone, "+15551234567", "{spelling}");
        let conversation = app.conversation(&app.admin, &[]).await;
        let sent = admin
            .send_message(pb::SendMessageRequest {
                direction: pb::Direction::Incoming as i32,
                envelope: sms(spelling, ""),
                ..text(&conversation.id, "hi")
            })
            .await
            .unwrap();
        assert_eq!(sent.envelope.unwrap().from_address, "+15551234567", "{spelling}");
    }
    let refused = admin
        .create_user(pb::CreateUserRequest {
            user: Some(pb::User {
                role: pb::Role::Member as i32,
                display_name: "X".into(),
                phone: "555-1234".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert_invalid(refused, "user.phone");
}

#[tokio::test]
async fn a_scheduled_message_to_an_address_suppressed_meanwhile_fails_at_its_time() {
    let app = spawn_app().await;
    let (staff, conversation, _, _) = outgoing_sms(&app).await;
    let later = pb::SendMessageRequest {
        envelope: sms("", "(415) 555-2671"),
        schedule_time: Some(crate::helpers::in_future(std::time::Duration::from_secs(3600))),
        ..text(&conversation.id, "Reminder: viewing tomorrow")
    };
    let scheduled = staff.send_message(later.clone()).await.unwrap();
    let opted_out = pb::Suppression {
        channel: pb::Channel::Sms as i32,
        address: "+14155552671".into(),
        reason: pb::SuppressionReason::OptedOut as i32,
        ..Default::default()
    };
    staff.add_suppression(opted_out).await.unwrap();
    // Known now, so refused now.
    assert_code(staff.send_message(later).await, Code::FailedPrecondition);
    // Due (sent now): it fails with the reason, once, instead of waiting to be retried.
    let _ = staff.send_scheduled_now(&scheduled.id).await;
    let failed = staff.get_scheduled(&scheduled.id).await.unwrap();
    assert_eq!(failed.state, pb::MessageState::Failed as i32);
    assert!(failed.failure_reason.contains("is suppressed on sms"), "{}", failed.failure_reason);
}

#[tokio::test]
async fn a_private_note_is_never_offered_to_a_relay() {
    let app = spawn_app().await;
    let (relay, conversation, _, _) = outgoing_sms(&app).await;
    let note = relay
        .send_message(pb::SendMessageRequest {
            private: true,
            envelope: sms("", "(415) 555-2671"),
            ..text(&conversation.id, "internal: call her back")
        })
        .await
        .unwrap();
    assert!(note.envelope.as_ref().unwrap().delivery.is_none(), "a note has no delivery");
    assert_code(relay.report_delivery(report(&note.id, pb::DeliveryState::Sent)).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn a_relay_hears_of_a_pending_message_deleted_and_reports_on_it_no_more() {
    let app = spawn_app().await;
    let (relay, _, sent, _) = outgoing_sms(&app).await;
    let mut stream = relay
        .subscribe(pb::SubscribeRequest {
            after: "0".into(),
            types: vec![pb::EventType::MessageCreated as i32, pb::EventType::MessageDeleted as i32],
            channels: vec![pb::Channel::Sms as i32],
            delivery_states: vec![pb::DeliveryState::Pending as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    relay.delete_message(&sent.id).await.unwrap();
    let seen = next_events(&mut stream, 2).await;
    let kinds: Vec<i32> = seen.iter().map(|event| event.r#type).collect();
    assert_eq!(kinds, [pb::EventType::MessageCreated as i32, pb::EventType::MessageDeleted as i32]);
    let refused =
        assert_code(relay.report_delivery(report(&sent.id, pb::DeliveryState::Sent)).await, Code::FailedPrecondition);
    assert!(refused.message().contains("deleted"), "{refused:?}");
}

#[tokio::test]
async fn an_email_suppression_holds_whatever_the_case() {
    let app = spawn_app().await;
    let (staff, conversation, _, _) = outgoing_sms(&app).await;
    let bounced = pb::Suppression {
        channel: pb::Channel::Email as i32,
        address: "Buyer@Example.com".into(),
        reason: pb::SuppressionReason::Bounced as i32,
        ..Default::default()
    };
    assert_eq!(staff.add_suppression(bounced).await.unwrap().address, "buyer@example.com");
    let mail = pb::Envelope {
        channel: pb::Channel::Email as i32,
        to_address: "BUYER@example.COM".into(),
        ..Default::default()
    };
    let refused = staff.send_message(pb::SendMessageRequest { envelope: Some(mail), ..text(&conversation.id, "x") });
    assert_code(refused.await, Code::FailedPrecondition);
}
