//! The authorization matrix: member, agent, admin, another account, no key, bad key.

use missive::{api::pb, domain::users::Role};
use tonic::{Code, Request};

use crate::helpers::{assert_code, authed, bootstrap_user, note, spawn_app, text};

#[tokio::test]
async fn every_service_rejects_a_call_without_a_key() {
    let app = spawn_app().await;

    let status =
        assert_code(app.admin_client().get_caller(Request::new(pb::GetCallerRequest {})).await, Code::Unauthenticated);
    assert!(status.message().contains("authorization"), "{status:?}");
    assert_code(
        app.conversations().list_conversations(Request::new(pb::ListConversationsRequest::default())).await,
        Code::Unauthenticated,
    );
    assert_code(app.messages().send_message(Request::new(text("conv_x", "hi"))).await, Code::Unauthenticated);
    assert_code(app.events().subscribe(Request::new(pb::SubscribeRequest::default())).await, Code::Unauthenticated);
}

#[tokio::test]
async fn an_unknown_or_malformed_key_is_unauthenticated() {
    let app = spawn_app().await;
    assert_code(
        app.unread_result(&crate::helpers::TestUser { id: String::new(), key: "msk_nope".into() }).await,
        Code::Unauthenticated,
    );

    let mut request = Request::new(pb::GetUnreadCountRequest {});
    request.metadata_mut().insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_code(app.conversations().get_unread_count(request).await, Code::Unauthenticated);
}

#[tokio::test]
async fn members_and_agents_may_not_call_the_admin_service() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let agent = app.agent("agent").await;

    for user in [&member, &agent] {
        assert_code(
            app.admin_client().list_users(authed(&user.key, pb::ListUsersRequest::default())).await,
            Code::PermissionDenied,
        );
        assert_code(
            app.admin_client()
                .create_api_key(authed(
                    &user.key,
                    pb::CreateApiKeyRequest { user_id: user.id.clone(), name: "mine".into() },
                ))
                .await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn a_member_cannot_see_a_conversation_it_does_not_take_part_in() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let stranger = app.member("stranger").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let message = app.send(&buyer, &conversation.id, "hello").await;

    assert_code(app.get_conversation(&stranger, &conversation.id).await, Code::NotFound);
    assert_code(app.send_request(&stranger, text(&conversation.id, "let me in")).await, Code::NotFound);
    assert_code(
        app.messages()
            .list_messages(authed(
                &stranger.key,
                pb::ListMessagesRequest { conversation_id: conversation.id.clone(), ..Default::default() },
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.messages()
            .get_message(authed(&stranger.key, pb::GetMessageRequest { id: message.id.clone(), view: 0 }))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.conversations()
            .mark_read(authed(
                &stranger.key,
                pb::MarkReadRequest { conversation_id: conversation.id.clone(), message_ids: vec![] },
            ))
            .await,
        Code::NotFound,
    );
    let listed = app
        .conversations()
        .list_conversations(authed(&stranger.key, pb::ListConversationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.conversations.is_empty());
    assert_eq!(listed.total_size, 0);
}

#[tokio::test]
async fn staff_see_every_conversation_of_their_account_and_nothing_of_another() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let other_account = missive::store::accounts::create(&app.store, "other").await.unwrap();
    let other_admin = bootstrap_user(&app.store, &other_account, Role::Admin, "other admin").await;

    for staff in [&agent, &app.admin] {
        let seen = app.get_conversation(staff, &conversation.id).await.unwrap();
        assert_eq!(seen.id, conversation.id);
        assert!(!seen.participating);
        let listed = app
            .conversations()
            .list_conversations(authed(&staff.key, pb::ListConversationsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed.conversations.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            vec![conversation.id.clone()]
        );
    }
    assert_code(app.get_conversation(&other_admin, &conversation.id).await, Code::NotFound);
    assert_code(app.send_request(&other_admin, text(&conversation.id, "hi")).await, Code::NotFound);
    let other_list = app
        .conversations()
        .list_conversations(authed(&other_admin.key, pb::ListConversationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(other_list.conversations.is_empty());
    assert_code(
        app.admin_client().get_user(authed(&other_admin.key, pb::GetUserRequest { id: buyer.id.clone() })).await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn only_staff_write_and_read_private_notes() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&customer, &[(&agent, "agent")]).await;

    let note = note(&conversation.id, "Internal: premium plan");
    assert_code(app.send_request(&customer, note.clone()).await, Code::PermissionDenied);
    let note = app.send_request(&agent, note).await.unwrap();
    let reply = app.send(&agent, &conversation.id, "Happy to help").await;

    let as_customer = app
        .messages()
        .list_messages(authed(
            &customer.key,
            pb::ListMessagesRequest { conversation_id: conversation.id.clone(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(as_customer.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![reply.id.clone()]);
    assert_eq!(as_customer.total_size, 1);
    assert_code(
        app.messages().get_message(authed(&customer.key, pb::GetMessageRequest { id: note.id.clone(), view: 0 })).await,
        Code::NotFound,
    );
    let seen_by_customer = app.get_conversation(&customer, &conversation.id).await.unwrap();
    assert_eq!(seen_by_customer.last_message.unwrap().id, reply.id, "the last message a member sees is never a note");
    assert_eq!(seen_by_customer.unread_count, 1, "a note does not count as unread for a member");

    let as_agent = app
        .messages()
        .list_messages(authed(
            &agent.key,
            pb::ListMessagesRequest { conversation_id: conversation.id.clone(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(as_agent.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![note.id, reply.id]);
}

#[tokio::test]
async fn members_may_not_manage_conversations_but_may_leave_them() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let friend = app.member("friend").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;

    assert_code(
        app.conversations()
            .add_participant(authed(
                &buyer.key,
                pb::AddParticipantRequest {
                    conversation_id: conversation.id.clone(),
                    participant: Some(pb::NewParticipant { user_id: friend.id.clone(), label: "friend".into() }),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.conversations()
            .remove_participant(authed(
                &buyer.key,
                pb::RemoveParticipantRequest { conversation_id: conversation.id.clone(), user_id: seller.id.clone() },
            ))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.conversations()
            .delete_conversation(authed(&buyer.key, pb::DeleteConversationRequest { id: conversation.id.clone() }))
            .await,
        Code::PermissionDenied,
    );

    app.conversations()
        .remove_participant(authed(
            &seller.key,
            pb::RemoveParticipantRequest { conversation_id: conversation.id.clone(), user_id: seller.id.clone() },
        ))
        .await
        .unwrap();
    assert_code(app.get_conversation(&seller, &conversation.id).await, Code::NotFound);

    app.conversations()
        .delete_conversation(authed(&agent.key, pb::DeleteConversationRequest { id: conversation.id.clone() }))
        .await
        .unwrap();
    assert_code(app.get_conversation(&buyer, &conversation.id).await, Code::NotFound);
}

#[tokio::test]
async fn only_the_sender_edits_and_only_the_sender_or_staff_delete() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let message = app.send(&buyer, &conversation.id, "original").await;
    let edit = |key: &str| {
        authed(
            key,
            pb::UpdateMessageRequest {
                message: Some(pb::Message { id: message.id.clone(), content: "edited".into(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["content".into()] }),
            },
        )
    };

    assert_code(app.messages().update_message(edit(&seller.key)).await, Code::PermissionDenied);
    assert_code(app.messages().update_message(edit(&agent.key)).await, Code::PermissionDenied);
    assert_code(
        app.messages().delete_message(authed(&seller.key, pb::DeleteMessageRequest { id: message.id.clone() })).await,
        Code::PermissionDenied,
    );
    let deleted = app
        .messages()
        .delete_message(authed(&agent.key, pb::DeleteMessageRequest { id: message.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
}

#[tokio::test]
async fn a_members_messages_always_come_in() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&customer, &[(&agent, "agent")]).await;

    let forged = pb::SendMessageRequest {
        direction: pb::Direction::Outgoing as i32,
        ..text(&conversation.id, "from the business")
    };
    assert_code(app.send_request(&customer, forged).await, Code::PermissionDenied);
    let simulated = pb::SendMessageRequest {
        direction: pb::Direction::Incoming as i32,
        ..text(&conversation.id, "as the customer")
    };
    assert_eq!(app.send_request(&agent, simulated).await.unwrap().direction, pb::Direction::Incoming as i32);
}
