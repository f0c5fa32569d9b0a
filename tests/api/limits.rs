//! What one key, one call and one connection may take: bodies are not read before the key
//! is checked, each service reads at most what a valid request can hold, and a key is held
//! to its rates and its open streams.

use std::time::Duration;

use missive::api::pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{Session, assert_code, serve_in_a_process, spawn_app, spawn_app_with, text};

/// The peak resident memory of a process, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn large_bodies_without_a_key_are_refused_unread() {
    let app = spawn_app().await;
    let (child, channel) = serve_in_a_process(&app.database_url, &[]).await;
    let pid = child.id().unwrap();
    let before = peak_memory(pid);

    // Eight concurrent 40 MiB sends (within the messages service's decode limit) with no key.
    let body = "x".repeat(40 * 1024 * 1024);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (session, request) = (Session::over(channel.clone(), ""), text("conv_x", &body));
            tokio::spawn(async move { session.send_message(request).await })
        })
        .collect();
    for call in calls {
        assert_code(call.await.unwrap(), Code::Unauthenticated);
    }

    let grown = peak_memory(pid).saturating_sub(before);
    assert!(grown < 64 * 1024 * 1024, "the server's peak memory grew by {} MiB", grown / (1024 * 1024));
}

#[tokio::test]
async fn a_request_larger_than_its_service_accepts_is_resource_exhausted_naming_the_limit() {
    let app = spawn_app().await;
    let admin = app.as_admin();
    let huge_name = pb::CreateUserRequest {
        user: Some(pb::User { display_name: "x".repeat(100_000), ..Default::default() }),
        request_id: String::new(),
    };

    let status = assert_code(admin.create_user(huge_name).await, Code::ResourceExhausted);

    assert!(status.message().contains("the limit is: 65536 bytes"), "{status:?}");
}

#[tokio::test]
async fn a_key_over_its_call_rate_is_told_when_to_retry_and_other_keys_are_not() {
    let app = spawn_app_with(|config| {
        config.limits.calls_per_second = 1;
        config.limits.call_burst = 3;
    })
    .await;
    // Made in the store, so that the admin's own calls do not use up the rate.
    let buyer = app.bootstrap_user(&app.account_id, pb::Role::Member, "buyer").await;
    let seller = app.bootstrap_user(&app.account_id, pb::Role::Member, "seller").await;
    let as_buyer = app.session(&buyer);

    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(as_buyer.get_unread_count().await);
    }

    let refused: Vec<&Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!refused.is_empty(), "five calls in a moment exceed a burst of three");
    let status = refused[0];
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("a RetryInfo");
    assert!(retry.retry_delay.is_some_and(|delay| delay <= Duration::from_secs(1)), "{retry:?}");
    app.session(&seller).get_unread_count().await.expect("another key has its own rate");

    // Waiting as told is enough: the key calls again.
    tokio::time::sleep(retry.retry_delay.unwrap()).await;
    as_buyer.get_unread_count().await.expect("after the RetryInfo's delay the key may call again");
}

#[tokio::test]
async fn a_key_holds_at_most_its_streams_and_gets_a_place_back_when_one_closes() {
    let app = spawn_app_with(|config| config.limits.max_streams_per_key = 2).await;
    let buyer = app.member("buyer").await;
    let as_buyer = app.session(&buyer);
    let first = as_buyer.subscribe_after("").await.unwrap();
    let _second = as_buyer.subscribe_after("").await.unwrap();

    let status = assert_code(as_buyer.subscribe_after("").await, Code::ResourceExhausted);
    assert!(status.message().contains("--max-streams-per-key"), "{status:?}");
    app.session(&app.member("seller").await).subscribe_after("").await.expect("another key's streams are its own");

    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match as_buyer.subscribe_after("").await {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the closed stream's place never came back: {status:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_opening_streams_too_fast_is_told_when_to_retry() {
    let app = spawn_app_with(|config| {
        config.limits.stream_opens_per_second = 1;
        config.limits.stream_open_burst = 2;
    })
    .await;
    let as_buyer = app.session(&app.member("buyer").await);
    let _open = [as_buyer.subscribe_after("").await.unwrap(), as_buyer.subscribe_after("").await.unwrap()];

    let status = assert_code(as_buyer.subscribe_after("").await, Code::ResourceExhausted);

    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    assert!(status.message().contains("--stream-opens-per-second"), "{status:?}");
}

/// A frame whose compression flag is neither 0 nor 1 is the client's mistake: it is
/// INVALID_ARGUMENT, not the INTERNAL tonic answers. (Sent over grpc-web on HTTP/1.1,
/// where a test can write the frame byte by byte.)
#[tokio::test]
async fn a_frame_with_a_bad_compression_flag_is_invalid_argument() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let frame = [2u8, 0, 0, 0, 0];
    let head = format!(
        "POST /missive.v1.AdminService/GetCaller HTTP/1.1\r\nhost: missive\r\n\
         content-type: application/grpc-web+proto\r\nauthorization: Bearer {}\r\n\
         content-length: {}\r\n\r\n",
        app.admin.key,
        frame.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&frame).await.unwrap();

    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await.unwrap().unwrap();
        assert!(read > 0, "the connection closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(head.contains("grpc-status: 3\r\n"), "{head}");
    assert!(head.contains("invalid%20compression%20flag"), "the message (percent-encoded) says why: {head}");
}

/// A key's requests in progress hold at most its memory budget: large sends from one key
/// all at once are refused RESOURCE_EXHAUSTED naming the flag once the budget is taken
/// (none fails otherwise, and each accepted one is stored), while another key is not held
/// back, and the budget comes back as calls answer.
#[tokio::test]
async fn a_key_holds_at_most_its_memory_budget_of_request_bodies() {
    const MIB: usize = 1024 * 1024;
    let app = spawn_app_with(|config| {
        config.max_attachment_bytes = MIB as u32;
        // Little more than one request of the largest kind (ten 1 MiB attachments, about
        // 12.1 MiB with the text a message may carry).
        config.limits.max_request_memory_per_key = Some(14 * MIB as u64);
    })
    .await;
    let buyer = app.member("buyer").await;
    let seller = app.member("seller").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let large = |label: &str| pb::SendMessageRequest {
        kind: pb::MessageKind::Document as i32,
        attachments: (0..5)
            .map(|index| pb::NewAttachment {
                filename: format!("{label}-{index}.bin"),
                media_type: "application/octet-stream".into(),
                data: vec![index as u8; MIB - 1024],
                ..Default::default()
            })
            .collect(),
        ..text(&conversation.id, label)
    };

    let as_buyer = app.session(&buyer);
    let sends = (0..16).map(|index| {
        let (as_buyer, request) = (as_buyer.clone(), large(&format!("b{index}")));
        async move { as_buyer.send_message(request).await }
    });
    let as_seller = app.session(&seller);
    let other_key = as_seller.send_message(large("seller"));
    let (answers, other) = tokio::join!(futures::future::join_all(sends), other_key);

    other.expect("another key has a budget of its own");
    let refused: Vec<&Status> = answers.iter().filter_map(|answer| answer.as_ref().err()).collect();
    assert!(!refused.is_empty(), "16 sends of 5 MiB at once fit a 14 MiB budget");
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("--max-request-memory-per-key"), "{status:?}");
    }
    let accepted = answers.iter().filter(|answer| answer.is_ok()).count();
    let stored = app.session(&seller).all_messages_in(&conversation.id, 100).await.unwrap();
    assert_eq!(stored.len(), accepted + 1, "every accepted send is stored, no refused one");
    // Everything was given back: the budget holds a whole large request again.
    as_buyer.send_message(large("after")).await.expect("the budget is free again");
}
