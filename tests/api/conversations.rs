//! ConversationService: create, read, list with filters, update, participants, archive,
//! delete.

use std::collections::BTreeMap;

use missive::api::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{TestApp, TestUser, assert_code, note, spawn_app, text};

async fn list(app: &TestApp, user: &TestUser, request: pb::ListConversationsRequest) -> pb::ListConversationsResponse {
    app.session(user).list_conversations(request).await.unwrap()
}

fn ids(conversations: &[pb::Conversation]) -> Vec<String> {
    conversations.iter().map(|c| c.id.clone()).collect()
}

#[tokio::test]
async fn a_conversation_starts_with_its_participants_subject_and_first_message() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;

    let created = app
        .session(&buyer)
        .create_conversation(pb::CreateConversationRequest {
            participants: vec![pb::NewParticipant { user_id: seller.id.clone(), label: "seller".into() }],
            subject: Some(pb::Subject {
                kind: "listing".into(),
                external_id: "lst_abc".into(),
                title: "2021 Volvo FH 500".into(),
                ..Default::default()
            }),
            metadata: BTreeMap::from([("offer_id".to_string(), "42".to_string())]),
            first_message: Some(text("", "Is this vehicle still available?")),
            caller_label: "buyer".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();

    let conversation = created.conversation.unwrap();
    let first = created.first_message.unwrap();
    assert!(conversation.id.starts_with("conv_"));
    assert_eq!(conversation.subject.as_ref().unwrap().external_id, "lst_abc");
    assert_eq!(conversation.metadata["offer_id"], "42");
    let mut labels: Vec<(String, String)> =
        conversation.participants.iter().map(|p| (p.label.clone(), p.user_id.clone())).collect();
    labels.sort();
    assert_eq!(labels, vec![("buyer".into(), buyer.id.clone()), ("seller".into(), seller.id.clone())]);
    assert_eq!(conversation.caller_label, "buyer");
    assert_eq!(first.content, "Is this vehicle still available?");
    assert_eq!(first.sequence, 1);
    assert_eq!(first.direction, pb::Direction::Incoming as i32);
    assert_eq!(conversation.last_message.unwrap().id, first.id);
    assert_eq!(conversation.unread_count, 0, "the sender has nothing unread");

    let for_seller = app.session(&seller).get_conversation(&conversation.id).await.unwrap();
    assert_eq!(for_seller.unread_count, 1);
    assert_eq!(for_seller.caller_label, "seller");
    assert_eq!(app.unread(&seller).await, (1, 1));
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_returns_the_first_conversation() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let as_buyer = app.session(&buyer);
    let request = || pb::CreateConversationRequest {
        participants: vec![pb::NewParticipant { user_id: seller.id.clone(), label: "seller".into() }],
        first_message: Some(text("", "hello")),
        request_id: "create-1".into(),
        ..Default::default()
    };

    let first = as_buyer.create_conversation(request()).await.unwrap();
    let retried = as_buyer.create_conversation(request()).await.unwrap();

    assert_eq!(first.conversation.as_ref().unwrap().id, retried.conversation.as_ref().unwrap().id);
    assert_eq!(first.first_message.as_ref().unwrap().id, retried.first_message.as_ref().unwrap().id);
    assert_eq!(list(&app, &seller, Default::default()).await.total_size, 1);
    assert_eq!(app.unread(&seller).await, (1, 1), "the retry sent nothing twice");
}

#[tokio::test]
async fn listing_filters_by_status_label_and_subject_with_a_summary() {
    let app = spawn_app().await;
    let me = app.member("me").await;
    let other = app.member("other").await;
    let as_buyer = app.conversation(&other, &[(&me, "buyer")]).await;
    let as_seller = app.conversation(&other, &[(&me, "seller")]).await;
    let archived = app.conversation(&other, &[(&me, "buyer")]).await;
    app.send(&other, &as_buyer.id, "unread for me").await;
    app.send(&other, &archived.id, "unread but archived").await;
    app.session(&me).archive_conversation(&archived.id).await.unwrap();
    app.as_admin()
        .update_conversation(pb::UpdateConversationRequest {
            conversation: Some(pb::Conversation {
                id: as_seller.id.clone(),
                subject: Some(pb::Subject {
                    kind: "listing".into(),
                    external_id: "lst_9".into(),
                    title: String::new(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["subject.kind".into(), "subject.external_id".into()] }),
        })
        .await
        .unwrap();

    let active = list(&app, &me, Default::default()).await;
    assert_eq!(ids(&active.conversations), vec![as_seller.id.clone(), as_buyer.id.clone()], "newest activity first");
    assert_eq!(active.summary, Some(pb::ConversationSummary { total: 2, unread: 1 }));
    let status =
        |status: pb::ConversationStatus| pb::ListConversationsRequest { status: status as i32, ..Default::default() };
    assert_eq!(
        ids(&list(&app, &me, status(pb::ConversationStatus::Unread)).await.conversations),
        vec![as_buyer.id.clone()]
    );
    assert_eq!(
        ids(&list(&app, &me, status(pb::ConversationStatus::Read)).await.conversations),
        vec![as_seller.id.clone()]
    );
    assert_eq!(
        ids(&list(&app, &me, status(pb::ConversationStatus::Archived)).await.conversations),
        vec![archived.id.clone()]
    );
    assert_eq!(list(&app, &me, status(pb::ConversationStatus::All)).await.total_size, 3);
    let buyer_side =
        list(&app, &me, pb::ListConversationsRequest { label: "buyer".into(), ..Default::default() }).await;
    assert_eq!(ids(&buyer_side.conversations), vec![as_buyer.id.clone()]);
    let about_listing = list(
        &app,
        &me,
        pb::ListConversationsRequest {
            subject_kind: "listing".into(),
            subject_external_id: "lst_9".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&about_listing.conversations), vec![as_seller.id.clone()]);
    let item = &active.conversations[1];
    assert_eq!(item.unread_count, 1);
    assert_eq!(item.last_message.as_ref().unwrap().content, "unread for me");
    assert_eq!(app.unread(&me).await, (1, 1), "archived conversations are left out of the unread count");
}

#[tokio::test]
async fn archiving_is_per_user_and_reversible() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);

    let archived = as_buyer.archive_conversation(&conversation.id).await.unwrap();
    assert!(archived.archived);
    assert!(!app.session(&seller).get_conversation(&conversation.id).await.unwrap().archived);

    let unarchived = as_buyer.unarchive_conversation(&conversation.id).await.unwrap();
    assert!(!unarchived.archived);
    let agent = app.agent("agent").await;
    assert_code(app.session(&agent).archive_conversation(&conversation.id).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn staff_add_and_remove_participants_and_a_newcomer_counts_the_history_as_unread() {
    let app = spawn_app().await;
    let lead = app.member("lead").await;
    let agent = app.agent("agent").await;
    let sales_rep = app.member("sales rep").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead"), (&agent, "agent")]).await;
    app.send(&lead, &conversation.id, "one").await;
    app.send(&lead, &conversation.id, "two").await;
    let as_agent = app.session(&agent);

    let added = as_agent.add_participant(&conversation.id, &sales_rep.id, "sales_rep").await.unwrap();
    assert_eq!(added.participants.len(), 3);
    assert_eq!(app.session(&sales_rep).get_conversation(&conversation.id).await.unwrap().unread_count, 2);
    assert_code(as_agent.add_participant(&conversation.id, &sales_rep.id, "again").await, Code::AlreadyExists);

    let removed = as_agent.remove_participant(&conversation.id, &lead.id).await.unwrap();
    let mut remaining: Vec<String> = removed.participants.iter().map(|p| p.user_id.clone()).collect();
    remaining.sort();
    assert_eq!(remaining, vec![agent.id.clone(), sales_rep.id.clone()]);
    assert_code(app.session(&lead).get_conversation(&conversation.id).await, Code::NotFound);
    app.assert_no_unread_drift().await;
}

#[tokio::test]
async fn deleting_a_conversation_removes_it_and_its_messages_for_good() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let message = app.send(&buyer, &conversation.id, "soon gone").await;
    let admin = app.as_admin();

    admin.delete_conversation(&conversation.id).await.unwrap();

    assert_code(admin.get_conversation(&conversation.id).await, Code::NotFound);
    assert_code(admin.get_message(&message.id).await, Code::NotFound);
    assert_eq!(app.unread(&seller).await, (0, 0));
}

#[tokio::test]
async fn the_full_view_expands_participants_users() {
    let app = spawn_app().await;
    let buyer = app.member("Jane").await;
    let seller = app.member("ABC Trucks").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);

    let basic = as_buyer.get_conversation(&conversation.id).await.unwrap();
    let full = as_buyer.get_conversation_in(&conversation.id, pb::View::Full).await.unwrap();

    assert!(basic.participants.iter().all(|p| p.user.is_none()));
    let mut names: Vec<String> =
        full.participants.iter().map(|p| p.user.as_ref().unwrap().display_name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["ABC Trucks".to_string(), "Jane".to_string()]);
}

#[tokio::test]
async fn a_retried_create_never_returns_a_later_message_as_the_first() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let as_customer = app.session(&customer);
    let request = || pb::CreateConversationRequest {
        participants: vec![pb::NewParticipant { user_id: agent.id.clone(), label: "agent".into() }],
        request_id: "no-first-message".into(),
        ..Default::default()
    };
    let created = as_customer.create_conversation(request()).await.unwrap();
    let conversation_id = created.conversation.unwrap().id;
    app.session(&agent).send_message(note(&conversation_id, "internal: VIP")).await.unwrap();
    app.send(&agent, &conversation_id, "hello").await;

    let retried = as_customer.create_conversation(request()).await.unwrap();

    assert_eq!(retried.conversation.unwrap().id, conversation_id);
    assert_eq!(retried.first_message, None, "the create sent no message");
}

#[tokio::test]
async fn only_staff_change_a_conversations_subject_and_metadata() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let update = || pb::UpdateConversationRequest {
        conversation: Some(pb::Conversation {
            id: conversation.id.clone(),
            metadata: BTreeMap::from([("offer_id".to_string(), "43".to_string())]),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["metadata".into()] }),
    };

    assert_code(app.session(&buyer).update_conversation(update()).await, Code::PermissionDenied);
    let updated = app.as_admin().update_conversation(update()).await.unwrap();
    assert_eq!(updated.metadata["offer_id"], "43");
}

#[tokio::test]
async fn members_see_no_one_elses_contact_details() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let admin = app.as_admin();
    let seller = admin
        .create_user(pb::CreateUserRequest {
            user: Some(pb::User {
                role: pb::Role::Member as i32,
                display_name: "Seller".into(),
                email: "seller@example.com".into(),
                phone: "+4915112345678".into(),
                external_id: "crm-1".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let seller_user = TestUser { id: seller.id.clone(), key: String::new() };
    let conversation = app.conversation(&buyer, &[(&seller_user, "seller")]).await;

    let as_buyer = app.session(&buyer).get_conversation_in(&conversation.id, pb::View::Full).await.unwrap();
    let as_admin = admin.get_conversation_in(&conversation.id, pb::View::Full).await.unwrap();

    let seen =
        |c: &pb::Conversation| c.participants.iter().find(|p| p.user_id == seller.id).unwrap().user.clone().unwrap();
    let by_buyer = seen(&as_buyer);
    assert_eq!((by_buyer.display_name.as_str(), by_buyer.email.as_str(), by_buyer.phone.as_str()), ("Seller", "", ""));
    assert_eq!(by_buyer.external_id, "");
    assert_eq!(seen(&as_admin).email, "seller@example.com");
}

/// A staff inbox's totals come from counters, not from counting every conversation: they
/// must equal what its pages hold, for every status, after creates, deletes and archives,
/// and never include another account's conversations.
#[tokio::test]
async fn a_staff_inbox_counts_exactly_what_its_pages_hold() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let customer = app.member("customer").await;
    let other_account = app.create_account("other").await;
    let stranger = app.bootstrap_user(&other_account, pb::Role::Member, "stranger").await;
    app.session(&stranger).create_conversation(pb::CreateConversationRequest::default()).await.unwrap();

    let mut created = Vec::new();
    for index in 0..6 {
        let with_agent: Vec<(&TestUser, &str)> = if index < 4 { vec![(&agent, "agent")] } else { Vec::new() };
        created.push(app.conversation(&customer, &with_agent).await.id);
    }
    app.send(&customer, &created[0], "unread for the agent").await;
    app.send(&customer, &created[1], "unread but archived").await;
    app.session(&agent).archive_conversation(&created[1]).await.unwrap();
    app.as_admin().delete_conversation(&created[5]).await.unwrap();

    let session = app.session(&agent);
    for status in [
        pb::ConversationStatus::Unspecified,
        pb::ConversationStatus::All,
        pb::ConversationStatus::Unread,
        pb::ConversationStatus::Read,
        pb::ConversationStatus::Archived,
    ] {
        let page = session
            .list_conversations(pb::ListConversationsRequest {
                status: status as i32,
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total_size, page.conversations.len() as i64, "{status:?}");
        assert_eq!(page.summary, Some(pb::ConversationSummary { total: 4, unread: 1 }), "{status:?}");
    }
    let everything = session
        .list_conversations(pb::ListConversationsRequest {
            status: pb::ConversationStatus::All as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(everything.total_size, 5, "six created, one deleted, the other account's not counted");
}

#[tokio::test]
async fn an_update_without_a_mask_changes_only_the_parts_of_the_subject_it_gives() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let update = |subject: pb::Subject, paths: Option<Vec<String>>| pb::UpdateConversationRequest {
        conversation: Some(pb::Conversation {
            id: conversation.id.clone(),
            subject: Some(subject),
            ..Default::default()
        }),
        update_mask: paths.map(|paths| FieldMask { paths }),
    };
    let whole = pb::Subject {
        kind: "listing".into(),
        external_id: "lst_9".into(),
        title: "Volvo FH".into(),
        ..Default::default()
    };
    app.as_admin().update_conversation(update(whole, Some(vec!["subject".into()]))).await.unwrap();

    let retitled = pb::Subject { title: "Volvo FH 500".into(), ..Default::default() };
    let updated = app.as_admin().update_conversation(update(retitled, None)).await.unwrap();

    let subject = updated.subject.unwrap();
    assert_eq!((subject.kind.as_str(), subject.external_id.as_str()), ("listing", "lst_9"), "kept");
    assert_eq!(subject.title, "Volvo FH 500");
}
