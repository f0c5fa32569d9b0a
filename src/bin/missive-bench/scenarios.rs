//! What is measured. Each scenario returns one [`Measured`] per run (or several, for the
//! read pages), with the server's CPU time over the scenario divided by its calls.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use missive::api::pb::{
    self, admin_service_client::AdminServiceClient, conversation_service_client::ConversationServiceClient,
    event_service_client::EventServiceClient, message_service_client::MessageServiceClient,
};
use tonic::{Request, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    load::{self, Latency},
    seed::Fixture,
    server::Server,
};

pub type Failure = Box<dyn std::error::Error>;

/// How scenarios run.
pub struct Plan {
    pub duration: Duration,
    pub subscribers: usize,
    pub fanout_rate: u32,
    pub idle_streams: usize,
}

/// One scenario's figures in one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measured {
    pub scenario: String,
    /// Calls (or messages) per second.
    pub rate: f64,
    pub calls: u64,
    pub errors: u64,
    pub latency: Latency,
    /// Server CPU time per call, in microseconds.
    pub cpu_us_per_call: f64,
    /// The server's resident memory at the end, in KiB.
    pub rss_kib: u64,
    /// This rate as a percentage of the Health rate of the same run.
    pub percent_of_health: Option<f64>,
    /// Fan-out only: deliveries not made within 10 s of the last acknowledgement, and
    /// deliveries made twice.
    pub missed: Option<u64>,
    pub duplicated: Option<u64>,
    /// Idle streams only: the server's memory per open stream, in KiB.
    pub kib_per_stream: Option<f64>,
    /// Idle streams only: the server's CPU time per stream opened, in microseconds.
    pub open_cpu_us_per_stream: Option<f64>,
    /// On PostgreSQL: the database's CPU time per call, in microseconds.
    pub database_cpu_us_per_call: Option<f64>,
}

impl Measured {
    pub fn from_load(scenario: &str, server: &Server, cpu_before: f64, mut outcome: load::Outcome) -> Self {
        let cpu = server.cpu_seconds() - cpu_before;
        Self {
            scenario: scenario.to_owned(),
            rate: outcome.calls as f64 / outcome.elapsed.as_secs_f64(),
            calls: outcome.calls,
            errors: outcome.errors,
            latency: Latency::of(&mut outcome.samples),
            cpu_us_per_call: cpu * 1e6 / outcome.calls.max(1) as f64,
            rss_kib: server.rss_kib(),
            percent_of_health: None,
            missed: None,
            duplicated: None,
            kib_per_stream: None,
            open_cpu_us_per_stream: None,
            database_cpu_us_per_call: None,
        }
    }

    /// The same figures under another scenario name.
    pub fn renamed(mut self, scenario: &str) -> Self {
        self.scenario = scenario.to_owned();
        self
    }

    /// The rate as a share of the Health baseline `health_rate`.
    pub fn against(mut self, health_rate: f64) -> Self {
        self.percent_of_health = Some(100.0 * self.rate / health_rate);
        self
    }
}

pub fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("an ASCII key"));
    request
}

async fn channels(server: &Server, count: usize) -> Result<Vec<Channel>, Failure> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(server.channel().await?);
    }
    Ok(channels)
}

/// `grpc.health.v1.Health/Check`, 64 in flight over 8 connections: the ceiling of any RPC.
pub async fn health(server: &Server, plan: &Plan) -> Result<Measured, Failure> {
    let channels = Arc::new(channels(server, 8).await?);
    let cpu = server.cpu_seconds();
    let outcome = load::run(64, plan.duration, move |task, _| {
        let mut client = HealthClient::new(channels[task % channels.len()].clone());
        async move { client.check(HealthCheckRequest { service: String::new() }).await.map(drop) }
    })
    .await;
    Ok(Measured::from_load("health", server, cpu, outcome))
}

/// `SendMessage` with `in_flight` calls at once over 8 connections, each task a member
/// writing into its own conversation; with `muted`, conversations whose recipient muted
/// them, so that no send makes a notification (the other half: every send makes one).
pub async fn send(
    server: &Server,
    fixture: &Fixture,
    plan: &Plan,
    in_flight: usize,
    muted: bool,
) -> Result<Measured, Failure> {
    let channels = Arc::new(channels(server, 8).await?);
    let conversations = Arc::new(fixture.muted(muted));
    let cpu = server.cpu_seconds();
    let outcome = load::run(in_flight, plan.duration, move |task, n| {
        let mut client = MessageServiceClient::new(channels[task % channels.len()].clone());
        let (conversation_id, key) = conversations[task % conversations.len()].clone();
        async move {
            let request = pb::SendMessageRequest {
                conversation_id,
                content: format!("load message {n} of task {task}"),
                ..Default::default()
            };
            client.send_message(authed(&key, request)).await.map(drop)
        }
    })
    .await;
    let name = format!("send_message_{in_flight}_in_flight{}", if muted { "_muted" } else { "" });
    Ok(Measured::from_load(&name, server, cpu, outcome))
}

/// Items per page of the deep-page scenarios, and how many pages in they start.
const DEEP_PAGE_SIZE: i32 = 10;
const DEEP_PAGES: usize = 20;

/// A page call: its next page token.
pub type PageCall = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, tonic::Status>> + Send>> + Send + Sync>;

/// First and deep pages, one call at a time: the staff and a member inbox, a
/// conversation's messages, and a member's unread count. A deep page is the page after
/// [`DEEP_PAGES`] pages of [`DEEP_PAGE_SIZE`] (or the last one, in a shorter listing).
pub async fn lists(server: &Server, fixture: &Fixture, plan: &Plan) -> Result<Vec<Measured>, Failure> {
    let mut measured = Vec::new();
    for (name, call) in pages(server, fixture).await? {
        measured.push(one_at_a_time(server, name, plan.duration / 2, call).await);
    }
    Ok(measured)
}

/// Each of `calls` for a moment on a server logging its statements to `log`: the
/// statements per call of each.
pub async fn counted(
    server: &Server,
    calls: Vec<(String, PageCall)>,
    plan: &Plan,
    log: &std::path::Path,
) -> Vec<(String, f64)> {
    let mut counted = Vec::new();
    for (name, call) in calls {
        let before = crate::server::statements_in(log);
        let measured = one_at_a_time(server, &name, plan.duration / 4, call).await;
        let statements = crate::server::statements_in(log) - before;
        counted.push((name, statements as f64 / measured.calls.max(1) as f64));
    }
    counted
}

/// The page calls [`lists`] measures, by scenario name.
pub async fn pages(server: &Server, fixture: &Fixture) -> Result<Vec<(&'static str, PageCall)>, Failure> {
    let channel = server.channel().await?;
    let (conversation_id, member_key) = fixture.conversations.first().cloned().ok_or("nothing was seeded")?;
    let (conversations, messages) =
        (ConversationServiceClient::new(channel.clone()), MessageServiceClient::new(channel));
    let inbox = |key: &str, page_size: i32, page_token: String| -> PageCall {
        let (client, key) = (conversations.clone(), key.to_owned());
        Arc::new(move || {
            let request =
                pb::ListConversationsRequest { page_size, page_token: page_token.clone(), ..Default::default() };
            let (mut client, request) = (client.clone(), authed(&key, request));
            Box::pin(
                async move { client.list_conversations(request).await.map(|page| page.into_inner().next_page_token) },
            )
        })
    };
    let page_at = |page_size: i32, page_token: String, depth: Option<i32>| -> PageCall {
        let (client, key, conversation_id) = (messages.clone(), member_key.clone(), conversation_id.clone());
        Arc::new(move || {
            let request = pb::ListMessagesRequest {
                conversation_id: conversation_id.clone(),
                page_size,
                page_token: page_token.clone(),
                depth,
                ..Default::default()
            };
            let (mut client, request) = (client.clone(), authed(&key, request));
            Box::pin(async move { client.list_messages(request).await.map(|page| page.into_inner().next_page_token) })
        })
    };
    let page = |page_size: i32, page_token: String| page_at(page_size, page_token, None);
    let unread: PageCall = {
        let (client, key) = (conversations.clone(), member_key.clone());
        Arc::new(move || {
            let (mut client, request) = (client.clone(), authed(&key, pb::GetUnreadCountRequest {}));
            Box::pin(async move { client.get_unread_count(request).await.map(|_| String::new()) })
        })
    };
    let staff_deep = deep_token(|token| inbox(&fixture.agent_key, DEEP_PAGE_SIZE, token)()).await?;
    let member_deep = deep_token(|token| inbox(&member_key, DEEP_PAGE_SIZE, token)()).await?;
    let messages_deep = deep_token(|token| page(DEEP_PAGE_SIZE, token)()).await?;
    Ok(vec![
        ("list_conversations_staff", inbox(&fixture.agent_key, 0, String::new())),
        ("list_conversations_staff_deep", inbox(&fixture.agent_key, DEEP_PAGE_SIZE, staff_deep)),
        ("list_conversations_member", inbox(&member_key, 0, String::new())),
        ("list_conversations_member_deep", inbox(&member_key, DEEP_PAGE_SIZE, member_deep)),
        ("list_messages", page(0, String::new())),
        ("list_messages_deep", page(DEEP_PAGE_SIZE, messages_deep)),
        // The first page with its senders, conversation and participants (depth 2).
        ("list_messages_depth2", page_at(0, String::new(), Some(2))),
        ("get_unread_count", unread),
    ])
}

/// The token of the deep page: [`DEEP_PAGES`] pages in, or of the last page when the
/// listing is shorter. `fetch` gets a page and returns its next token.
async fn deep_token<F, Fut>(mut fetch: F) -> Result<String, Failure>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<String, tonic::Status>>,
{
    let mut token = String::new();
    for _ in 0..DEEP_PAGES {
        match fetch(token.clone()).await? {
            next if next.is_empty() => break,
            next => token = next,
        }
    }
    Ok(token)
}

/// `call`, one at a time for `duration`.
pub async fn one_at_a_time(server: &Server, scenario: &str, duration: Duration, call: PageCall) -> Measured {
    let cpu = server.cpu_seconds();
    let outcome = load::run(1, duration, move |_, _| {
        let call = call();
        async move { call.await.map(drop) }
    })
    .await;
    Measured::from_load(scenario, server, cpu, outcome)
}

/// Agents, each with a key, made through the API.
async fn agents(channel: Channel, admin_key: &str, count: usize) -> Result<Vec<String>, Failure> {
    let mut admin = AdminServiceClient::new(channel);
    let mut keys = Vec::with_capacity(count);
    for index in 0..count {
        let user =
            pb::User { role: pb::Role::Agent as i32, display_name: format!("Watcher {index}"), ..Default::default() };
        let request = pb::CreateUserRequest { user: Some(user), request_id: String::new() };
        let user = admin.create_user(authed(admin_key, request)).await?.into_inner();
        let request = pb::CreateApiKeyRequest { user_id: user.id, name: "bench".into() };
        keys.push(admin.create_api_key(authed(admin_key, request)).await?.into_inner().key);
    }
    Ok(keys)
}

/// Every subscriber's receipts: (message id, when it arrived).
type Receipts = Vec<(String, Instant)>;

/// How long after the last acknowledgement a delivery may still arrive before it counts as
/// missed.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// One watcher: records every message event until it has every message sent, or the grace
/// after sending is over.
async fn watch(
    mut stream: tonic::Streaming<pb::Event>,
    expected: Arc<OnceLock<(HashSet<String>, Instant)>>,
) -> Receipts {
    let mut receipts = Receipts::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.message()).await {
            Ok(Ok(Some(event))) => {
                if let Some(pb::event::Payload::Message(message)) = event.payload {
                    receipts.push((message.id, Instant::now()));
                }
            }
            Ok(_) => return receipts,
            Err(_) => {}
        }
        if let Some((ids, deadline)) = expected.get() {
            let received = receipts.iter().filter(|(id, _)| ids.contains(id)).count();
            if received >= ids.len() || Instant::now() > *deadline {
                return receipts;
            }
        }
    }
}

/// `plan.subscribers` staff streams watch while messages are sent at `plan.fanout_rate`;
/// latency is from the send's acknowledgement to each receipt.
pub async fn fanout(server: &Server, fixture: &Fixture, plan: &Plan) -> Result<Measured, Failure> {
    let keys = agents(server.channel().await?, &fixture.admin_key, plan.subscribers).await?;
    // A connection carries at most 100 streams here, well under HTTP/2's usual limits.
    let channels = channels(server, keys.len().div_ceil(100).max(1)).await?;
    let mut watchers = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let mut client = EventServiceClient::new(channels[index % channels.len()].clone());
        let mut stream = client.subscribe(authed(key, pb::SubscribeRequest::default())).await?.into_inner();
        stream.message().await?.ok_or("a stream ended before its first heartbeat")?;
        watchers.push(stream);
    }
    let sending = plan.duration;
    // Set once sending is over: what every watcher must receive, and until when.
    let expected: Arc<OnceLock<(HashSet<String>, Instant)>> = Arc::default();
    let tasks: Vec<_> = watchers.into_iter().map(|stream| tokio::spawn(watch(stream, Arc::clone(&expected)))).collect();

    let cpu = server.cpu_seconds();
    let acknowledged = send_paced(server, fixture, plan, sending).await?;
    let _ = expected.set((acknowledged.keys().cloned().collect(), Instant::now() + DELIVERY_GRACE));
    let cpu = server.cpu_seconds() - cpu;
    let mut samples = Vec::new();
    let (mut missed, mut duplicated) = (0u64, 0u64);
    for task in tasks {
        let receipts = task.await?;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (id, at) in &receipts {
            *seen.entry(id.as_str()).or_default() += 1;
            if let Some(acked) = acknowledged.get(id) {
                samples.push(at.saturating_duration_since(*acked));
            }
        }
        missed += acknowledged.keys().filter(|id| !seen.contains_key(id.as_str())).count() as u64;
        duplicated += seen.values().map(|n| n.saturating_sub(1) as u64).sum::<u64>();
    }
    Ok(Measured {
        scenario: format!("fanout_{}_subscribers", keys.len()),
        rate: acknowledged.len() as f64 / sending.as_secs_f64(),
        calls: samples.len() as u64,
        errors: 0,
        latency: Latency::of(&mut samples),
        cpu_us_per_call: cpu * 1e6 / acknowledged.len().max(1) as f64,
        rss_kib: server.rss_kib(),
        percent_of_health: None,
        missed: Some(missed),
        duplicated: Some(duplicated),
        kib_per_stream: None,
        open_cpu_us_per_stream: None,
        database_cpu_us_per_call: None,
    })
}

/// How long idle streams are watched for the server's CPU.
pub const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// `plan.idle_streams` live member streams are opened (100 per connection) and left idle:
/// the server's memory per stream, and its CPU over [`IDLE_WINDOW`] per stream (none is
/// spent on queries while nothing happens). Latency is the time to each stream's first
/// heartbeat.
pub async fn idle(server: &Server, fixture: &Fixture, plan: &Plan) -> Result<Measured, Failure> {
    let rss_before = server.rss_kib();
    let channels = channels(server, plan.idle_streams.div_ceil(100).max(1)).await?;
    let started = Instant::now();
    let open_cpu = server.cpu_seconds();
    let mut openers = Vec::new();
    for (index, channel) in channels.into_iter().enumerate() {
        let count = plan.idle_streams.saturating_sub(index * 100).min(100);
        let keys: Vec<String> = (0..count)
            .map(|n| fixture.conversations[(index * 100 + n) % fixture.conversations.len()].1.clone())
            .collect();
        openers.push(tokio::spawn(async move {
            let mut client = EventServiceClient::new(channel);
            let mut opened = Vec::with_capacity(keys.len());
            for key in keys {
                let asked = Instant::now();
                let mut stream = client.subscribe(authed(&key, pb::SubscribeRequest::default())).await?.into_inner();
                if stream.message().await?.is_none() {
                    return Err(tonic::Status::aborted("a stream ended before its first heartbeat"));
                }
                opened.push((stream, asked.elapsed()));
            }
            Ok(opened)
        }));
    }
    let (mut streams, mut samples) = (Vec::new(), Vec::new());
    for opener in openers {
        for (stream, took) in opener.await?? {
            streams.push(stream);
            samples.push(took);
        }
    }
    let opening = started.elapsed();
    let open_cpu = server.cpu_seconds() - open_cpu;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = server.cpu_seconds();
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu = server.cpu_seconds() - cpu;
    let rss = server.rss_kib();
    let count = streams.len();
    drop(streams);
    Ok(Measured {
        scenario: format!("idle_{count}_streams"),
        rate: count as f64 / opening.as_secs_f64(),
        calls: count as u64,
        errors: 0,
        latency: Latency::of(&mut samples),
        cpu_us_per_call: cpu * 1e6 / count.max(1) as f64,
        rss_kib: rss,
        percent_of_health: None,
        missed: None,
        duplicated: None,
        kib_per_stream: Some(rss.saturating_sub(rss_before) as f64 / count.max(1) as f64),
        open_cpu_us_per_stream: Some(open_cpu * 1e6 / count.max(1) as f64),
        database_cpu_us_per_call: None,
    })
}

/// Sends at `plan.fanout_rate` for `sending`; each message's acknowledgement time by id.
async fn send_paced(
    server: &Server,
    fixture: &Fixture,
    plan: &Plan,
    sending: Duration,
) -> Result<HashMap<String, Instant>, Failure> {
    let (conversation_id, _) = fixture.conversations.first().cloned().ok_or("nothing was seeded")?;
    let client = MessageServiceClient::new(server.channel().await?);
    let acknowledged = Arc::new(Mutex::new(HashMap::new()));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(plan.fanout_rate.max(1))));
    let started = Instant::now();
    let mut sends = Vec::new();
    while started.elapsed() < sending {
        ticker.tick().await;
        let (mut client, acknowledged) = (client.clone(), Arc::clone(&acknowledged));
        let request = pb::SendMessageRequest {
            conversation_id: conversation_id.clone(),
            content: "fan-out".into(),
            ..Default::default()
        };
        let key = fixture.agent_key.clone();
        sends.push(tokio::spawn(async move {
            if let Ok(sent) = client.send_message(authed(&key, request)).await {
                let id = sent.into_inner().id;
                acknowledged.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Instant::now());
            }
        }));
    }
    for send in sends {
        send.await?;
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(acknowledged)
}
