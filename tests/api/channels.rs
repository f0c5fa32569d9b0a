//! Message envelopes: relayed email and SMS, validated per channel, deduplicated by the
//! channel's id, and shown to members on their own messages only.

use missive::api::pb;
use tonic::Code;

use crate::helpers::{assert_code, assert_invalid, next_events, spawn_app, text};

fn envelope(channel: pb::Channel, from: &str, to: &str, external_id: &str) -> Option<pb::Envelope> {
    Some(pb::Envelope {
        channel: channel as i32,
        from_address: from.into(),
        to_address: to.into(),
        external_id: external_id.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_relayed_sms_is_stored_in_e164_and_a_second_relay_is_refused() {
    let app = spawn_app().await;
    let agent = app.agent("CRM").await;
    let lead = app.member("Lead").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead")]).await;
    let relay = || pb::SendMessageRequest {
        envelope: envelope(pb::Channel::Sms, "(415) 555-2671", "+1 415 555 0100", "SM123"),
        ..text(&conversation.id, "Is it still available?")
    };

    let sent = app.session(&agent).send_message(relay()).await.unwrap();
    let stored = sent.envelope.clone().unwrap();
    assert_eq!((stored.from_address.as_str(), stored.to_address.as_str()), ("+14155552671", "+14155550100"));
    assert_eq!(stored.external_id, "SM123");
    let again = assert_code(app.session(&agent).send_message(relay()).await, Code::AlreadyExists);
    assert!(again.message().contains(&sent.id), "names the first message: {}", again.message());
    // Another channel may reuse the id.
    let email = pb::SendMessageRequest {
        envelope: envelope(pb::Channel::Email, "lead@example.com", "sales@example.com", "SM123"),
        ..text(&conversation.id, "Same id, other channel")
    };
    app.session(&agent).send_message(email).await.unwrap();
    assert_eq!(app.session(&agent).messages_in(&conversation.id).await.unwrap().total_size, 2);
}

#[tokio::test]
async fn addresses_must_fit_their_channel() {
    let app = spawn_app().await;
    let agent = app.agent("CRM").await;
    let conversation = app.conversation(&agent, &[]).await;
    let session = app.session(&agent);
    let send = |envelope| pb::SendMessageRequest { envelope, ..text(&conversation.id, "x") };
    assert_invalid(
        session.send_message(send(envelope(pb::Channel::Email, "not-an-email", "", ""))).await,
        "envelope.from_address",
    );
    assert_invalid(session.send_message(send(envelope(pb::Channel::Sms, "", "12", ""))).await, "envelope.to_address");
    assert_invalid(
        session.send_message(send(envelope(pb::Channel::Whatsapp, "a@b.example", "", ""))).await,
        "envelope.from_address",
    );
    assert_invalid(
        session.send_message(send(envelope(pb::Channel::InApp, "a@b.example", "", ""))).await,
        "envelope.channel",
    );
    assert_invalid(
        session.send_message(send(envelope(pb::Channel::Unspecified, "", "", "id"))).await,
        "envelope.channel",
    );
    assert_invalid(
        session.send_message(send(Some(pb::Envelope { channel: 42, ..Default::default() }))).await,
        "envelope.channel",
    );
    assert_invalid(
        session.send_message(send(envelope(pb::Channel::Email, "", "", &"x".repeat(256)))).await,
        "envelope.external_id",
    );
    let plain = session.send_message(send(envelope(pb::Channel::InApp, "", "", ""))).await.unwrap();
    assert!(plain.envelope.is_none(), "an in-app message has no envelope");
}

#[tokio::test]
async fn members_see_envelopes_on_their_own_messages_only() {
    let app = spawn_app().await;
    let agent = app.agent("CRM").await;
    let lead = app.member("Lead").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead"), (&buyer, "buyer")]).await;
    let mut buyer_stream = app.session(&buyer).subscribe_after("").await.unwrap();
    let mut agent_stream = app.session(&agent).subscribe_after("").await.unwrap();

    let relayed = pb::SendMessageRequest {
        envelope: envelope(pb::Channel::Email, "lead@example.com", "sales@example.com", ""),
        ..text(&conversation.id, "From my inbox")
    };
    let sent = app.session(&lead).send_message(relayed).await.unwrap();

    assert!(app.session(&lead).get_message(&sent.id).await.unwrap().envelope.is_some(), "the sender sees it");
    assert!(app.session(&agent).get_message(&sent.id).await.unwrap().envelope.is_some(), "staff see it");
    assert!(app.session(&buyer).get_message(&sent.id).await.unwrap().envelope.is_none());
    let listed = app.session(&buyer).messages_in(&conversation.id).await.unwrap();
    assert!(listed.messages[0].envelope.is_none());
    let inbox = app.session(&buyer).get_conversation(&conversation.id).await.unwrap();
    assert!(inbox.last_message.unwrap().envelope.is_none(), "nor on the inbox's last message");
    let message_of = |event: &pb::Event| match &event.payload {
        Some(pb::event::Payload::Message(message)) => message.clone(),
        other => panic!("not a message event: {other:?}"),
    };
    assert!(message_of(&next_events(&mut buyer_stream, 1).await[0]).envelope.is_none(), "nor in events");
    assert!(message_of(&next_events(&mut agent_stream, 1).await[0]).envelope.is_some());

    // External ids are a relay's dedupe keys: a member may neither take one before the
    // relay nor probe for one.
    let relayed_id = pb::SendMessageRequest {
        envelope: envelope(pb::Channel::Sms, "", "", "SM-next"),
        ..text(&conversation.id, "forged")
    };
    assert_code(app.session(&lead).send_message(relayed_id).await, Code::PermissionDenied);
}

#[tokio::test]
async fn a_duplicate_relay_names_the_first_message() {
    let app = spawn_app().await;
    let crm = app.agent("CRM").await;
    let other_relay = app.agent("Other relay").await;
    let lead = app.member("Lead").await;
    let conversation = app.conversation(&crm, &[(&lead, "lead")]).await;
    let relay = |content: &str| pb::SendMessageRequest {
        envelope: envelope(pb::Channel::Sms, "+14155552671", "", "SM1"),
        ..text(&conversation.id, content)
    };
    let first = app.session(&crm).send_message(relay("first")).await.unwrap();
    let refused = assert_code(app.session(&other_relay).send_message(relay("again")).await, Code::AlreadyExists);
    assert!(refused.message().contains(&first.id), "staff see every envelope: {}", refused.message());
}
