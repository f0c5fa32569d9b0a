//! Sharding by account, checked in code: a workload over every service, with the
//! statements the server sends recorded, and each statement on an account's tables must
//! name the account (`statements.rs`) unless it is one of the few that work across
//! accounts on purpose.

use std::time::Duration;

use missive::api::pb;

use crate::{
    helpers::{WAIT, in_future, next_events, note, spawn_app, text, wait_until},
    statements::{self, ACROSS_ACCOUNTS},
};

#[tokio::test]
async fn every_statement_on_an_accounts_tables_names_the_account() {
    let recording = statements::record();
    let app = spawn_app().await;
    let (buyer, seller, agent) = (app.member("buyer").await, app.member("seller").await, app.agent("agent").await);
    let (as_buyer, as_seller, as_agent, as_admin) =
        (app.session(&buyer), app.session(&seller), app.session(&agent), app.as_admin());

    // Conversations, messages, reads, notes, participants.
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let mut stream = as_seller.subscribe_after("0").await.unwrap();
    let first = app.send(&buyer, &conversation.id, "hello").await;
    app.send(&seller, &conversation.id, "hi").await;
    as_agent.send_message(note(&conversation.id, "a note")).await.unwrap();
    next_events(&mut stream, 3).await;
    as_seller.mark_read(&conversation.id, std::slice::from_ref(&first.id)).await.unwrap();
    as_seller.mark_all_read(&conversation.id).await.unwrap();
    as_seller.get_unread_count().await.unwrap();
    as_buyer
        .update_message(pb::UpdateMessageRequest {
            message: Some(pb::Message { id: first.id.clone(), content: "hello!".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["content".into()] }),
        })
        .await
        .unwrap();
    as_seller.get_message(&first.id).await.unwrap();
    as_seller.all_messages_in(&conversation.id, 2).await.unwrap();
    for caller in [&as_seller, &as_agent] {
        for order in [pb::SearchOrder::Newest, pb::SearchOrder::Relevance] {
            let search = pb::SearchMessagesRequest { query: "hello".into(), order: order.into(), ..Default::default() };
            assert!(!caller.search(search).await.unwrap().hits.is_empty());
        }
    }
    as_agent.list_conversations(pb::ListConversationsRequest::default()).await.unwrap();
    as_seller.list_conversations(pb::ListConversationsRequest::default()).await.unwrap();
    as_seller.get_conversation(&conversation.id).await.unwrap();
    as_agent.add_participant(&conversation.id, &agent.id, "support").await.unwrap();
    as_agent.remove_participant(&conversation.id, &agent.id).await.unwrap();
    as_seller.archive_conversation(&conversation.id).await.unwrap();
    as_seller.unarchive_conversation(&conversation.id).await.unwrap();
    as_seller.mute(&conversation.id, None).await.unwrap();
    as_seller.unmute(&conversation.id).await.unwrap();
    as_seller.typing(&conversation.id, true).await.unwrap();

    // Reports and notifications.
    let report = as_seller.report(&first.id, pb::ReportReason::Spam, "").await.unwrap();
    as_agent.list_reports(pb::ListReportsRequest::default()).await.unwrap();
    as_agent.resolve_report(&report.id, pb::ReportAction::Dismiss, "fine").await.unwrap();
    let notifications =
        as_seller.list_notifications(pb::ListNotificationsRequest::default()).await.unwrap().notifications;
    as_seller.notification_count().await.unwrap();
    as_seller.mark_notification_read(&notifications[0].id).await.unwrap();
    as_seller.mark_all_notifications_read().await.unwrap();

    // Templates and scheduled messages.
    let template = as_agent
        .create_template(pb::Template {
            name: "greeting".into(),
            content: "Hello {{name}}".into(),
            scope: pb::TemplateScope::Account as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    as_agent.list_templates(pb::ListTemplatesRequest::default()).await.unwrap();
    as_agent.get_template(&template.id).await.unwrap();
    let scheduled = as_buyer
        .send_message(pb::SendMessageRequest {
            schedule_time: Some(in_future(Duration::from_secs(3600))),
            ..text(&conversation.id, "later")
        })
        .await
        .unwrap();
    as_buyer.list_scheduled(&conversation.id).await.unwrap();
    as_buyer.get_scheduled(&scheduled.id).await.unwrap();
    as_buyer.send_scheduled_now(&scheduled.id).await.unwrap();
    let again = as_buyer
        .send_message(pb::SendMessageRequest {
            schedule_time: Some(in_future(Duration::from_secs(1))),
            ..text(&conversation.id, "soon")
        })
        .await
        .unwrap();
    as_buyer.get_scheduled(&again.id).await.unwrap();
    // Delivered by the server's job, whose statements must be among those checked.
    let sent = pb::MessageState::Sent as i32;
    wait_until("the scheduled message's delivery", WAIT, async || {
        as_buyer.get_scheduled(&again.id).await.unwrap().state == sent
    })
    .await;

    // Users, keys, tokens.
    let users = as_admin.list_users(pb::ListUsersRequest::default()).await.unwrap();
    assert!(!users.users.is_empty());
    let key = as_admin.create_api_key(&buyer.id, "second").await.unwrap();
    as_admin.list_api_keys(pb::ListApiKeysRequest::default()).await.unwrap();
    as_admin.revoke_api_key(&key.api_key.unwrap().id).await.unwrap();
    as_admin.create_user_token(&buyer.id, None).await.unwrap();
    as_admin.deactivate_user(&agent.id).await.unwrap();
    as_admin.reactivate_user(&agent.id).await.unwrap();
    as_buyer.delete_message(&first.id).await.unwrap();
    as_agent.delete_conversation(&conversation.id).await.unwrap();
    drop(stream);

    let recorded = recording.statements();
    let due = "AND \"scheduled_messages\".\"schedule_time\" <=";
    assert!(recorded.iter().any(|sql| sql.contains(due)), "the delivery job's statements were recorded");
    let unnamed: Vec<String> = recorded
        .into_iter()
        .filter(|sql| !statements::tables_of(sql).is_empty() && !statements::names_its_account(sql))
        .filter(|sql| !ACROSS_ACCOUNTS.iter().any(|(piece, _)| sql.contains(piece)))
        .collect();
    assert!(unnamed.is_empty(), "{} statements do not name their account:\n{}", unnamed.len(), unnamed.join("\n"));
}
