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

/// A user's role changes while staff send private notes and messages in its conversations
/// and add it to others (on PostgreSQL on several writer lanes at once): its counters still
/// equal a recount. Each role change recounts, healing what an earlier one got wrong, so
/// each episode checks right after its one change: member to agent, while notes are sent.
#[tokio::test]
async fn role_changes_racing_sends_notes_and_joins_leave_exact_counters() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let admin = app.as_admin();
    let set_role = |user_id: &str, role: pb::Role| {
        let user = pb::User { id: user_id.to_owned(), role: role as i32, ..Default::default() };
        let mask = FieldMask { paths: vec!["role".into()] };
        admin.update_user(pb::UpdateUserRequest { user: Some(user), update_mask: Some(mask) })
    };
    for episode in 0..8 {
        let user = app.member(&format!("changing {episode}")).await;
        let mut conversations = Vec::new();
        for _ in 0..6 {
            conversations.push(app.conversation(&agent, &[(&user, "customer")]).await.id);
        }
        let joined_later = app.conversation(&agent, &[]).await.id;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut sends = Vec::new();
        for (index, conversation_id) in conversations.iter().chain([&joined_later]).enumerate() {
            for sender in 0..2 {
                let (as_agent, conversation_id, sent) =
                    (app.session(&agent), conversation_id.clone(), std::sync::Arc::clone(&sent));
                let (user_id, joins) = (user.id.clone(), index == conversations.len() && sender == 0);
                sends.push(tokio::spawn(async move {
                    for round in 0..12 {
                        let request = if (sender + round) % 2 == 0 {
                            note(&conversation_id, "n")
                        } else {
                            text(&conversation_id, "m")
                        };
                        as_agent.send_message(request).await.unwrap();
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if joins && round == 6 {
                            as_agent.add_participant(&conversation_id, &user_id, "customer").await.unwrap();
                        }
                    }
                }));
            }
        }
        // The change comes once sends are under way, with most of them still to come.
        let total = sends.len() * 12;
        while sent.load(std::sync::atomic::Ordering::Relaxed) < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        set_role(&user.id, pb::Role::Agent).await.unwrap();
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < total, "the role change raced no send");
        for send in sends {
            send.await.unwrap();
        }
        app.assert_no_unread_drift().await;
    }
}
