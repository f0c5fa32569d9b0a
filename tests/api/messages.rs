//! MessageService: send, get with views, list with bounds, edit, delete, attachments.

use std::collections::BTreeMap;

use missive::api::pb;
use prost_types::{FieldMask, Struct, Value, value::Kind};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::helpers::{assert_code, micros, spawn_app, text};

fn list_request(conversation_id: &str) -> pb::ListMessagesRequest {
    pb::ListMessagesRequest { conversation_id: conversation_id.into(), ..Default::default() }
}

#[tokio::test]
async fn a_message_reads_back_with_its_sender_and_conversation_in_the_full_view() {
    let app = spawn_app().await;
    let lead = app.member("Lead").await;
    let agent = app.agent("Agent").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead"), (&agent, "agent")]).await;
    let sent = app
        .session(&agent)
        .send_message(pb::SendMessageRequest {
            metadata: BTreeMap::from([("offer_request_id".to_string(), "17".to_string())]),
            ..text(&conversation.id, "Let us bump this offer up to $380k")
        })
        .await
        .unwrap();
    let as_lead = app.session(&lead);

    let basic = as_lead.get_message(&sent.id).await.unwrap();
    let full = as_lead.get_message_in(&sent.id, pb::View::Full).await.unwrap();

    assert!(sent.id.starts_with("msg_"));
    assert_eq!(basic.content, "Let us bump this offer up to $380k");
    assert_eq!(basic.metadata["offer_request_id"], "17");
    assert_eq!(basic.direction, pb::Direction::Outgoing as i32, "staff write outgoing by default");
    assert_eq!(basic.kind, pb::MessageKind::Text as i32);
    assert!(basic.sender.is_none() && basic.conversation.is_none());
    assert_eq!(full.sender.unwrap().display_name, "Agent");
    assert_eq!(full.conversation.unwrap().id, conversation.id);
    assert_eq!(basic.read_receipts, vec![pb::ReadReceipt { user_id: lead.id.clone(), read: false, read_time: None }]);
}

#[tokio::test]
async fn structured_content_round_trips() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&agent, &[(&customer, "customer")]).await;
    let options = Struct {
        fields: [(
            "items".to_string(),
            Value {
                kind: Some(Kind::ListValue(prost_types::ListValue {
                    values: vec![
                        Value { kind: Some(Kind::StringValue("yes".into())) },
                        Value { kind: Some(Kind::StringValue("no".into())) },
                    ],
                })),
            },
        )]
        .into(),
    };

    let sent = app
        .session(&agent)
        .send_message(pb::SendMessageRequest {
            content_type: pb::ContentType::InputSelect as i32,
            content_attributes: Some(options.clone()),
            direction: pb::Direction::Outgoing as i32,
            kind: pb::MessageKind::QuickReply as i32,
            ..text(&conversation.id, "Still interested?")
        })
        .await
        .unwrap();

    let read = app.session(&customer).get_message(&sent.id).await.unwrap();
    assert_eq!(read.content_type, pb::ContentType::InputSelect as i32);
    assert_eq!(read.content_attributes, Some(options));
    assert_eq!(read.kind, pb::MessageKind::QuickReply as i32);
}

#[tokio::test]
async fn attachments_are_stored_inline_and_fetched_back_by_id() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let pdf: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();

    let sent = app
        .session(&seller)
        .send_message(pb::SendMessageRequest {
            kind: pb::MessageKind::Document as i32,
            content: "Here are the service records".into(),
            attachments: vec![pb::NewAttachment {
                filename: "records.pdf".into(),
                media_type: "application/pdf".into(),
                data: pdf.clone(),
                ..Default::default()
            }],
            ..text(&conversation.id, "")
        })
        .await
        .unwrap();

    assert_eq!(sent.attachments.len(), 1);
    let attachment = &sent.attachments[0];
    assert_eq!(attachment.size_bytes, pdf.len() as i64);
    assert_eq!(attachment.sha256, hex::encode(Sha256::digest(&pdf)));
    let fetched = app.session(&buyer).get_attachment(&attachment.id).await.unwrap();
    assert_eq!(fetched.data, pdf);
    assert_eq!(fetched.message_id, sent.id);
    assert_eq!(fetched.attachment.unwrap().filename, "records.pdf");
    let stranger = app.member("stranger").await;
    assert_code(app.session(&stranger).get_attachment(&attachment.id).await, Code::NotFound);
}

#[tokio::test]
async fn editing_keeps_the_message_and_records_when() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let sent = app.send(&buyer, &conversation.id, "typo").await;

    let edited = app
        .session(&buyer)
        .update_message(pb::UpdateMessageRequest {
            message: Some(pb::Message {
                id: sent.id.clone(),
                content: "fixed".into(),
                metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["content".into()] }),
        })
        .await
        .unwrap();

    assert_eq!(edited.content, "fixed");
    assert!(edited.metadata.is_empty(), "metadata was not in the mask");
    assert!(edited.edit_time.is_some());
    assert_eq!(edited.create_time, sent.create_time);
    assert_eq!(app.session(&seller).get_conversation(&conversation.id).await.unwrap().unread_count, 1);
}

#[tokio::test]
async fn deleting_leaves_a_tombstone_in_its_place() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let first = app.send(&buyer, &conversation.id, "first").await;
    let as_buyer = app.session(&buyer);
    let as_seller = app.session(&seller);
    let doomed = as_buyer
        .send_message(pb::SendMessageRequest {
            kind: pb::MessageKind::Image as i32,
            attachments: vec![pb::NewAttachment {
                filename: "a.png".into(),
                media_type: "image/png".into(),
                data: vec![1, 2, 3],
                ..Default::default()
            }],
            ..text(&conversation.id, "")
        })
        .await
        .unwrap();
    let last = app.send(&buyer, &conversation.id, "last").await;

    let deleted = as_buyer.delete_message(&doomed.id).await.unwrap();

    assert!(deleted.delete_time.is_some());
    assert!(deleted.attachments.is_empty());
    let listed = as_seller.messages_in(&conversation.id).await.unwrap();
    let shape: Vec<(i64, String, bool)> =
        listed.messages.iter().map(|m| (m.sequence, m.content.clone(), m.delete_time.is_some())).collect();
    assert_eq!(shape, vec![(1, "first".into(), false), (2, String::new(), true), (3, "last".into(), false)]);
    assert_eq!(
        as_seller.get_conversation(&conversation.id).await.unwrap().unread_count,
        2,
        "a deleted message is no longer unread"
    );
    assert_code(as_seller.get_attachment(&doomed.attachments[0].id).await, Code::NotFound);
    assert_eq!((first.sequence, last.sequence), (1, 3));
    app.assert_no_unread_drift().await;
}

#[tokio::test]
async fn a_retried_send_with_the_same_request_id_sends_once() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let request = pb::SendMessageRequest { request_id: "send-1".into(), ..text(&conversation.id, "once") };

    let as_buyer = app.session(&buyer);
    let first = as_buyer.send_message(request.clone()).await.unwrap();
    let retried = as_buyer.send_message(request).await.unwrap();

    assert_eq!(first.id, retried.id);
    let listed = app.session(&seller).messages_in(&conversation.id).await.unwrap();
    assert_eq!(listed.total_size, 1);
    assert_eq!(app.unread(&seller).await, (1, 1));
}

#[tokio::test]
async fn reading_shows_in_the_senders_read_receipts() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let sent = app.send(&buyer, &conversation.id, "seen?").await;

    let marked = app.session(&seller).mark_all_read(&conversation.id).await.unwrap();

    assert_eq!(marked, pb::MarkReadResponse { marked: 1, unread_count: 0 });
    let read = app.session(&buyer).get_message(&sent.id).await.unwrap();
    assert_eq!(read.read_receipts.len(), 1);
    assert_eq!(read.read_receipts[0].user_id, seller.id);
    assert!(read.read_receipts[0].read);
    assert!(micros(read.read_receipts[0].read_time) >= micros(read.create_time));
}

#[tokio::test]
async fn listing_respects_time_bounds_and_order() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut sent = Vec::new();
    for index in 0..5 {
        sent.push(app.send(&buyer, &conversation.id, &format!("m{index}")).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let as_seller = app.session(&seller);
    let newest_first = as_seller
        .list_messages(pb::ListMessagesRequest { newest_first: true, ..list_request(&conversation.id) })
        .await
        .unwrap();
    let between = as_seller
        .list_messages(pb::ListMessagesRequest {
            after: sent[0].create_time,
            before: sent[4].create_time,
            ..list_request(&conversation.id)
        })
        .await
        .unwrap();

    let contents = |messages: &[pb::Message]| messages.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    assert_eq!(contents(&newest_first.messages), vec!["m4", "m3", "m2", "m1", "m0"]);
    assert_eq!(contents(&between.messages), vec!["m1", "m2", "m3"]);
    assert_eq!(between.total_size, 3);
}

#[tokio::test]
async fn a_failing_send_among_concurrent_ones_fails_alone() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let stranger = app.member("stranger").await;
    let theirs = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let elsewhere = app.conversation(&stranger, &[]).await;
    // Sent together, these share the writer's batches; every other one fails inside its
    // unit (the conversation is not the buyer's to see).
    let sends = (0..40).map(|index| {
        let session = app.session(&buyer);
        let target = if index % 2 == 0 { theirs.id.clone() } else { elsewhere.id.clone() };
        async move { (index, session.send_message(text(&target, &format!("{index}"))).await) }
    });
    for (index, result) in futures::future::join_all(sends).await {
        match result {
            Ok(message) => assert_eq!((index % 2, message.content), (0, index.to_string())),
            Err(status) => assert_eq!((index % 2, status.code()), (1, Code::NotFound), "{status:?}"),
        }
    }
    let stored = app.session(&seller).all_messages_in(&theirs.id, 100).await.unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(stored.iter().map(|m| m.sequence).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    assert!(app.session(&stranger).all_messages_in(&elsewhere.id, 100).await.unwrap().is_empty());
    assert_eq!(app.unread(&seller).await, (20, 1));
    app.assert_no_unread_drift().await;
}
