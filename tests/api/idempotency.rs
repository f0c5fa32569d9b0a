//! Idempotent creates (AIP-155): a request id belongs to the user that sends it, a retry
//! returns the first result, and the same id with a different request is refused.

use std::collections::BTreeMap;

use missive::api::pb;

use crate::helpers::{assert_invalid, spawn_app, text};

fn new_user(role: pb::Role, name: &str, request_id: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User { role: role as i32, display_name: name.into(), ..Default::default() }),
        request_id: request_id.into(),
    }
}

#[tokio::test]
async fn two_admins_numbering_their_imports_alike_each_get_their_own_user() {
    let app = spawn_app().await;
    let first_admin = app.as_admin();
    let second_admin = app.session(&app.user(pb::Role::Admin, "second admin").await);

    let theirs = first_admin.create_user(new_user(pb::Role::Member, "From admin 1", "import-0001")).await.unwrap();
    let mine = second_admin.create_user(new_user(pb::Role::Agent, "From admin 2", "import-0001")).await.unwrap();

    assert_ne!(mine.id, theirs.id);
    assert_eq!((mine.display_name.as_str(), mine.role), ("From admin 2", pb::Role::Agent as i32));
    let retried = second_admin.create_user(new_user(pb::Role::Agent, "From admin 2", "import-0001")).await.unwrap();
    assert_eq!(retried, mine, "each admin's retry returns its own user");
}

#[tokio::test]
async fn reusing_a_request_id_for_a_different_user_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let first = admin.create_user(new_user(pb::Role::Member, "Jane", "req-7")).await.unwrap();

    assert_invalid(admin.create_user(new_user(pb::Role::Member, "John", "req-7")).await, "request_id");

    let listed = admin.list_users(pb::ListUsersRequest::default()).await.unwrap();
    assert_eq!(listed.users.iter().filter(|u| u.display_name == "John").count(), 0);
    assert_eq!(admin.get_user(&first.id).await.unwrap().display_name, "Jane");
}

#[tokio::test]
async fn a_send_retried_with_other_content_is_refused_and_one_with_the_same_request_sends_once() {
    let app = spawn_app().await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let as_buyer = app.session(&buyer);
    // Metadata with many entries: the fingerprint must not depend on a map's order.
    let metadata: BTreeMap<String, String> = (0..20).map(|i| (format!("key{i}"), format!("value{i}"))).collect();
    let request = pb::SendMessageRequest { request_id: "send-1".into(), metadata, ..text(&conversation.id, "$100") };

    let first = as_buyer.send_message(request.clone()).await.unwrap();
    let retried = as_buyer.send_message(request.clone()).await.unwrap();
    let changed = pb::SendMessageRequest { content: "$1,000".into(), ..request };

    assert_eq!(first.id, retried.id);
    assert_invalid(as_buyer.send_message(changed).await, "request_id");
    let listed = app.session(&seller).messages_in(&conversation.id).await.unwrap();
    assert_eq!(listed.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["$100"]);
    app.assert_no_unread_drift().await;
}

#[tokio::test]
async fn a_conversation_create_retried_with_other_participants_is_refused() {
    let app = spawn_app().await;
    let agent = app.agent("agent").await;
    let (ann, bob) = (app.member("ann").await, app.member("bob").await);
    let create = |who: &str, label: &str| pb::CreateConversationRequest {
        participants: vec![pb::NewParticipant { user_id: who.into(), label: label.into() }],
        request_id: "conv-1".into(),
        ..Default::default()
    };
    let as_agent = app.session(&agent);

    let first = as_agent.create_conversation(create(&ann.id, "buyer")).await.unwrap();
    let retried = as_agent.create_conversation(create(&ann.id, "buyer")).await.unwrap();

    assert_eq!(first.conversation.unwrap().id, retried.conversation.unwrap().id);
    assert_invalid(as_agent.create_conversation(create(&bob.id, "buyer")).await, "request_id");
    // Another user's identical request id is its own.
    let other_agent = app.session(&app.agent("other agent").await);
    other_agent.create_conversation(create(&bob.id, "buyer")).await.unwrap();
}

#[tokio::test]
async fn a_template_create_retried_with_other_content_is_refused() {
    let app = spawn_app().await;
    let seller = app.session(&app.member("seller").await);
    let create = |content: &str| pb::CreateTemplateRequest {
        template: Some(pb::Template { name: "Greeting".into(), content: content.into(), ..Default::default() }),
        request_id: "tpl-1".into(),
    };

    let first = seller.create_template_request(create("Hello {{name}}")).await.unwrap();

    assert_eq!(seller.create_template_request(create("Hello {{name}}")).await.unwrap().id, first.id);
    assert_invalid(seller.create_template_request(create("Bye {{name}}")).await, "request_id");
}

/// Sends `request` `RETRIES` times at once through `call`; the ids of what each answered.
async fn all_at_once<R, T, F, Fut>(request: R, call: F, id: impl Fn(&T) -> String) -> Vec<String>
where
    R: Clone,
    F: Fn(R) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    const RETRIES: usize = 80;
    let answers = futures::future::join_all((0..RETRIES).map(|_| call(request.clone()))).await;
    let refused: Vec<tonic::Code> =
        answers.iter().filter_map(|answer| answer.as_ref().err()).map(|s| s.code()).collect();
    assert!(refused.is_empty(), "{} of {RETRIES} retries were refused: {refused:?}", refused.len());
    answers.into_iter().map(|answer| id(&answer.unwrap())).collect()
}

/// Retries of one create all arriving at once (a client whose first attempt timed out, a
/// queue redelivering) each get the first result, with any number of writer lanes.
#[tokio::test]
async fn retries_of_one_create_sent_at_once_all_get_the_first_result() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let as_buyer = app.session(&buyer);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let distinct = |ids: Vec<String>| ids.into_iter().collect::<std::collections::HashSet<_>>().len();

    let users =
        all_at_once(new_user(pb::Role::Member, "Retried", "race-user"), |r| admin.create_user(r), |u| u.id.clone())
            .await;
    assert_eq!(distinct(users), 1, "one user");
    let create = pb::CreateConversationRequest {
        participants: vec![pb::NewParticipant { user_id: seller.id.clone(), label: "seller".into() }],
        request_id: "race-conversation".into(),
        ..Default::default()
    };
    let conversations =
        all_at_once(create, |r| as_buyer.create_conversation(r), |c| c.conversation.as_ref().unwrap().id.clone()).await;
    assert_eq!(distinct(conversations), 1, "one conversation");
    let template = pb::CreateTemplateRequest {
        template: Some(pb::Template { name: "Greeting".into(), content: "Hello".into(), ..Default::default() }),
        request_id: "race-template".into(),
    };
    let templates = all_at_once(template, |r| as_buyer.create_template_request(r), |t| t.id.clone()).await;
    assert_eq!(distinct(templates), 1, "one template");
    let send = pb::SendMessageRequest { request_id: "race-send".into(), ..text(&conversation.id, "once") };
    let messages = all_at_once(send, |r| as_buyer.send_message(r), |m| m.id.clone()).await;
    assert_eq!(distinct(messages), 1, "one message");
    assert_eq!(app.session(&seller).all_messages_in(&conversation.id, 100).await.unwrap().len(), 1);
}
