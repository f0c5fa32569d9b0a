//! Attachments by reference (seed 003's `attachments: (string | Attachment)[]`): a link the
//! server never fetches, or an attachment the caller may read, forwarded without sending
//! or storing its bytes again.

use std::time::Duration;

use missive::api::pb;
use tonic::Code;

use crate::helpers::{assert_code, assert_invalid, in_future, spawn_app, text};

fn document(conversation_id: &str, file: pb::NewAttachment) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        kind: pb::MessageKind::Document as i32,
        attachments: vec![file],
        ..text(conversation_id, "")
    }
}

fn upload(filename: &str, data: &[u8]) -> pb::NewAttachment {
    pb::NewAttachment {
        filename: filename.into(),
        media_type: "application/pdf".into(),
        data: data.to_vec(),
        ..Default::default()
    }
}

fn forward(attachment_id: &str) -> pb::NewAttachment {
    pb::NewAttachment { attachment_id: attachment_id.into(), ..Default::default() }
}

#[tokio::test]
async fn a_link_is_kept_as_given_and_never_fetched() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("Buyer").await, app.member("Seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let session = app.session(&buyer);
    let link = pb::NewAttachment {
        url: "https://cdn.example.com/docs/Price%20list.pdf?v=2".into(),
        media_type: "application/pdf".into(),
        size_bytes: 48_213,
        ..Default::default()
    };
    let sent = session.send_message(document(&conversation.id, link.clone())).await.unwrap();
    let file = &sent.attachments[0];
    assert_eq!(
        (file.filename.as_str(), file.url.as_str(), file.size_bytes, file.sha256.as_str()),
        ("Price list.pdf", "https://cdn.example.com/docs/Price%20list.pdf?v=2", 48_213, "")
    );
    // Described, with no bytes: the file is at its link.
    let content = app.session(&seller).get_attachment(&file.id).await.unwrap();
    assert_eq!((content.attachment.unwrap().url, content.data.len()), (link.url.clone(), 0));
    assert_eq!(app.kept_files().await, 0, "no bytes are kept for a link");

    for bad in ["http://cdn.example.com/a.pdf", "cdn.example.com/a.pdf", "javascript:alert(1)", "https://"] {
        let file = pb::NewAttachment { url: bad.into(), ..link.clone() };
        assert_invalid(session.send_message(document(&conversation.id, file)).await, "attachments[0].url");
    }
    let both = pb::NewAttachment { data: b"%PDF".to_vec(), ..link.clone() };
    assert_invalid(session.send_message(document(&conversation.id, both)).await, "attachments[0]");
    let image = pb::SendMessageRequest {
        kind: pb::MessageKind::Image as i32,
        ..document(&conversation.id, pb::NewAttachment { media_type: String::new(), ..link.clone() })
    };
    assert_invalid(session.send_message(image).await, "attachments[0].media_type");
    let sized_upload = pb::NewAttachment { size_bytes: 4, ..upload("a.pdf", b"%PDF") };
    assert_invalid(session.send_message(document(&conversation.id, sized_upload)).await, "attachments[0].size_bytes");
}

#[tokio::test]
async fn a_forwarded_file_is_stored_once_and_outlives_its_first_message() {
    let app = spawn_app().await;
    let (buyer, seller, agent) = (app.member("Buyer").await, app.member("Seller").await, app.agent("Agent").await);
    let first = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let second = app.conversation(&seller, &[(&agent, "support")]).await;
    let contract = b"%PDF-1.7 the signed contract".to_vec();
    let original = app.session(&buyer).send_message(document(&first.id, upload("contract.pdf", &contract))).await;
    let original = original.unwrap();
    let original_file = original.attachments[0].clone();
    assert_eq!(app.kept_files().await, 1);

    // The seller, who can read it, forwards it to support, renamed.
    let renamed = pb::NewAttachment { filename: "buyer-contract.pdf".into(), ..forward(&original_file.id) };
    let forwarded = app.session(&seller).send_message(document(&second.id, renamed)).await.unwrap();
    let file = &forwarded.attachments[0];
    assert_ne!(file.id, original_file.id);
    assert_eq!(
        (file.filename.as_str(), file.media_type.as_str(), file.size_bytes, file.sha256.as_str()),
        ("buyer-contract.pdf", "application/pdf", original_file.size_bytes, original_file.sha256.as_str())
    );
    assert_eq!(app.kept_files().await, 1, "the bytes are kept once");
    // The same bytes uploaded again are not kept twice either.
    app.session(&agent).send_message(document(&second.id, upload("again.pdf", &contract))).await.unwrap();
    assert_eq!(app.kept_files().await, 1);

    // Deleting the first message leaves the bytes the others name; deleting them all, none.
    app.session(&buyer).delete_message(&original.id).await.unwrap();
    assert_code(app.session(&buyer).get_attachment(&original_file.id).await, Code::NotFound);
    assert_eq!(app.session(&agent).get_attachment(&file.id).await.unwrap().data, contract);
    for message in app.session(&agent).messages_in(&second.id).await.unwrap().messages {
        app.session(&agent).delete_message(&message.id).await.unwrap();
    }
    assert_eq!(app.kept_files().await, 0, "no message names the bytes any more");
}

#[tokio::test]
async fn only_a_file_the_caller_may_read_is_forwarded() {
    let app = spawn_app().await;
    let (buyer, seller, outsider) = (app.member("Buyer").await, app.member("Seller").await, app.member("X").await);
    let private = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let own = app.conversation(&outsider, &[]).await;
    let sent = app.session(&buyer).send_message(document(&private.id, upload("id.pdf", b"%PDF secret"))).await;
    let file_id = sent.unwrap().attachments[0].id.clone();
    let outsider = app.session(&outsider);
    let stolen = assert_code(outsider.send_message(document(&own.id, forward(&file_id))).await, Code::NotFound);
    assert!(stolen.message().contains(&file_id), "{stolen:?}");
    let made_up = format!("{}00000000", &file_id[..file_id.len() - 8]);
    assert_code(outsider.send_message(document(&own.id, forward(&made_up))).await, Code::NotFound);
    let other_account = app.session(&app.other_account_agent().await);
    let theirs = other_account.create_conversation(Default::default()).await.unwrap().conversation.unwrap();
    assert_code(other_account.send_message(document(&theirs.id, forward(&file_id))).await, Code::NotFound);

    let seller = app.session(&seller);
    assert_invalid(
        seller.send_message(document(&private.id, forward("not-an-id"))).await,
        "attachments[0].attachment_id",
    );
    let typed = pb::NewAttachment { media_type: "image/png".into(), ..forward(&file_id) };
    assert_invalid(seller.send_message(document(&private.id, typed)).await, "attachments[0].media_type");
    let as_image =
        pb::SendMessageRequest { kind: pb::MessageKind::Image as i32, ..document(&private.id, forward(&file_id)) };
    assert_invalid(seller.send_message(as_image).await, "attachments[0].attachment_id");
}

#[tokio::test]
async fn a_scheduled_message_forwards_a_file_when_it_is_sent() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("Buyer").await, app.member("Seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let sent = app.session(&buyer).send_message(document(&conversation.id, upload("plan.pdf", b"%PDF plan"))).await;
    let file_id = sent.unwrap().attachments[0].id.clone();
    let later = pb::SendMessageRequest {
        schedule_time: Some(in_future(Duration::from_secs(3600))),
        ..document(&conversation.id, forward(&file_id))
    };
    let session = app.session(&seller);
    let scheduled = session.send_message(later).await.unwrap();
    assert_eq!(scheduled.attachments[0].filename, "plan.pdf");
    let delivered = session.send_scheduled_now(&scheduled.id).await.unwrap();
    let content = session.get_attachment(&delivered.attachments[0].id).await.unwrap();
    assert_eq!(content.data, b"%PDF plan");
    assert_eq!(app.kept_files().await, 1);
}

/// Bytes dropped by one unit while others name them (an upload of the same bytes, a
/// forward) are never lost: on PostgreSQL these units run at once, and each must see
/// what the others committed. Every attachment that a send returned keeps its bytes.
#[tokio::test]
async fn bytes_named_while_another_send_drops_them_are_never_lost() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let (first, second, third) =
        (app.conversation(&agent, &[]).await, app.conversation(&agent, &[]).await, app.conversation(&agent, &[]).await);
    let session = app.session(&agent);
    for round in 0..15 {
        let bytes = format!("%PDF round {round}").into_bytes();
        let original = session.send_message(document(&first.id, upload("a.pdf", &bytes))).await.unwrap();
        let file_id = original.attachments[0].id.clone();
        let (deleted, uploaded, forwarded) = tokio::join!(
            session.delete_message(&original.id),
            session.send_message(document(&second.id, upload("b.pdf", &bytes))),
            session.send_message(document(&third.id, forward(&file_id))),
        );
        deleted.unwrap();
        let uploaded = uploaded.unwrap();
        assert_eq!(session.get_attachment(&uploaded.attachments[0].id).await.unwrap().data, bytes, "round {round}");
        match forwarded {
            Ok(message) => {
                let kept = session.get_attachment(&message.attachments[0].id).await.unwrap().data;
                assert_eq!(kept, bytes, "round {round}: a forward that was answered keeps its bytes");
            }
            // Forwarded after the original was deleted: refused, nothing half-stored.
            Err(status) => {
                assert!(matches!(status.code(), Code::NotFound | Code::FailedPrecondition), "round {round}: {status:?}")
            }
        }
    }
}
