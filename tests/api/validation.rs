//! Bad input gets INVALID_ARGUMENT with a google.rpc.BadRequest naming the field, and
//! changes nothing.

use std::collections::BTreeMap;

use missive::api::pb;
use tonic::Code;

use crate::helpers::{assert_code, assert_invalid, spawn_app, spawn_app_with, text, violated_fields};

#[tokio::test]
async fn message_content_must_be_present_and_bounded() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);

    assert_invalid(as_buyer.send_message(text(&conversation.id, "")).await, "content");
    assert_invalid(as_buyer.send_message(text(&conversation.id, "   ")).await, "content");
    assert_invalid(as_buyer.send_message(text(&conversation.id, &"x".repeat(32 * 1024 + 1))).await, "content");
    let no_attachment = pb::SendMessageRequest { kind: pb::MessageKind::Image as i32, ..text(&conversation.id, "") };
    assert_invalid(as_buyer.send_message(no_attachment).await, "attachments");
    let too_much_metadata = pb::SendMessageRequest {
        metadata: (0..65).map(|i| (format!("k{i}"), "v".to_string())).collect::<BTreeMap<_, _>>(),
        ..text(&conversation.id, "hi")
    };
    assert_invalid(as_buyer.send_message(too_much_metadata).await, "metadata");
    // A malformed conversation id does not hide what else is wrong.
    let status = assert_code(as_buyer.send_message(text("conv_bad", "")).await, Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["content", "conversation_id"], "{status:?}");

    let listed = app.session(&seller).messages_in(&conversation.id).await.unwrap();
    assert_eq!(listed.total_size, 0, "nothing was stored");
}

#[tokio::test]
async fn an_attachment_over_the_configured_limit_is_rejected() {
    let app = spawn_app_with(|config| config.max_attachment_bytes = 1024).await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);
    let attachment = |size: usize| pb::NewAttachment {
        filename: "f.bin".into(),
        media_type: "application/octet-stream".into(),
        data: vec![7; size],
        ..Default::default()
    };

    let too_big = pb::SendMessageRequest {
        kind: pb::MessageKind::Document as i32,
        attachments: vec![attachment(1024), attachment(1025)],
        ..text(&conversation.id, "")
    };
    assert_invalid(as_buyer.send_message(too_big).await, "attachments[1].data");
    let bad_type = pb::SendMessageRequest {
        kind: pb::MessageKind::Document as i32,
        attachments: vec![pb::NewAttachment { media_type: "pdf".into(), ..attachment(10) }],
        ..text(&conversation.id, "")
    };
    assert_invalid(as_buyer.send_message(bad_type).await, "attachments[0].media_type");
    let fits = pb::SendMessageRequest {
        kind: pb::MessageKind::Document as i32,
        attachments: vec![attachment(1024)],
        ..text(&conversation.id, "")
    };
    let sent = as_buyer.send_message(fits).await.unwrap();

    // Stored whole: the recipient reads back the 1024 bytes and what describes them.
    let message = app.session(&seller).get_message(&sent.id).await.unwrap();
    let [described] = message.attachments.as_slice() else { panic!("one attachment: {message:?}") };
    assert_eq!(
        (described.filename.as_str(), described.media_type.as_str(), described.size_bytes),
        ("f.bin", "application/octet-stream", 1024)
    );
    let content = app.session(&seller).get_attachment(&described.id).await.unwrap();
    assert_eq!(content.data, vec![7; 1024]);
    assert_eq!(described.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content.data)));
    assert_eq!(content.message_id, sent.id);
}

#[tokio::test]
async fn every_invalid_field_of_a_create_is_named_at_once() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;

    let status = assert_code(
        app.session(&buyer)
            .create_conversation(pb::CreateConversationRequest {
                participants: vec![
                    pb::NewParticipant {
                        user_id: "usr_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
                        label: "seller".into(),
                    },
                    pb::NewParticipant { user_id: "bogus".into(), label: "x".into() },
                ],
                first_message: Some(text("", "")),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );

    let fields = violated_fields(&status);
    assert!(fields.contains(&"participants[1].user_id".to_string()), "{fields:?}");
    assert!(fields.contains(&"first_message.content".to_string()), "{fields:?}");
}

#[tokio::test]
async fn an_unknown_participant_is_named() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let unknown = "usr_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    let as_buyer = app.session(&buyer);

    let result = as_buyer
        .create_conversation(pb::CreateConversationRequest {
            participants: vec![pb::NewParticipant { user_id: unknown.into(), label: "seller".into() }],
            ..Default::default()
        })
        .await;

    assert_invalid(result, "participants[0].user_id");
    let listed = as_buyer
        .list_conversations(pb::ListConversationsRequest {
            status: pb::ConversationStatus::All as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.total_size, 0, "nothing was created");
}

#[tokio::test]
async fn page_sizes_ids_masks_and_enums_are_checked() {
    let app = spawn_app().await;
    let buyer = app.session(&app.member("buyer").await);

    assert_invalid(
        buyer.list_conversations(pb::ListConversationsRequest { page_size: -1, ..Default::default() }).await,
        "page_size",
    );
    // Above the maximum is capped (AIP-158), not refused.
    buyer.list_conversations(pb::ListConversationsRequest { page_size: 5000, ..Default::default() }).await.unwrap();
    assert_invalid(buyer.get_conversation("msg_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa").await, "id");
    assert_invalid(
        buyer
            .update_conversation(pb::UpdateConversationRequest {
                conversation: Some(pb::Conversation {
                    id: "conv_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await,
        "update_mask",
    );
    assert_invalid(
        buyer.list_conversations(pb::ListConversationsRequest { status: 99, ..Default::default() }).await,
        "status",
    );
    // A well-formed id that names nothing is not a validation error.
    assert_code(buyer.get_conversation("conv_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa").await, Code::NotFound);
}

#[tokio::test]
async fn nul_characters_are_rejected_on_every_backend() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);

    assert_invalid(as_buyer.send_message(text(&conversation.id, "a\0b")).await, "content");
    let bad_label = pb::ListConversationsRequest { label: "x\0".into(), ..Default::default() };
    assert_invalid(as_buyer.list_conversations(bad_label).await, "label");
    let bad_subject = pb::CreateConversationRequest {
        subject: Some(pb::Subject {
            kind: "listing".into(),
            external_id: "\0".into(),
            title: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_invalid(as_buyer.create_conversation(bad_subject).await, "subject.external_id");
}

#[tokio::test]
async fn a_request_id_names_one_message_only() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let first = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let second = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);
    as_buyer.send_message(pb::SendMessageRequest { request_id: "r1".into(), ..text(&first.id, "once") }).await.unwrap();

    let elsewhere = pb::SendMessageRequest { request_id: "r1".into(), ..text(&second.id, "again") };
    assert_invalid(as_buyer.send_message(elsewhere).await, "request_id");
    let as_first_message = pb::CreateConversationRequest {
        participants: vec![pb::NewParticipant { user_id: seller.id.clone(), label: "seller".into() }],
        first_message: Some(pb::SendMessageRequest { request_id: "r1".into(), ..text("", "hi") }),
        ..Default::default()
    };
    assert_invalid(as_buyer.create_conversation(as_first_message).await, "first_message.request_id");
}

#[tokio::test]
async fn an_edit_is_held_to_the_limits_of_a_send() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let sent = app.send(&buyer, &conversation.id, "hello").await;
    let as_buyer = app.session(&buyer);
    let edit = |content: String| pb::UpdateMessageRequest {
        message: Some(pb::Message { id: sent.id.clone(), content, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["content".into()] }),
    };

    assert_invalid(as_buyer.update_message(edit(String::new())).await, "message.content");
    assert_invalid(as_buyer.update_message(edit("y".repeat(32 * 1024 + 1))).await, "message.content");
}

/// Thousands of bad elements get the first twenty violations and a count of the rest: an
/// answer no larger than a client accepts, and still INVALID_ARGUMENT.
#[tokio::test]
async fn a_request_with_many_bad_elements_gets_a_bounded_answer() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let participants = (0..5000)
        .map(|index| pb::NewParticipant { user_id: format!("not-an-id-{index}"), label: "x".repeat(10) })
        .collect();
    let request = pb::CreateConversationRequest { participants, ..Default::default() };

    let status = assert_code(app.session(&buyer).create_conversation(request).await, Code::InvalidArgument);

    let fields = violated_fields(&status);
    assert_eq!(fields.len(), 20, "{fields:?}");
    assert_eq!(fields[0], "participants");
    assert!(status.message().ends_with("; and 4981 more"), "{}", &status.message()[status.message().len() - 60..]);
    assert!(status.message().len() < 4096, "{} bytes", status.message().len());
}

/// Inputs that are not content are bounded too: a filter longer than anything stored, and
/// a Subscribe listing types past the number that exist.
#[tokio::test]
async fn filters_and_subscription_types_are_bounded() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let session = app.session(&buyer);
    let long_label = pb::ListConversationsRequest { label: "x".repeat(10_000), ..Default::default() };
    assert_invalid(session.list_conversations(long_label).await, "label");
    let fine = pb::ListConversationsRequest { label: "x".repeat(1024), ..Default::default() };
    assert!(session.list_conversations(fine).await.unwrap().conversations.is_empty());

    let many_types =
        pb::SubscribeRequest { types: vec![pb::EventType::MessageCreated as i32; 1_000], ..Default::default() };
    assert_invalid(session.subscribe(many_types).await, "types");
}
