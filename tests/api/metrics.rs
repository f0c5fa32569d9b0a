//! Prometheus metrics on their own address (`--metrics-listen`), scraped over HTTP from a
//! server process and parsed: calls by method and code with latency histograms, open
//! streams, events appended and delivered, write batches and their sizes, the pool, the
//! process (CPU, memory, descriptors, start time) and the build.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::helpers::{Session, assert_code, free_port, next_events, serve_in_a_process, spawn_app, text};

/// One scrape: every sample, by its name with labels as exposed (`name{a="b"}`).
async fn scrape(port: u16) -> HashMap<String, f64> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("the metrics port answers");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
            (sample.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("not a value: {line}")))
        })
        .collect()
}

/// The value of `name` with exactly these labels (in the exporter's order).
fn value(samples: &HashMap<String, f64>, sample: &str) -> f64 {
    *samples.get(sample).unwrap_or_else(|| {
        let mut names: Vec<_> =
            samples.keys().filter(|key| key.starts_with("missive_") || key.starts_with("process_")).collect();
        names.sort();
        panic!("no sample {sample} among {names:#?}")
    })
}

#[tokio::test]
async fn a_scrape_shows_calls_streams_events_batches_and_the_pool() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let metrics_port = free_port();
    let (_server, channel) =
        serve_in_a_process(&app.database_url, &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]).await;
    let (as_buyer, as_seller) = (Session::over(channel.clone(), &buyer.key), Session::over(channel, &seller.key));

    let mut stream = as_seller.subscribe_after("").await.unwrap();
    for index in 0..3 {
        as_buyer.send_message(text(&conversation.id, &format!("hello {index}"))).await.unwrap();
    }
    next_events(&mut stream, 3).await;
    assert_code(as_buyer.get_conversation(&format!("conv_{}", "0".repeat(32))).await, Code::NotFound);

    let samples = scrape(metrics_port).await;
    let send = r#"method="/missive.v1.MessageService/SendMessage""#;
    assert_eq!(value(&samples, &format!(r#"missive_calls_total{{{send},code="OK"}}"#)), 3.0);
    let get = r#"method="/missive.v1.ConversationService/GetConversation""#;
    assert_eq!(value(&samples, &format!(r#"missive_calls_total{{{get},code="NotFound"}}"#)), 1.0);
    assert_eq!(value(&samples, &format!("missive_call_duration_seconds_count{{{send}}}")), 3.0);
    let slowest = value(&samples, &format!(r#"missive_call_duration_seconds_bucket{{{send},le="+Inf"}}"#));
    assert_eq!(slowest, 3.0);
    assert_eq!(value(&samples, "missive_streams_open"), 1.0);
    assert!(value(&samples, "missive_events_appended_total") >= 3.0);
    assert!(value(&samples, "missive_events_delivered_total") >= 3.0);
    assert!(value(&samples, r#"missive_write_batches_total{outcome="committed"}"#) >= 3.0);
    assert!(value(&samples, "missive_write_batch_units_count") >= 3.0);
    assert!(value(&samples, "missive_db_pool_max_connections") >= 1.0);
    assert!(samples.contains_key(r#"missive_db_pool_connections{state="in_use"}"#));

    // The stream's end is counted, and it no longer counts as open.
    drop(stream);
    let mut samples = scrape(metrics_port).await;
    for _ in 0..50 {
        if value(&samples, "missive_streams_open") == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        samples = scrape(metrics_port).await;
    }
    assert_eq!(value(&samples, "missive_streams_open"), 0.0);
    let subscribe = r#"method="/missive.v1.EventService/Subscribe""#;
    assert_eq!(value(&samples, &format!(r#"missive_calls_total{{{subscribe},code="Canceled"}}"#)), 1.0);
}

#[tokio::test]
async fn a_scrape_shows_the_process_and_the_build_it_runs() {
    let app = spawn_app().await;
    let metrics_port = free_port();
    let (_server, channel) =
        serve_in_a_process(&app.database_url, &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]).await;
    Session::over(channel, &app.admin.key).get_caller().await.unwrap();

    let samples = scrape(metrics_port).await;
    // In clock ticks (10 ms), with their fractions of a second: opening and migrating the
    // database and answering a call took some.
    let cpu = value(&samples, "process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 60.0, "{cpu} s of CPU");
    assert!(value(&samples, "process_resident_memory_bytes") > 1_000_000.0);
    // At least the listeners, the database file and a connection.
    assert!(value(&samples, "process_open_fds") >= 4.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = value(&samples, "process_start_time_seconds");
    assert!(started > now - 300.0 && started <= now + 1.0, "started at {started}, now {now}");

    let build: Vec<_> = samples.keys().filter(|key| key.starts_with("missive_build_info{")).collect();
    assert_eq!(build.len(), 1, "{build:?}");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let labels = build[0].strip_prefix("missive_build_info{").and_then(|rest| rest.strip_suffix('}')).unwrap();
    let labels: Vec<&str> = labels.split(',').collect();
    let [version, rustc, built_as] = labels.as_slice() else { panic!("{labels:?}") };
    assert_eq!(*version, format!(r#"version="{}""#, env!("CARGO_PKG_VERSION")));
    let rustc = rustc.strip_prefix("rustc=\"").and_then(|rest| rest.strip_suffix('"')).unwrap();
    assert!(rustc.starts_with("1.") && rustc.split('.').count() == 3, "the compiler's version: {rustc}");
    assert_eq!(*built_as, format!(r#"profile="{profile}""#));
    assert_eq!(value(&samples, build[0]), 1.0);
}

#[tokio::test]
async fn made_up_methods_share_one_label() {
    let app = spawn_app().await;
    let metrics_port = free_port();
    let (_server, channel) =
        serve_in_a_process(&app.database_url, &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]).await;
    let session = Session::over(channel.clone(), &app.admin.key);
    session.get_caller().await.unwrap();
    for index in 0..5 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = format!("/missive.v1.AdminService/Made{index}").parse().unwrap();
        let request = tonic::Request::new(Vec::new());
        grpc.unary(request, path, crate::raw_codec::RawCodec).await.expect_err("no such method");
    }

    let samples = scrape(metrics_port).await;
    assert_eq!(value(&samples, r#"missive_calls_total{method="unknown",code="Unauthenticated"}"#), 5.0);
    assert_eq!(value(&samples, r#"missive_calls_total{method="/missive.v1.AdminService/GetCaller",code="OK"}"#), 1.0);
    assert!(!samples.keys().any(|key| key.contains("Made")), "made-up methods must not become labels");
}

#[tokio::test]
async fn calls_past_their_deadline_are_counted_with_their_code() {
    let app = spawn_app().await;
    let metrics_port = free_port();
    let flags = ["--metrics-listen", &format!("127.0.0.1:{metrics_port}"), "--request-timeout", "1ns"];
    let (_server, channel) = serve_in_a_process(&app.database_url, &flags).await;
    // A 1 ns deadline is tokio's 1 ms timer tick: a write nearly always takes longer, and
    // one that beats it is answered and counted OK; the next tries again.
    let session = Session::over(channel, &app.admin.key);
    let mut late = None;
    for attempt in 0..20 {
        let request = missive::api::pb::CreateUserRequest {
            user: Some(missive::api::pb::User {
                role: missive::api::pb::Role::Member as i32,
                display_name: format!("late {attempt}"),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        if let Err(status) = session.create_user(request).await {
            late = Some(status);
            break;
        }
    }
    assert_eq!(late.expect("20 writes each beat a deadline of a nanosecond").code(), Code::DeadlineExceeded);

    let samples = scrape(metrics_port).await;
    let sample = r#"missive_calls_total{method="/missive.v1.AdminService/CreateUser",code="DeadlineExceeded"}"#;
    assert_eq!(value(&samples, sample), 1.0);
}
