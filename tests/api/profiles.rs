//! How people and subjects look: avatars and verified badges (set by admins), a subject's
//! picture and attributes (seed 002's listing).

use std::collections::BTreeMap;

use missive::api::pb;

use crate::helpers::{assert_invalid, spawn_app};

#[tokio::test]
async fn admins_set_avatars_and_badges_that_participants_see() {
    let app = spawn_app().await;
    let seller = app.member("ABC Trucks").await;
    let buyer = app.member("John").await;
    let user = pb::User {
        id: seller.id.clone(),
        avatar_url: "https://cdn.example.com/avatar.jpg".into(),
        verified: true,
        ..Default::default()
    };
    let update = pb::UpdateUserRequest { user: Some(user.clone()), update_mask: None };
    let updated = app.as_admin().update_user(update).await.unwrap();
    assert_eq!((updated.avatar_url.as_str(), updated.verified), ("https://cdn.example.com/avatar.jpg", true));

    for bad in ["javascript:alert(1)", "not a url", "ftp://cdn.example.com/a.jpg"] {
        let user = pb::User { avatar_url: bad.into(), ..user.clone() };
        let update = pb::UpdateUserRequest { user: Some(user), update_mask: None };
        assert_invalid(app.as_admin().update_user(update).await, "user.avatar_url");
    }
    let mine = pb::UpdateUserRequest { user: Some(user.clone()), update_mask: None };
    assert_eq!(app.session(&seller).update_user(mine).await.unwrap_err().code(), tonic::Code::PermissionDenied);

    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let full = app.session(&buyer).get_conversation_in(&conversation.id, pb::View::Full).await.unwrap();
    let shown = full.participants.iter().find(|p| p.user_id == seller.id).unwrap().user.clone().unwrap();
    assert!(shown.verified);
    assert_eq!(shown.avatar_url, "https://cdn.example.com/avatar.jpg");

    // Clearing the badge takes the mask: false is what an omitted field looks like.
    let unverify = pb::UpdateUserRequest {
        user: Some(pb::User { id: seller.id.clone(), verified: false, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["verified".into()] }),
    };
    let updated = app.as_admin().update_user(unverify).await.unwrap();
    assert!(!updated.verified);
    assert_eq!(updated.avatar_url, "https://cdn.example.com/avatar.jpg");
}

#[tokio::test]
async fn a_subject_carries_its_picture_and_attributes() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let attributes = BTreeMap::from([("price".to_string(), "85000".to_string()), ("status".into(), "active".into())]);
    let subject = pb::Subject {
        kind: "listing".into(),
        external_id: "lst_abc".into(),
        title: "2021 Volvo FH 500".into(),
        image_url: "https://cdn.example.com/thumb.jpg".into(),
        attributes: attributes.clone(),
    };
    let request = pb::CreateConversationRequest { subject: Some(subject.clone()), ..Default::default() };
    let created = app.session(&agent).create_conversation(request).await.unwrap().conversation.unwrap();
    assert_eq!(created.subject.as_ref(), Some(&subject));

    // Only the status changes; the rest of the subject stays.
    let mut sold = BTreeMap::new();
    sold.insert("status".to_string(), "sold".to_string());
    sold.insert("price".to_string(), "85000".to_string());
    let change = pb::Conversation {
        id: created.id.clone(),
        subject: Some(pb::Subject { attributes: sold.clone(), ..Default::default() }),
        ..Default::default()
    };
    let mask = prost_types::FieldMask { paths: vec!["subject.attributes".into()] };
    let request = pb::UpdateConversationRequest { conversation: Some(change), update_mask: Some(mask) };
    let updated = app.session(&agent).update_conversation(request).await.unwrap();
    let updated = updated.subject.unwrap();
    assert_eq!((updated.attributes, updated.title.as_str()), (sold, "2021 Volvo FH 500"));

    let bad = pb::Subject { image_url: "data:image/png;base64,AAAA".into(), ..subject.clone() };
    let request = pb::CreateConversationRequest { subject: Some(bad), ..Default::default() };
    assert_invalid(app.session(&agent).create_conversation(request).await, "subject.image_url");
    let long = pb::Subject { attributes: [("price".to_string(), "9".repeat(1025))].into(), ..subject };
    let request = pb::CreateConversationRequest { subject: Some(long), ..Default::default() };
    assert_invalid(app.session(&agent).create_conversation(request).await, "subject.attributes[\"price\"]");
}
