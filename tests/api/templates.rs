//! TemplateService and sending from templates: scopes, placeholders, rendering, events.

use std::collections::BTreeMap;

use missive::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, TestUser, assert_code, assert_invalid, next_events, spawn_app, text, violated_fields};

fn template(scope: pb::TemplateScope, name: &str, category: &str, content: &str) -> pb::Template {
    pb::Template {
        scope: scope as i32,
        name: name.into(),
        category: category.into(),
        content: content.into(),
        ..Default::default()
    }
}

const VEHICLE: &str =
    "Thank you for your interest in the {{vehicle_title}}. Yes, it is still available at {{ price }}.";

fn from_template(conversation_id: &str, template_id: &str, variables: &[(&str, &str)]) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        conversation_id: conversation_id.into(),
        template_id: template_id.into(),
        variables: variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

async fn account_template(app: &TestApp, agent: &TestUser) -> pb::Template {
    app.session(agent)
        .create_template(template(pb::TemplateScope::Account, "Vehicle available", "inquiry", VEHICLE))
        .await
        .expect("create template")
}

#[tokio::test]
async fn a_message_sent_from_a_template_records_it_and_survives_its_edits() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&agent, &[(&buyer, "buyer")]).await;
    let created = account_template(&app, &agent).await;
    assert!(created.id.starts_with("tpl_"));
    assert_eq!(created.variables, ["vehicle_title", "price"]);
    assert!(created.owner_id.is_empty());

    let variables = [("vehicle_title", "2021 Volvo FH 500"), ("price", "EUR 85,000 {{price}}")];
    let sent =
        app.session(&agent).send_message(from_template(&conversation.id, &created.id, &variables)).await.unwrap();
    let rendered = "Thank you for your interest in the 2021 Volvo FH 500. Yes, it is still available at EUR 85,000 \
                    {{price}}.";
    assert_eq!(sent.content, rendered, "values are literal text");
    assert_eq!(sent.kind, pb::MessageKind::Template as i32);
    assert_eq!(sent.template_id, created.id);
    assert_eq!(sent.variables, BTreeMap::from(variables.map(|(k, v)| (k.to_string(), v.to_string()))));

    let mut changed = created.clone();
    changed.content = "Sold, sorry.".into();
    app.session(&agent).update_template(changed, &["content"]).await.unwrap();
    app.session(&agent).delete_template(&created.id).await.unwrap();

    let read = app.session(&buyer).get_message(&sent.id).await.unwrap();
    assert_eq!(read.content, rendered, "editing or deleting a template changes no sent message");
    assert_eq!(read.template_id, created.id);
    assert_code(app.session(&agent).get_template(&created.id).await, Code::NotFound);
    assert_code(
        app.session(&agent).send_message(from_template(&conversation.id, &created.id, &variables)).await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn every_missing_or_unknown_variable_is_named() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let conversation = app.conversation(&agent, &[]).await;
    let tpl = account_template(&app, &agent).await;
    let session = app.session(&agent);

    let status = assert_code(
        session
            .send_message(from_template(&conversation.id, &tpl.id, &[("vehicle_title", "x"), ("pricee", "1")]))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["variables.price", "variables.pricee"]);

    let both = pb::SendMessageRequest { content: "hi".into(), ..from_template(&conversation.id, &tpl.id, &[]) };
    assert_invalid(session.send_message(both).await, "template_id");
    let kind = pb::SendMessageRequest {
        kind: pb::MessageKind::Text as i32,
        ..from_template(&conversation.id, &tpl.id, &[("vehicle_title", "x"), ("price", "1")])
    };
    assert_invalid(session.send_message(kind).await, "kind");
    let loose = pb::SendMessageRequest {
        variables: BTreeMap::from([("a".into(), "b".into())]),
        ..text(&conversation.id, "hi")
    };
    assert_invalid(session.send_message(loose).await, "variables");
    assert_invalid(session.send_message(from_template(&conversation.id, "tpl_1", &[])).await, "template_id");
    assert_invalid(
        session.send_message(from_template(&conversation.id, &tpl.id, &[("not a name", "x"), ("price", "1")])).await,
        "variables",
    );
    assert_invalid(
        session.send_message(from_template(&conversation.id, &tpl.id, &[("vehicle_title", ""), ("price", "1")])).await,
        "variables.vehicle_title",
    );
    assert_eq!(app.session(&agent).messages_in(&conversation.id).await.unwrap().total_size, 0, "nothing was sent");

    let preview = session.render_template(&tpl.id, &[("vehicle_title", "FH"), ("price", "1")]).await.unwrap();
    assert!(preview.content.starts_with("Thank you for your interest in the FH."));
    assert_eq!(preview.variables, ["vehicle_title", "price"]);
    let status = assert_code(session.render_template(&tpl.id, &[]).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["variables.vehicle_title", "variables.price"]);
    assert_eq!(
        app.session(&agent).messages_in(&conversation.id).await.unwrap().total_size,
        0,
        "a preview sends nothing"
    );
}

#[tokio::test]
async fn malformed_placeholders_are_refused_with_their_position() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let session = app.session(&agent);
    for content in ["Hello {{name", "Hello {{}}", "Hello {{first name}}", "Hello {{9lives}}"] {
        let status = assert_code(
            session.create_template(template(pb::TemplateScope::Account, "t", "", content)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["template.content"], "{content}");
        assert!(status.message().contains("character 7"), "{content}: {}", status.message());
    }
    let tpl = account_template(&app, &agent).await;
    let mut broken = tpl.clone();
    broken.content = "{{oops".into();
    assert_invalid(session.update_template(broken, &["content"]).await, "template.content");
    assert_invalid(session.create_template(template(pb::TemplateScope::Account, " ", "", "x")).await, "template.name");
    assert_code(
        session.create_template(template(pb::TemplateScope::Account, "Vehicle available", "", "again")).await,
        Code::AlreadyExists,
    );
    assert_invalid(session.update_template(tpl, &["owner_id"]).await, "update_mask");
}

#[tokio::test]
async fn personal_templates_are_their_owners_alone_and_account_templates_staffs_to_manage() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let shared = account_template(&app, &agent).await;
    let quick = app
        .session(&seller)
        .create_template(template(pb::TemplateScope::Unspecified, "Quick Response", "inquiry", "Thanks, {{name}}!"))
        .await
        .unwrap();
    assert_eq!(quick.scope, pb::TemplateScope::Personal as i32, "personal unless said otherwise");
    let create_twice = || pb::CreateTemplateRequest {
        template: Some(template(pb::TemplateScope::Personal, "Retried", "", "x")),
        request_id: "tpl-1".into(),
    };
    let first = app.session(&seller).create_template_request(create_twice()).await.unwrap();
    let again = app.session(&seller).create_template_request(create_twice()).await.unwrap();
    assert_eq!(first.id, again.id, "a retried create returns the first template");
    app.session(&seller).delete_template(&first.id).await.unwrap();
    assert_eq!(quick.owner_id, seller.id);
    // The same name in another namespace is fine.
    app.session(&buyer)
        .create_template(template(pb::TemplateScope::Personal, "Quick Response", "", "Hi"))
        .await
        .unwrap();

    assert_code(
        app.session(&seller).create_template(template(pb::TemplateScope::Account, "Mine", "", "x")).await,
        Code::PermissionDenied,
    );
    let mut renamed = shared.clone();
    renamed.name = "Taken over".into();
    assert_code(app.session(&seller).update_template(renamed, &["name"]).await, Code::PermissionDenied);
    assert_code(app.session(&seller).delete_template(&shared.id).await, Code::PermissionDenied);
    for outsider in [&buyer, &agent] {
        assert_code(app.session(outsider).get_template(&quick.id).await, Code::NotFound);
        assert_code(app.session(outsider).delete_template(&quick.id).await, Code::NotFound);
        assert_code(app.session(outsider).render_template(&quick.id, &[("name", "x")]).await, Code::NotFound);
    }
    assert_code(
        app.session(&buyer).send_message(from_template(&conversation.id, &quick.id, &[("name", "x")])).await,
        Code::NotFound,
    );
    let sent = app
        .session(&seller)
        .send_message(from_template(&conversation.id, &quick.id, &[("name", "Ada")]))
        .await
        .unwrap();
    assert_eq!(sent.content, "Thanks, Ada!");

    let listed = app.session(&seller).list_templates(pb::ListTemplatesRequest::default()).await.unwrap();
    let names: Vec<&str> = listed.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Quick Response", "Vehicle available"], "the account's and its own, by name");
    assert_eq!(listed.total_size, 2);
    let other_account = app.create_account("other").await;
    let stranger = app.bootstrap_user(&other_account, pb::Role::Admin, "Stranger").await;
    assert_code(app.session(&stranger).get_template(&shared.id).await, Code::NotFound);
    assert!(app.session(&stranger).list_templates(Default::default()).await.unwrap().templates.is_empty());
}

#[tokio::test]
async fn templates_list_by_category_and_scope_in_pages() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let session = app.session(&agent);
    for index in 0..5 {
        let category = if index % 2 == 0 { "inquiry" } else { "offer" };
        session
            .create_template(template(pb::TemplateScope::Account, &format!("t{index}"), category, "x"))
            .await
            .unwrap();
    }
    session.create_template(template(pb::TemplateScope::Personal, "mine", "inquiry", "x")).await.unwrap();

    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = session
            .list_templates(pb::ListTemplatesRequest {
                category: "inquiry".into(),
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total_size, 4);
        names.extend(page.templates.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(names, ["mine", "t0", "t2", "t4"]);
    let personal = session
        .list_templates(pb::ListTemplatesRequest { scope: pb::TemplateScope::Personal as i32, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(personal.templates.len(), 1);
    assert_invalid(session.list_templates(pb::ListTemplatesRequest { scope: 9, ..Default::default() }).await, "scope");
}

#[tokio::test]
async fn template_events_reach_those_who_can_see_the_template() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let seller = app.member("Seller").await;
    let buyer = app.member("Buyer").await;
    let mut seller_stream = app.session(&seller).subscribe_after("").await.unwrap();
    let mut buyer_stream = app.session(&buyer).subscribe_after("").await.unwrap();

    let shared = account_template(&app, &agent).await;
    let personal =
        app.session(&seller).create_template(template(pb::TemplateScope::Personal, "Mine", "", "x")).await.unwrap();
    app.session(&seller).delete_template(&personal.id).await.unwrap();
    app.session(&agent).delete_template(&shared.id).await.unwrap();

    let template_of = |event: &pb::Event| match &event.payload {
        Some(pb::event::Payload::Template(template)) => (event.r#type, template.id.clone()),
        other => panic!("not a template event: {other:?}"),
    };
    let seen: Vec<_> = next_events(&mut seller_stream, 4).await.iter().map(template_of).collect();
    assert_eq!(
        seen,
        [
            (pb::EventType::TemplateCreated as i32, shared.id.clone()),
            (pb::EventType::TemplateCreated as i32, personal.id.clone()),
            (pb::EventType::TemplateDeleted as i32, personal.id.clone()),
            (pb::EventType::TemplateDeleted as i32, shared.id.clone()),
        ]
    );
    let seen: Vec<_> = next_events(&mut buyer_stream, 2).await.iter().map(template_of).collect();
    assert_eq!(seen[1], (pb::EventType::TemplateDeleted as i32, shared.id.clone()), "not the seller's own");
}

/// Seed 000's `template_alias`: a stable key, unique in its scope, wherever an id is asked
/// for; the caller's own personal template of an alias before the account's.
#[tokio::test]
async fn a_template_is_sent_and_rendered_by_its_alias() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let lead = app.member("Lead").await;
    let conversation = app.conversation(&agent, &[(&lead, "lead")]).await;
    let staff = app.session(&agent);
    let with_alias = |scope, name: &str, content: &str, alias: &str| pb::Template {
        alias: alias.into(),
        ..template(scope, name, "", content)
    };
    let account = staff
        .create_template(with_alias(
            pb::TemplateScope::Account,
            "Accepted",
            "Offer accepted, {{name}}.",
            "offer_accepted",
        ))
        .await
        .unwrap();
    assert_eq!(account.alias, "offer_accepted");
    // Unique in its scope, not across scopes.
    let taken = staff.create_template(with_alias(pb::TemplateScope::Account, "Other", "x", "offer_accepted")).await;
    assert!(assert_code(taken, Code::AlreadyExists).message().contains(&account.id));
    let personal = staff
        .create_template(with_alias(pb::TemplateScope::Personal, "Mine", "Great news, {{name}}!", "offer_accepted"))
        .await
        .unwrap();

    // The agent's own first; the member, who cannot see it, gets the account's.
    let sent = staff.send_message(from_template(&conversation.id, "offer_accepted", &[("name", "Ann")])).await.unwrap();
    assert_eq!((sent.template_id.as_str(), sent.content.as_str()), (personal.id.as_str(), "Great news, Ann!"));
    let member = app.session(&lead);
    let sent = member.send_message(from_template(&conversation.id, "offer_accepted", &[("name", "Bo")])).await.unwrap();
    assert_eq!((sent.template_id.as_str(), sent.content.as_str()), (account.id.as_str(), "Offer accepted, Bo."));
    let rendered = member.render_template("offer_accepted", &[("name", "Cy")]).await.unwrap();
    assert_eq!(rendered.content, "Offer accepted, Cy.");

    // Renamed or cleared through an update; an unknown alias is NOT_FOUND.
    let cleared = pb::Template { id: personal.id.clone(), ..Default::default() };
    let cleared = staff.update_template(cleared, &["alias"]).await.unwrap();
    assert_eq!(cleared.alias, "");
    let sent = staff.send_message(from_template(&conversation.id, "offer_accepted", &[("name", "Di")])).await.unwrap();
    assert_eq!(sent.template_id, account.id);
    assert_code(member.render_template("no_such_alias", &[]).await, Code::NotFound);
    assert_code(staff.send_message(from_template(&conversation.id, "no_such_alias", &[])).await, Code::NotFound);
    assert_invalid(
        staff.create_template(with_alias(pb::TemplateScope::Personal, "Bad", "x", "Not An Alias")).await,
        "template.alias",
    );
    assert_invalid(
        staff.create_template(with_alias(pb::TemplateScope::Personal, "Bad", "x", "tpl_looks_like_an_id")).await,
        "template.alias",
    );
    assert_invalid(staff.send_message(from_template(&conversation.id, "Not An Alias", &[])).await, "template_id");
}
