//! Keyset pagination: every item exactly once, even while new items arrive.

use std::collections::HashSet;

use missive::api::pb;

use crate::helpers::{assert_invalid, spawn_app};

#[tokio::test]
async fn paging_through_messages_sees_each_once_while_new_ones_arrive() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    for index in 0..25 {
        app.send(&buyer, &conversation.id, &format!("before {index}")).await;
    }

    let as_seller = app.session(&seller);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = as_seller
            .list_messages(pb::ListMessagesRequest {
                conversation_id: conversation.id.clone(),
                page_size: 10,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.messages.into_iter().map(|m| m.sequence));
        // Someone keeps talking while the client pages.
        app.send(&seller, &conversation.id, &format!("during {pages}")).await;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no message twice: {seen:?}");
    assert_eq!(seen, (1..=seen.len() as i64).collect::<Vec<_>>(), "in order, none missing");
    assert!(seen.len() >= 25 && pages >= 3);
}

#[tokio::test]
async fn paging_through_conversations_newest_first_sees_each_once() {
    let app = spawn_app().await;
    let me = app.member("me").await;
    let other = app.member("other").await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.conversation(&other, &[(&me, "buyer")]).await.id);
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .session(&me)
            .list_conversations(pb::ListConversationsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total_size, 7);
        seen.extend(page.conversations.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    created.reverse();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn a_page_token_only_works_for_the_query_that_issued_it() {
    let app = spawn_app().await;
    let me = app.member("me").await;
    let other = app.member("other").await;
    for _ in 0..3 {
        app.conversation(&other, &[(&me, "buyer")]).await;
    }
    let (as_me, as_other) = (app.session(&me), app.session(&other));
    let first =
        as_me.list_conversations(pb::ListConversationsRequest { page_size: 1, ..Default::default() }).await.unwrap();

    let other_query = pb::ListConversationsRequest {
        page_size: 1,
        page_token: first.next_page_token.clone(),
        label: "seller".into(),
        ..Default::default()
    };
    assert_invalid(as_me.list_conversations(other_query).await, "page_token");
    let other_caller =
        pb::ListConversationsRequest { page_size: 1, page_token: first.next_page_token, ..Default::default() };
    assert_invalid(as_other.list_conversations(other_caller).await, "page_token");
    let garbage = pb::ListConversationsRequest { page_token: "not-a-token".into(), ..Default::default() };
    assert_invalid(as_me.list_conversations(garbage).await, "page_token");
}

#[tokio::test]
async fn a_message_listings_total_counts_what_the_caller_may_see_tombstones_included() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&agent, &[(&customer, "customer")]).await;
    for index in 0..5 {
        app.send(&customer, &conversation.id, &format!("public {index}")).await;
    }
    for index in 0..3 {
        app.session(&agent)
            .send_message(crate::helpers::note(&conversation.id, &format!("note {index}")))
            .await
            .unwrap();
    }
    let first = app.send(&agent, &conversation.id, "public 5").await;
    app.session(&agent).delete_message(&first.id).await.unwrap();

    let total = async |user| {
        let session = app.session(user);
        let request =
            pb::ListMessagesRequest { conversation_id: conversation.id.clone(), page_size: 2, ..Default::default() };
        let page = session.list_messages(request).await.unwrap();
        (page.total_size, session.all_messages_in(&conversation.id, 4).await.unwrap().len() as i64)
    };
    assert_eq!(total(&customer).await, (6, 6), "six public messages, the tombstone included, no notes");
    assert_eq!(total(&agent).await, (9, 9), "and the three notes for staff");
}
