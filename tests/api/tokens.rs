//! User tokens: a backend's admin key mints a short-lived token for one of its users; a
//! browser or app sends it like a key and acts as that user, nothing more. Expiry,
//! deactivating the user and rotating the account's secret each end the token, and the
//! streams opened with it.

use std::time::Duration;

use missive::api::pb;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::helpers::{TestApp, TestUser, WAIT, assert_code, assert_invalid, next_events, spawn_app, spawn_app_with};

fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|info| info.reason.clone()).unwrap_or_default()
}

/// What ends `stream` (skipping what it delivers first), within the test's wait.
async fn end_of(stream: &mut Streaming<pb::Event>) -> Status {
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await.expect("the stream ends in time") {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => return status,
        }
    }
}

/// A member with a conversation, and a token for it.
async fn member_with_token(app: &TestApp, ttl: Option<Duration>) -> (TestUser, String, pb::CreateUserTokenResponse) {
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await;
    let minted = app.as_admin().create_user_token(&buyer.id, ttl).await.expect("a token");
    (buyer, conversation.id, minted)
}

#[tokio::test]
async fn a_token_acts_as_its_user_and_nothing_more() {
    let app = spawn_app().await;
    let (buyer, conversation_id, minted) = member_with_token(&app, None).await;
    assert!(minted.token.split('.').count() == 3, "a JWT: {}", minted.token);
    let expires_in = crate::helpers::micros(minted.expire_time)
        - crate::helpers::micros(Some(crate::helpers::in_future(Duration::ZERO)));
    assert!((3_500_000_000..=3_601_000_000).contains(&expires_in), "an hour by default: {expires_in}");

    let as_token = app.session_with_key(&minted.token);
    assert_eq!(as_token.get_caller().await.unwrap().id, buyer.id);
    let sent = as_token.send_message(crate::helpers::text(&conversation_id, "sent from a phone")).await.unwrap();
    assert_eq!(sent.sender_id, buyer.id);
    let mut stream = as_token.subscribe_after("").await.unwrap();
    app.send(&buyer, &conversation_id, "seen live").await;
    assert_eq!(next_events(&mut stream, 1).await.len(), 1);

    // Administration needs an API key, even for an admin's token.
    let admin_token = app.as_admin().create_user_token(&app.admin.id, None).await.unwrap().token;
    let status = assert_code(
        app.session_with_key(&admin_token).create_user_token(&buyer.id, None).await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("API key"), "{status:?}");
    assert_code(app.session(&buyer).create_user_token(&buyer.id, None).await, Code::PermissionDenied);
}

#[tokio::test]
async fn minting_is_bounded_and_stays_in_the_account() {
    let app = spawn_app_with(|config| config.max_user_token_ttl = Duration::from_secs(600)).await;
    let member = app.member("member").await;
    let admin = app.as_admin();

    assert_invalid(admin.create_user_token(&member.id, Some(Duration::from_secs(601))).await, "ttl");
    assert_invalid(admin.create_user_token(&member.id, Some(Duration::ZERO)).await, "ttl");
    assert_invalid(admin.create_user_token("usr_nope", None).await, "user_id");
    let capped = admin.create_user_token(&member.id, None).await.unwrap();
    let lasts = crate::helpers::micros(capped.expire_time)
        - crate::helpers::micros(Some(crate::helpers::in_future(Duration::ZERO)));
    // Capped by the maximum (JWTs count whole seconds: the expiry is rounded up).
    assert!(lasts <= 601_000_000, "the default is capped by the maximum: {lasts}");

    let other_account = app.create_account("other").await;
    let stranger = app.bootstrap_user(&other_account, pb::Role::Member, "stranger").await;
    assert_code(admin.create_user_token(&stranger.id, None).await, Code::NotFound);
}

/// The account's stored signing secret, read as an attacker who stole it would have it.
async fn stored_secret(app: &TestApp, account_id: &str) -> String {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let sql = format!("SELECT token_secret FROM accounts WHERE id = '{account_id}'");
    if let Some(path) = app.database_url.strip_prefix("sqlite:") {
        let db = rusqlite::Connection::open(path).unwrap();
        return db.query_row(&sql, [], |row| row.get(0)).unwrap();
    }
    let db = Database::connect(&app.database_url).await.unwrap();
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    let secret = row.try_get::<String>("", "token_secret").unwrap();
    db.close().await.unwrap();
    secret
}

/// A token with these claims, signed with `secret` by `algorithm`.
fn forge(claims: &serde_json::Value, secret: &str, algorithm: jsonwebtoken::Algorithm) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &key).unwrap()
}

fn claims(account_id: &str, user_id: &str) -> serde_json::Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    serde_json::json!({"iss": "missive", "sub": user_id, "acc": account_id, "gen": 0, "iat": now, "exp": now + 600})
}

#[tokio::test]
async fn forged_and_altered_tokens_are_refused_alike() {
    let app = spawn_app().await;
    let (buyer, _, minted) = member_with_token(&app, None).await;
    let other_account = app.create_account("other").await;
    let other_admin = app.bootstrap_user(&other_account, pb::Role::Admin, "other admin").await;
    let other_member = app.bootstrap_user(&other_account, pb::Role::Member, "other member").await;
    app.session(&other_admin).create_user_token(&other_member.id, None).await.unwrap();
    let (ours, theirs) = (stored_secret(&app, &app.account_id).await, stored_secret(&app, &other_account).await);

    // The harness is right: our own secret makes a token that works.
    let genuine = forge(&claims(&app.account_id, &buyer.id), &ours, jsonwebtoken::Algorithm::HS256);
    assert_eq!(app.session_with_key(&genuine).get_caller().await.unwrap().id, buyer.id);

    let (header, rest) = minted.token.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let unsigned_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let forgeries = [
        // Another account's secret claiming our user, and our user's id under the other account.
        forge(&claims(&app.account_id, &buyer.id), &theirs, jsonwebtoken::Algorithm::HS256),
        forge(&claims(&other_account, &buyer.id), &theirs, jsonwebtoken::Algorithm::HS256),
        // A made-up secret; another HMAC; no signature at all; a signature from another token.
        forge(&claims(&app.account_id, &buyer.id), "guessed", jsonwebtoken::Algorithm::HS256),
        forge(&claims(&app.account_id, &buyer.id), &ours, jsonwebtoken::Algorithm::HS512),
        format!("{unsigned_header}.{}.", base64_url(claims(&app.account_id, &buyer.id).to_string().as_bytes())),
        format!(
            "{header}.{}.{}",
            base64_url(claims(&app.account_id, &app.admin.id).to_string().as_bytes()),
            minted.token.rsplit('.').next().unwrap()
        ),
        format!("{header}.{payload}.{}", base64_url(b"not the signature")),
        "not.a.token".to_owned(),
    ];
    for token in forgeries {
        let status = assert_code(app.session_with_key(&token).get_caller().await, Code::Unauthenticated);
        assert_eq!(reason(&status), "CREDENTIALS_INVALID", "{token}: {status:?}");
        assert!(status.message().contains("neither an API key"), "one answer for every forgery: {status:?}");
    }

    // A forged token naming a deactivated user learns nothing about that user.
    app.as_admin().deactivate_user(&buyer.id).await.unwrap();
    let forged = forge(&claims(&app.account_id, &buyer.id), "guessed", jsonwebtoken::Algorithm::HS256);
    let status = assert_code(app.session_with_key(&forged).get_caller().await, Code::Unauthenticated);
    assert!(!status.message().contains("deactivated"), "{status:?}");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_token_cannot_administer() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let admin_token = app.as_admin().create_user_token(&app.admin.id, None).await.unwrap().token;
    let as_token = app.session_with_key(&admin_token);
    assert_eq!(as_token.get_caller().await.unwrap().id, app.admin.id, "the token itself works");

    let refusals = [
        as_token.list_users(pb::ListUsersRequest::default()).await.map(|_| ()),
        as_token.create_api_key(&member.id, "sneaky").await.map(|_| ()),
        as_token.deactivate_user(&member.id).await.map(|_| ()),
        as_token.create_user_token(&member.id, None).await.map(|_| ()),
        as_token.rotate_user_token_secret().await.map(|_| ()),
    ];
    for refused in refusals {
        let status = assert_code(refused, Code::PermissionDenied);
        assert!(status.message().contains("API key"), "{status:?}");
    }
}

#[tokio::test]
async fn an_expired_token_ends_its_stream_and_its_calls() {
    let app = spawn_app().await;
    let (_, _, minted) = member_with_token(&app, Some(Duration::from_secs(2))).await;
    let as_token = app.session_with_key(&minted.token);
    let mut stream = as_token.subscribe_after("").await.unwrap();

    let ended = end_of(&mut stream).await;
    assert_eq!((ended.code(), reason(&ended)), (Code::Unauthenticated, "TOKEN_EXPIRED".to_owned()), "{ended:?}");
    let status = assert_code(as_token.get_caller().await, Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_EXPIRED");
}

#[tokio::test]
async fn deactivating_a_user_ends_its_tokens_keys_and_streams_until_reactivated() {
    let app = spawn_app().await;
    let (buyer, _, minted) = member_with_token(&app, None).await;
    let (as_token, as_key) = (app.session_with_key(&minted.token), app.session(&buyer));
    let mut token_stream = as_token.subscribe_after("").await.unwrap();
    let mut key_stream = as_key.subscribe_after("").await.unwrap();

    let deactivated = app.as_admin().deactivate_user(&buyer.id).await.unwrap();
    assert!(deactivated.deactivate_time.is_some());

    for stream in [&mut token_stream, &mut key_stream] {
        assert_eq!(end_of(stream).await.code(), Code::Unauthenticated);
    }
    for session in [&as_token, &as_key] {
        let status = assert_code(session.get_caller().await, Code::Unauthenticated);
        assert!(status.message().contains("deactivated"), "{status:?}");
    }
    assert_code(app.as_admin().create_user_token(&buyer.id, None).await, Code::FailedPrecondition);
    assert_code(app.as_admin().create_api_key(&buyer.id, "another").await, Code::FailedPrecondition);
    assert_code(app.as_admin().deactivate_user(&app.admin.id).await, Code::FailedPrecondition);

    let reactivated = app.as_admin().reactivate_user(&buyer.id).await.unwrap();
    assert!(reactivated.deactivate_time.is_none());
    assert_eq!(as_key.get_caller().await.unwrap().id, buyer.id);
    // Tokens minted before stay void: a stolen device's token does not come back.
    assert_code(as_token.get_caller().await, Code::Unauthenticated);
    let fresh = app.as_admin().create_user_token(&buyer.id, None).await.unwrap().token;
    assert_eq!(app.session_with_key(&fresh).get_caller().await.unwrap().id, buyer.id);
}

#[tokio::test]
async fn rotating_the_secret_ends_every_token_and_its_streams() {
    let app = spawn_app().await;
    let (buyer, _, minted) = member_with_token(&app, None).await;
    let as_token = app.session_with_key(&minted.token);
    let mut stream = as_token.subscribe_after("").await.unwrap();

    app.as_admin().rotate_user_token_secret().await.unwrap();

    assert_eq!(end_of(&mut stream).await.code(), Code::Unauthenticated);
    assert_code(as_token.get_caller().await, Code::Unauthenticated);
    let fresh = app.as_admin().create_user_token(&buyer.id, None).await.unwrap().token;
    assert_eq!(app.session_with_key(&fresh).get_caller().await.unwrap().id, buyer.id);
    // A replica on the same database takes the same tokens.
    let replica = app.replica(|_| {}).await;
    assert_eq!(replica.session_with_key(&fresh).get_caller().await.unwrap().id, buyer.id);
    assert_code(replica.session_with_key(&minted.token).get_caller().await, Code::Unauthenticated);
}
