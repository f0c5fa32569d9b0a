//! Unread counts are exact: the stored counters always equal a recount from the messages,
//! whatever happens and however concurrently.

use missive::api::pb;
use prost_types::FieldMask;

use crate::helpers::{TestUser, note, spawn_app, text};

/// How many of these messages are unread for `reader`, counted from what the API shows:
/// sent by someone else, not deleted, and with no read time in `reader`'s receipt.
fn unread_for(reader: &TestUser, messages: &[pb::Message]) -> i64 {
    let unread = messages.iter().filter(|message| message.sender_id != reader.id && message.delete_time.is_none());
    unread
        .filter(|message| {
            let receipt = message
                .read_receipts
                .iter()
                .find(|receipt| receipt.user_id == reader.id)
                .unwrap_or_else(|| panic!("no read receipt for the reader on {message:?}"));
            assert_eq!(receipt.read, receipt.read_time.is_some(), "{receipt:?}");
            receipt.read_time.is_none()
        })
        .count() as i64
}

#[tokio::test]
async fn concurrent_sends_and_reads_never_make_counters_drift() {
    let app = spawn_app().await;
    let mut buyers = Vec::new();
    for index in 0..4 {
        buyers.push(app.member(&format!("buyer {index}")).await);
    }
    let seller = app.member("seller").await;
    let agent = app.agent("agent").await;
    let mut conversations = Vec::new();
    for buyer in &buyers {
        conversations.push(app.conversation(buyer, &[(&seller, "seller"), (&agent, "agent")]).await.id);
    }

    let mut tasks = Vec::new();
    for (buyer, conversation_id) in buyers.iter().zip(&conversations) {
        for round in 0..10 {
            let (as_buyer, as_seller) = (app.session(buyer), app.session(&seller));
            let conversation_id = conversation_id.clone();
            tasks.push(tokio::spawn(async move {
                let sent = as_buyer.send_message(text(&conversation_id, &format!("round {round}"))).await.unwrap();
                let ids = if round % 3 == 0 { vec![sent.id] } else { vec![] };
                as_seller.mark_read(&conversation_id, &ids).await.unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    app.assert_no_unread_drift().await;
    assert_eq!(app.unread(&agent).await, (40, 4), "the agent read nothing");
    // A recount from the messages as the seller sees them, against both counters the API
    // reports: GetUnreadCount's totals and each conversation's unread_count.
    let as_seller = app.session(&seller);
    let mut recounted = Vec::new();
    for conversation_id in &conversations {
        let messages = as_seller.all_messages_in(conversation_id, 3).await.unwrap();
        assert_eq!(messages.len(), 10, "every page was read");
        let unread = unread_for(&seller, &messages);
        let stored = as_seller.get_conversation(conversation_id).await.unwrap().unread_count;
        assert_eq!(stored, unread, "the unread_count of {conversation_id}");
        recounted.push(unread);
    }
    let total: i64 = recounted.iter().sum();
    let with_unread = recounted.iter().filter(|&&unread| unread > 0).count() as i64;
    assert_eq!(app.unread(&seller).await, (total, with_unread), "GetUnreadCount against the recount {recounted:?}");
}

#[tokio::test]
async fn marking_some_messages_read_leaves_the_others_unread() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let first = app.send(&buyer, &conversation.id, "one").await;
    app.send(&buyer, &conversation.id, "two").await;
    let third = app.send(&buyer, &conversation.id, "three").await;
    let own = app.send(&seller, &conversation.id, "mine").await;
    let as_seller = app.session(&seller);

    let marked =
        as_seller.mark_read(&conversation.id, &[first.id.clone(), third.id.clone(), own.id, first.id]).await.unwrap();

    assert_eq!(marked, pb::MarkReadResponse { marked: 2, unread_count: 1 });
    assert_eq!(app.unread(&seller).await, (1, 1));
    let again = as_seller.mark_read(&conversation.id, &[third.id]).await.unwrap();
    assert_eq!(again, pb::MarkReadResponse { marked: 0, unread_count: 1 }, "reading twice counts once");
    app.assert_no_unread_drift().await;
}

#[tokio::test]
async fn private_notes_are_unread_for_staff_only_and_a_role_change_recounts() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let supervisor = app.agent("supervisor").await;
    let conversation =
        app.conversation(&agent, &[(&customer, "customer"), (&agent, "agent"), (&supervisor, "supervisor")]).await;
    app.session(&agent).send_message(note(&conversation.id, "note")).await.unwrap();
    app.send(&agent, &conversation.id, "public").await;

    assert_eq!(app.unread(&customer).await, (1, 1));
    assert_eq!(app.unread(&supervisor).await, (2, 1));

    app.as_admin()
        .update_user(pb::UpdateUserRequest {
            user: Some(pb::User { id: supervisor.id.clone(), role: pb::Role::Member as i32, ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["role".into()] }),
        })
        .await
        .unwrap();

    assert_eq!(app.unread(&supervisor).await, (1, 1), "a member does not see notes");
    app.assert_no_unread_drift().await;
}
