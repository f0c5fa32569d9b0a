//! The authorization matrix: member, agent, admin, another account, no key, bad key.

use missive::api::pb::{
    self, admin_service_client::AdminServiceClient, conversation_service_client::ConversationServiceClient,
    event_service_client::EventServiceClient, message_service_client::MessageServiceClient,
};
use tonic::{Code, Request};

use crate::helpers::{assert_code, note, spawn_app, text};

#[tokio::test]
async fn every_service_rejects_a_call_without_a_key() {
    let app = spawn_app().await;
    let channel = || app.channel.clone();

    let status = assert_code(
        AdminServiceClient::new(channel()).get_caller(Request::new(pb::GetCallerRequest {})).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("authorization"), "{status:?}");
    assert_code(
        ConversationServiceClient::new(channel())
            .list_conversations(Request::new(pb::ListConversationsRequest::default()))
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        MessageServiceClient::new(channel()).send_message(Request::new(text("conv_x", "hi"))).await,
        Code::Unauthenticated,
    );
    assert_code(
        EventServiceClient::new(channel()).subscribe(Request::new(pb::SubscribeRequest::default())).await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_key_is_unauthenticated() {
    let app = spawn_app().await;
    assert_code(app.session_with_key("msk_nope").get_unread_count().await, Code::Unauthenticated);

    let mut request = Request::new(pb::GetUnreadCountRequest {});
    request.metadata_mut().insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_code(
        ConversationServiceClient::new(app.channel.clone()).get_unread_count(request).await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn members_and_agents_may_not_call_the_admin_service() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let agent = app.agent("agent").await;

    for user in [&member, &agent] {
        let session = app.session(user);
        assert_code(session.list_users(pb::ListUsersRequest::default()).await, Code::PermissionDenied);
        assert_code(session.create_api_key(&user.id, "mine").await, Code::PermissionDenied);
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
    let as_stranger = app.session(&stranger);

    assert_code(as_stranger.get_conversation(&conversation.id).await, Code::NotFound);
    assert_code(as_stranger.send_message(text(&conversation.id, "let me in")).await, Code::NotFound);
    assert_code(as_stranger.messages_in(&conversation.id).await, Code::NotFound);
    assert_code(as_stranger.get_message(&message.id).await, Code::NotFound);
    assert_code(as_stranger.mark_all_read(&conversation.id).await, Code::NotFound);
    let listed = as_stranger.list_conversations(pb::ListConversationsRequest::default()).await.unwrap();
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
    let other_account = app.create_account("other").await;
    let other_admin = app.session(&app.bootstrap_user(&other_account, pb::Role::Admin, "other admin").await);

    for staff in [&agent, &app.admin] {
        let staff = app.session(staff);
        let seen = staff.get_conversation(&conversation.id).await.unwrap();
        assert_eq!(seen.id, conversation.id);
        assert!(!seen.participating);
        let listed = staff.list_conversations(pb::ListConversationsRequest::default()).await.unwrap();
        assert_eq!(
            listed.conversations.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            vec![conversation.id.clone()]
        );
    }
    assert_code(other_admin.get_conversation(&conversation.id).await, Code::NotFound);
    assert_code(other_admin.send_message(text(&conversation.id, "hi")).await, Code::NotFound);
    let other_list = other_admin.list_conversations(pb::ListConversationsRequest::default()).await.unwrap();
    assert!(other_list.conversations.is_empty());
    assert_code(other_admin.get_user(&buyer.id).await, Code::NotFound);
}

#[tokio::test]
async fn only_staff_write_and_read_private_notes() {
    let app = spawn_app().await;
    let customer = app.member("customer").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&customer, &[(&agent, "agent")]).await;
    let (as_customer, as_agent) = (app.session(&customer), app.session(&agent));

    let note = note(&conversation.id, "Internal: premium plan");
    assert_code(as_customer.send_message(note.clone()).await, Code::PermissionDenied);
    let note = as_agent.send_message(note).await.unwrap();
    let reply = app.send(&agent, &conversation.id, "Happy to help").await;

    let customer_sees = as_customer.messages_in(&conversation.id).await.unwrap();
    assert_eq!(customer_sees.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![reply.id.clone()]);
    assert_eq!(customer_sees.total_size, 1);
    assert_code(as_customer.get_message(&note.id).await, Code::NotFound);
    let seen_by_customer = as_customer.get_conversation(&conversation.id).await.unwrap();
    assert_eq!(seen_by_customer.last_message.unwrap().id, reply.id, "the last message a member sees is never a note");
    assert_eq!(seen_by_customer.unread_count, 1, "a note does not count as unread for a member");

    let agent_sees = as_agent.messages_in(&conversation.id).await.unwrap();
    assert_eq!(agent_sees.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![note.id, reply.id]);
}

#[tokio::test]
async fn members_may_not_manage_conversations_but_may_leave_them() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let friend = app.member("friend").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);

    assert_code(as_buyer.add_participant(&conversation.id, &friend.id, "friend").await, Code::PermissionDenied);
    assert_code(as_buyer.remove_participant(&conversation.id, &seller.id).await, Code::PermissionDenied);
    assert_code(as_buyer.delete_conversation(&conversation.id).await, Code::PermissionDenied);

    app.session(&seller).remove_participant(&conversation.id, &seller.id).await.unwrap();
    assert_code(app.session(&seller).get_conversation(&conversation.id).await, Code::NotFound);

    app.session(&agent).delete_conversation(&conversation.id).await.unwrap();
    assert_code(as_buyer.get_conversation(&conversation.id).await, Code::NotFound);
}

#[tokio::test]
async fn only_the_sender_edits_and_only_the_sender_or_staff_delete() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let message = app.send(&buyer, &conversation.id, "original").await;
    let edit = || pb::UpdateMessageRequest {
        message: Some(pb::Message { id: message.id.clone(), content: "edited".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["content".into()] }),
    };
    let (as_seller, as_agent) = (app.session(&seller), app.session(&agent));

    assert_code(as_seller.update_message(edit()).await, Code::PermissionDenied);
    assert_code(as_agent.update_message(edit()).await, Code::PermissionDenied);
    assert_code(as_seller.delete_message(&message.id).await, Code::PermissionDenied);
    let deleted = as_agent.delete_message(&message.id).await.unwrap();
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
    assert_code(app.session(&customer).send_message(forged).await, Code::PermissionDenied);
    let simulated = pb::SendMessageRequest {
        direction: pb::Direction::Incoming as i32,
        ..text(&conversation.id, "as the customer")
    };
    assert_eq!(app.session(&agent).send_message(simulated).await.unwrap().direction, pb::Direction::Incoming as i32);
}

/// A conversation the caller may not see, named as a listing's filter, is NOT_FOUND as
/// everywhere else (not an empty page): another account's for staff, one a member does
/// not take part in for a member.
#[tokio::test]
async fn listings_filtered_to_a_conversation_the_caller_may_not_see_are_not_found() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let outsider = app.member("outsider").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let other_account = app.create_account("other").await;
    let other_admin = app.session(&app.bootstrap_user(&other_account, pb::Role::Admin, "other admin").await);
    let reports = |id: &str| pb::ListReportsRequest { conversation_id: id.into(), ..Default::default() };

    for stranger in [other_admin, app.session(&outsider)] {
        assert_code(stranger.list_reports(reports(&conversation.id)).await, Code::NotFound);
        assert_code(stranger.list_scheduled(&conversation.id).await, Code::NotFound);
    }
    // Those who may see it get a (here empty) page.
    for viewer in [app.session(&buyer), app.as_admin()] {
        assert!(viewer.list_reports(reports(&conversation.id)).await.unwrap().reports.is_empty());
        assert!(viewer.list_scheduled(&conversation.id).await.unwrap().is_empty());
    }
}
