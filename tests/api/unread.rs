//! Unread counts are exact: the stored counters always equal a recount from the messages,
//! whatever happens and however concurrently.

use missive::api::pb;
use prost_types::FieldMask;

use crate::helpers::{authed, note, spawn_app, text};

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
            let (messages, conversations_client) = (app.messages(), app.conversations());
            let (buyer, seller, conversation_id) = (buyer.clone(), seller.clone(), conversation_id.clone());
            tasks.push(tokio::spawn(async move {
                let (mut messages, mut conversations_client) = (messages, conversations_client);
                let sent = messages
                    .send_message(authed(&buyer.key, text(&conversation_id, &format!("round {round}"))))
                    .await
                    .unwrap()
                    .into_inner();
                let ids = if round % 3 == 0 { vec![sent.id] } else { vec![] };
                conversations_client
                    .mark_read(authed(&seller.key, pb::MarkReadRequest { conversation_id, message_ids: ids }))
                    .await
                    .unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    app.assert_no_unread_drift().await;
    assert_eq!(app.unread(&agent).await, (40, 4), "the agent read nothing");
    let (seller_unread, _) = app.unread(&seller).await;
    let recount: i64 = futures::future::join_all(conversations.iter().map(|id| app.get_conversation(&seller, id)))
        .await
        .into_iter()
        .map(|c| c.unwrap().unread_count)
        .sum();
    assert_eq!(seller_unread, recount);
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

    let marked = app
        .conversations()
        .mark_read(authed(
            &seller.key,
            pb::MarkReadRequest {
                conversation_id: conversation.id.clone(),
                message_ids: vec![first.id.clone(), third.id.clone(), own.id, first.id],
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(marked, pb::MarkReadResponse { marked: 2, unread_count: 1 });
    assert_eq!(app.unread(&seller).await, (1, 1));
    let again = app
        .conversations()
        .mark_read(authed(
            &seller.key,
            pb::MarkReadRequest { conversation_id: conversation.id.clone(), message_ids: vec![third.id] },
        ))
        .await
        .unwrap()
        .into_inner();
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
    let note = note(&conversation.id, "note");
    app.send_request(&agent, note).await.unwrap();
    app.send(&agent, &conversation.id, "public").await;

    assert_eq!(app.unread(&customer).await, (1, 1));
    assert_eq!(app.unread(&supervisor).await, (2, 1));

    app.admin_client()
        .update_user(authed(
            &app.admin.key,
            pb::UpdateUserRequest {
                user: Some(pb::User { id: supervisor.id.clone(), role: pb::Role::Member as i32, ..Default::default() }),
                update_mask: Some(FieldMask { paths: vec!["role".into()] }),
            },
        ))
        .await
        .unwrap();

    assert_eq!(app.unread(&supervisor).await, (1, 1), "a member does not see notes");
    app.assert_no_unread_drift().await;
}
