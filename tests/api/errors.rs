//! Every error carries a `google.rpc.ErrorInfo` (a stable reason in the `missive` domain)
//! that a client switches on, and the details that help: `BadRequest` naming the fields,
//! `ResourceInfo` for what was not found, `RetryInfo` where waiting helps. One test per code
//! a client meets, each decoding the details the way any gRPC library does.

use std::collections::HashMap;

use missive::api::pb;
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::{
    helpers::{assert_code, spawn_app, spawn_app_with},
    raw_codec::RawCodec,
};

/// The status's ErrorInfo (reason, metadata), asserting its domain.
fn error_info(status: &Status) -> (String, HashMap<String, String>) {
    let details = status.get_error_details();
    let info = details.error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "missive", "{status:?}");
    (info.reason.clone(), info.metadata.clone())
}

fn reason(status: &Status) -> String {
    error_info(status).0
}

/// A call of `path` with raw `body` bytes and `key`.
async fn raw_call(channel: &Channel, key: &str, path: &str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(body);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    grpc.unary(request, path.parse().unwrap(), RawCodec).await.expect_err("the call fails")
}

#[tokio::test]
async fn bad_input_names_its_fields_in_error_info_and_bad_request() {
    let app = spawn_app().await;
    let status = assert_code(app.as_admin().get_conversation("nope").await, Code::InvalidArgument);

    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "INVALID_FIELD");
    assert_eq!(metadata.get("field").map(String::as_str), Some("id"));
    let violations = status.get_error_details().bad_request().expect("a BadRequest").field_violations.clone();
    assert_eq!(violations[0].field, "id");
}

#[tokio::test]
async fn credentials_roles_and_unknown_resources_have_their_own_reasons() {
    let app = spawn_app().await;
    let member = app.member("member").await;

    let status = assert_code(app.session_with_key("msk_wrong").get_caller().await, Code::Unauthenticated);
    assert_eq!(reason(&status), "CREDENTIALS_INVALID");

    let request = pb::CreateUserRequest {
        user: Some(pb::User { role: pb::Role::Member as i32, display_name: "x".into(), ..Default::default() }),
        request_id: String::new(),
    };
    let status = assert_code(app.session(&member).create_user(request).await, Code::PermissionDenied);
    assert_eq!(reason(&status), "ROLE_NOT_ALLOWED");

    let missing = format!("conv_{}", "0".repeat(32));
    let status = assert_code(app.session(&member).get_conversation(&missing).await, Code::NotFound);
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, "RESOURCE_NOT_FOUND");
    assert_eq!(metadata.get("resource_type").map(String::as_str), Some("conversation"));
    let resource = status.get_error_details().resource_info().cloned().expect("a ResourceInfo");
    assert_eq!((resource.resource_type.as_str(), resource.resource_name.as_str()), ("conversation", missing.as_str()));
}

#[tokio::test]
async fn conflicts_and_states_have_their_own_reasons() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let agent = app.agent("agent").await;

    let as_agent = app.session(&agent);
    as_agent.add_participant(&conversation.id, &agent.id, "support").await.unwrap();
    let status = assert_code(as_agent.add_participant(&conversation.id, &agent.id, "again").await, Code::AlreadyExists);
    assert_eq!(reason(&status), "RESOURCE_EXISTS");

    // Archiving hides a conversation from a participant's own list; staff outside it have none.
    let outsider = app.session(&app.agent("outsider").await);
    let status = assert_code(outsider.archive_conversation(&conversation.id).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "STATE_DOES_NOT_ALLOW");
}

#[tokio::test]
async fn limits_say_when_to_retry() {
    let app = spawn_app_with(|config| {
        config.limits.calls_per_second = 1;
        config.limits.call_burst = 1;
    })
    .await;
    let admin = app.as_admin();
    admin.get_caller().await.unwrap();

    let status = assert_code(admin.get_caller().await, Code::ResourceExhausted);

    assert_eq!(reason(&status), "LIMIT_EXCEEDED");
    assert!(status.get_error_details().retry_info().and_then(|info| info.retry_delay).is_some(), "{status:?}");
}

#[tokio::test]
async fn an_unavailable_database_says_to_retry() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    app.close_database().await;

    let status = assert_code(app.session(&member).get_unread_count().await, Code::Unavailable);

    assert_eq!(reason(&status), "STORAGE_UNAVAILABLE");
    assert!(status.get_error_details().retry_info().and_then(|info| info.retry_delay).is_some(), "{status:?}");
}

#[tokio::test]
async fn the_transports_own_errors_carry_error_info_too() {
    let app = spawn_app().await;
    let key = app.admin.key.clone();

    let status = raw_call(&app.channel, &key, "/missive.v1.AdminService/NoSuchMethod", Vec::new()).await;
    assert_eq!((status.code(), reason(&status)), (Code::Unimplemented, "METHOD_NOT_FOUND".to_owned()));

    let status = raw_call(&app.channel, &key, "/missive.v1.AdminService/GetUser", vec![0xff, 0xff]).await;
    assert_eq!((status.code(), reason(&status)), (Code::InvalidArgument, "MALFORMED_REQUEST".to_owned()));

    let huge = pb::GetUserRequest { id: "x".repeat(100_000) };
    let body = prost::Message::encode_to_vec(&huge);
    let status = raw_call(&app.channel, &key, "/missive.v1.AdminService/GetUser", body).await;
    assert_eq!((status.code(), reason(&status)), (Code::ResourceExhausted, "REQUEST_TOO_LARGE".to_owned()));
}

#[tokio::test]
async fn a_call_over_the_request_timeout_is_deadline_exceeded_with_its_reason() {
    let app = spawn_app_with(|config| config.limits.request_timeout = std::time::Duration::from_nanos(1)).await;

    // A write: its commit (fsync) nearly always takes longer than the timer's millisecond;
    // one that beats it is answered, and the next tries again.
    let mut status = None;
    for attempt in 0..20 {
        let request = pb::CreateUserRequest {
            user: Some(pb::User {
                role: pb::Role::Member as i32,
                display_name: format!("late {attempt}"),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        match app.as_admin().create_user(request).await {
            Ok(_) => continue,
            Err(late) => {
                status = Some(late);
                break;
            }
        }
    }
    let status = status.expect("20 writes each beat a deadline of a nanosecond");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert!(status.message().contains("--request-timeout"), "{status:?}");
}
