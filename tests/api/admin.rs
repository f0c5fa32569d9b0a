//! AdminService: users and API keys.

use missive::api::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{assert_code, assert_invalid, micros, spawn_app};

#[tokio::test]
async fn admin_creates_a_user_whose_new_key_authenticates_as_that_user() {
    let app = spawn_app().await;
    let buyer = app.member("Jane Buyer").await;

    let me = app.session(&buyer).get_caller().await.unwrap();

    assert_eq!(me.id, buyer.id);
    assert_eq!(me.role, pb::Role::Member as i32);
    assert_eq!(me.display_name, "Jane Buyer");
    assert_eq!(me.account_id, app.account_id);
}

#[tokio::test]
async fn create_user_with_the_same_request_id_returns_the_first_user() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let request = || pb::CreateUserRequest {
        user: Some(pb::User {
            role: pb::Role::Agent as i32,
            display_name: "Agent Smith".into(),
            email: "smith@example.com".into(),
            phone: "+1 (555) 123-4567".into(),
            external_id: "crm-7".into(),
            ..Default::default()
        }),
        request_id: "req-1".into(),
    };

    let first = admin.create_user(request()).await.unwrap();
    let retried = admin.create_user(request()).await.unwrap();

    assert_eq!(first, retried);
    let listed =
        admin.list_users(pb::ListUsersRequest { external_id: "crm-7".into(), ..Default::default() }).await.unwrap();
    assert_eq!(listed.users, vec![first]);
    assert_eq!(listed.total_size, 1);
}

#[tokio::test]
async fn an_external_id_belongs_to_one_user_of_the_account() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let create = |request_id: &str| pb::CreateUserRequest {
        user: Some(pb::User { role: pb::Role::Member as i32, external_id: "shop-42".into(), ..Default::default() }),
        request_id: request_id.into(),
    };
    admin.create_user(create("a")).await.unwrap();

    assert_code(admin.create_user(create("b")).await, Code::AlreadyExists);
}

#[tokio::test]
async fn update_user_changes_only_the_fields_in_the_mask() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let user = app.member("Before").await;

    let updated = admin
        .update_user(pb::UpdateUserRequest {
            user: Some(pb::User {
                id: user.id.clone(),
                display_name: "After".into(),
                email: "after@example.com".into(),
                role: pb::Role::Admin as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["display_name".into(), "email".into()] }),
        })
        .await
        .unwrap();

    assert_eq!(updated.display_name, "After");
    assert_eq!(updated.email, "after@example.com");
    assert_eq!(updated.role, pb::Role::Member as i32, "role was not in the mask");
    let read_back = admin.get_user(&user.id).await.unwrap();
    assert_eq!(read_back, updated);
    assert!(micros(updated.update_time) > micros(updated.create_time));
}

#[tokio::test]
async fn without_a_mask_populated_fields_change_and_a_star_replaces_everything() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let user = app.member("Before").await;
    let update = |user: pb::User, paths: Option<&[&str]>| pb::UpdateUserRequest {
        user: Some(user),
        update_mask: paths.map(|paths| FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
    };

    // No mask (AIP-134): the fields the request populates, here email and external_id.
    let populated = pb::User {
        id: user.id.clone(),
        email: "a@example.com".into(),
        external_id: "shop-1".into(),
        ..Default::default()
    };
    let updated = admin.update_user(update(populated, None)).await.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.email.as_str()), ("Before", "a@example.com"));
    assert_eq!((updated.external_id.as_str(), updated.role), ("shop-1", pb::Role::Member as i32));

    // `*`: a full replacement; what is left empty is cleared, what is required must be given.
    let replacement = pb::User {
        id: user.id.clone(),
        display_name: "After".into(),
        role: pb::Role::Agent as i32,
        ..Default::default()
    };
    let replaced = admin.update_user(update(replacement, Some(&["*"]))).await.unwrap();
    assert_eq!((replaced.display_name.as_str(), replaced.role), ("After", pb::Role::Agent as i32));
    assert_eq!((replaced.email.as_str(), replaced.external_id.as_str()), ("", ""));
    let without_role = pb::User { id: user.id.clone(), display_name: "After".into(), ..Default::default() };
    assert_invalid(admin.update_user(update(without_role.clone(), Some(&["*"]))).await, "user.role");
    assert_invalid(admin.update_user(update(without_role, Some(&["*", "email"]))).await, "update_mask");

    // A request that would change nothing is refused, naming the mask.
    let nothing = pb::User { id: user.id.clone(), ..Default::default() };
    assert_invalid(admin.update_user(update(nothing, None)).await, "update_mask");
}

#[tokio::test]
async fn list_users_pages_through_every_user_once_and_filters_by_role() {
    let app = spawn_app().await;
    for index in 0..5 {
        app.member(&format!("member {index}")).await;
    }
    app.agent("agent").await;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .as_admin()
            .list_users(pb::ListUsersRequest {
                page_size: 2,
                page_token: token.clone(),
                role: pb::Role::Member as i32,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total_size, 5);
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.display_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }

    seen.sort();
    assert_eq!(seen, (0..5).map(|i| format!("member {i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_revoked_key_no_longer_authenticates() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let user = app.member("Soon revoked").await;
    let keys = admin
        .list_api_keys(pb::ListApiKeysRequest { user_id: user.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .api_keys;
    assert_eq!(keys.len(), 1);
    assert!(user.key.starts_with(&keys[0].prefix), "the prefix identifies the key");

    let revoked = admin.revoke_api_key(&keys[0].id).await.unwrap();

    assert!(revoked.revoke_time.is_some());
    let status = assert_code(app.session(&user).get_unread_count().await, Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{status:?}");
}

#[tokio::test]
async fn users_are_validated_field_by_field() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let create =
        |user: pb::User| admin.create_user(pb::CreateUserRequest { user: Some(user), request_id: String::new() });
    let member = |email: &str, phone: &str| pb::User {
        role: pb::Role::Member as i32,
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    };

    assert_invalid(create(member("not-an-email", "")).await, "user.email");
    assert_invalid(create(member("", "555-12")).await, "user.phone");
    assert_invalid(create(pb::User::default()).await, "user.role");
    // Accepted, and stored (phones in E.164, as envelopes store them): read back.
    for (email, phone, stored_phone) in
        [("a@example.com", "+4915112345678", "+4915112345678"), ("", "(555) 123-4567", "+15551234567")]
    {
        let created = create(member(email, phone)).await.unwrap();
        let stored = admin.get_user(&created.id).await.unwrap();
        assert_eq!((stored.email.as_str(), stored.phone.as_str()), (email, stored_phone));
    }
}

/// Another account's user is NOT_FOUND to an admin everywhere, listing its keys included.
#[tokio::test]
async fn another_accounts_user_is_not_found_when_listing_its_keys() {
    let app = spawn_app().await;
    let member = app.member("Member").await;
    let other_account = app.create_account("other").await;
    let stranger = app.bootstrap_user(&other_account, pb::Role::Admin, "Stranger").await;
    let request = || pb::ListApiKeysRequest { user_id: member.id.clone(), ..Default::default() };

    assert_code(app.session(&stranger).get_user(&member.id).await, Code::NotFound);
    assert_code(app.session(&stranger).list_api_keys(request()).await, Code::NotFound);
    assert_eq!(app.as_admin().list_api_keys(request()).await.unwrap().api_keys.len(), 1);
}

#[tokio::test]
async fn an_admin_cannot_lock_itself_out() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let demote = pb::UpdateUserRequest {
        user: Some(pb::User { id: app.admin.id.clone(), role: pb::Role::Member as i32, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["role".into()] }),
    };

    let status = assert_code(admin.update_user(demote).await, Code::FailedPrecondition);
    assert!(status.message().contains("its own role"), "{status:?}");
    assert_code(admin.deactivate_user(&app.admin.id).await, Code::FailedPrecondition);
    assert_eq!(admin.get_caller().await.unwrap().role, pb::Role::Admin as i32, "still an admin");
    // Another admin's role may change.
    let other = app.user(pb::Role::Admin, "other admin").await;
    let demote_other = pb::UpdateUserRequest {
        user: Some(pb::User { id: other.id.clone(), role: pb::Role::Member as i32, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["role".into()] }),
    };
    assert_eq!(admin.update_user(demote_other).await.unwrap().role, pb::Role::Member as i32);
}
