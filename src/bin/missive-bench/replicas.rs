//! Several replicas on one PostgreSQL database: `SendMessage` with N in flight spread over
//! two `missive` processes, into one account, while a staff subscriber on each replica
//! watches. It reports the combined rate (with both servers' CPU per call), checks that
//! both subscribers received every acknowledged message once and in one identical order,
//! and measures the receipt latency across replicas: from the start of a send through one
//! replica to its arrival on the other's subscriber, under that load and at 100 sends a
//! second.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use missive::api::pb::{self, event_service_client::EventServiceClient, message_service_client::MessageServiceClient};
use tokio_stream::StreamExt;

use crate::{
    load::{self, Latency},
    scenarios::{Failure, Measured, Plan, authed},
    seed::Fixture,
    server::Server,
};

/// Message ids as one subscriber received them, with when.
type Received = Arc<Mutex<Vec<(String, Instant)>>>;

/// Opens a staff stream on `server` and records every MESSAGE_CREATED it delivers.
async fn watch(server: &Server, key: &str) -> Result<(Received, tokio::task::JoinHandle<()>), Failure> {
    let mut client = EventServiceClient::new(server.channel().await?);
    let mut stream = client.subscribe(authed(key, pb::SubscribeRequest::default())).await?.into_inner();
    stream.message().await?.ok_or("a stream ended before its first heartbeat")?;
    let received = Received::default();
    let record = Arc::clone(&received);
    let task = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            if let Some(pb::event::Payload::Message(message)) = event.payload
                && event.r#type == pb::EventType::MessageCreated as i32
            {
                record.lock().unwrap().push((message.id, Instant::now()));
            }
        }
    });
    Ok((received, task))
}

/// Channels to the replicas (four each), with the index of the replica each reaches.
type Channels = Arc<Vec<(usize, tonic::transport::Channel)>>;

/// The load through `servers` (task i through server i mod n), then a light load, and what
/// the subscribers saw of both: the send row and the two cross-replica receipt rows.
pub async fn replicas(
    servers: &[&Server],
    fixture: &Fixture,
    plan: &Plan,
    in_flight: usize,
) -> Result<Vec<Measured>, Failure> {
    let mut watchers = Vec::new();
    for server in servers {
        watchers.push(watch(server, &fixture.agent_key).await?);
    }
    let mut channels = Vec::new();
    for server in servers {
        for _ in 0..4 {
            channels.push((channels.len() % servers.len(), server.channel().await?));
        }
    }
    let (channels, conversations) = (Arc::new(channels), Arc::new(fixture.conversations.clone()));
    let cpu = Cpu::start(servers);
    let (outcome, loaded) = send_loaded(&channels, &conversations, plan, in_flight).await;
    let cpu_loaded = cpu.used(servers);
    // Then a light load, 100 sends a second, for the receipt latency of a replica that is
    // not saturated.
    let cpu = Cpu::start(servers);
    let paced = send_paced(&channels, &conversations, 100, plan.duration / 2).await?;
    let cpu_paced = cpu.used(servers);
    let everything: Vec<&str> = loaded.iter().chain(&paced).map(|(id, _, _)| id.as_str()).collect();
    let seen = collect(watchers, &everything).await;
    let (missed, duplicated) = deliveries(&seen, &everything)?;

    let calls = outcome.calls;
    let name = format!("send_message_{in_flight}_in_flight_{}_replicas", servers.len());
    let mut send = Measured::from_load(&name, servers[0], 0.0, outcome);
    send.cpu_us_per_call = cpu_loaded * 1e6 / calls.max(1) as f64;
    send.missed = Some(missed);
    send.duplicated = Some(duplicated);
    let mut receipt = send.clone();
    receipt.scenario = format!("{name}_receipt_on_the_other");
    receipt.latency = Latency::of(&mut receipts(&loaded, &seen));
    let mut light = receipt.clone();
    light.scenario = format!("send_100_per_s_{}_replicas_receipt_on_the_other", servers.len());
    light.rate = paced.len() as f64 / (plan.duration / 2).as_secs_f64();
    light.calls = paced.len() as u64;
    light.latency = Latency::of(&mut receipts(&paced, &seen));
    light.cpu_us_per_call = cpu_paced * 1e6 / paced.len().max(1) as f64;
    Ok(vec![send, receipt, light])
}

/// The servers' CPU seconds at a start.
struct Cpu(f64);

impl Cpu {
    fn start(servers: &[&Server]) -> Self {
        Self(servers.iter().map(|server| server.cpu_seconds()).sum())
    }

    /// CPU seconds the servers used since the start.
    fn used(&self, servers: &[&Server]) -> f64 {
        servers.iter().map(|server| server.cpu_seconds()).sum::<f64>() - self.0
    }
}

/// `in_flight` tasks sending as fast as they are answered for the plan's duration: the
/// load's outcome and every acknowledged send.
async fn send_loaded(
    channels: &Channels,
    conversations: &Arc<Vec<(String, String)>>,
    plan: &Plan,
    in_flight: usize,
) -> (load::Outcome, Sent) {
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let (channels, conversations, record) = (Arc::clone(channels), Arc::clone(conversations), Arc::clone(&sent));
    let outcome = load::run(in_flight, plan.duration, move |task, n| {
        let (replica, channel) = channels[task % channels.len()].clone();
        let (conversation_id, key) = conversations[task % conversations.len()].clone();
        let record = Arc::clone(&record);
        async move {
            let started = Instant::now();
            let request =
                pb::SendMessageRequest { conversation_id, content: format!("replica load {n}"), ..Default::default() };
            let message = MessageServiceClient::new(channel).send_message(authed(&key, request)).await?.into_inner();
            record.lock().unwrap().push((message.id, started, replica));
            Ok(())
        }
    })
    .await;
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    (outcome, sent)
}

/// Deliveries missed and duplicated over every subscriber; an error when two subscribers
/// received the messages in different orders.
fn deliveries(seen: &[Vec<(String, Instant)>], wanted: &[&str]) -> Result<(u64, u64), Failure> {
    let (mut missed, mut duplicated) = (0, 0);
    for received in seen {
        let ids: HashSet<&str> = received.iter().map(|(id, _)| id.as_str()).collect();
        missed += wanted.iter().filter(|id| !ids.contains(*id)).count() as u64;
        duplicated += (received.len() - ids.len()) as u64;
    }
    let orders: Vec<Vec<&str>> =
        seen.iter().map(|received| received.iter().map(|(id, _)| id.as_str()).collect()).collect();
    if orders.windows(2).any(|pair| pair[0] != pair[1]) {
        return Err("the replicas' subscribers received the messages in different orders".into());
    }
    Ok((missed, duplicated))
}

/// A send: its message, when it started, through which replica.
type Sent = Vec<(String, Instant, usize)>;

/// Sends `per_second` messages a second for `duration`, each through the next replica in
/// turn, without waiting for one to finish before the next starts.
async fn send_paced(
    channels: &Channels,
    conversations: &[(String, String)],
    per_second: u32,
    duration: Duration,
) -> Result<Sent, Failure> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second);
    let count = (duration.as_secs_f64() * f64::from(per_second)) as usize;
    let mut sends = Vec::with_capacity(count);
    for n in 0..count {
        ticks.tick().await;
        let (replica, channel) = channels[n % channels.len()].clone();
        let (conversation_id, key) = conversations[n % conversations.len()].clone();
        sends.push(tokio::spawn(async move {
            let started = Instant::now();
            let request =
                pb::SendMessageRequest { conversation_id, content: format!("paced {n}"), ..Default::default() };
            let message = MessageServiceClient::new(channel).send_message(authed(&key, request)).await?.into_inner();
            Ok::<_, tonic::Status>((message.id, started, replica))
        }));
    }
    let mut sent = Vec::with_capacity(count);
    for send in sends {
        sent.push(send.await??);
    }
    Ok(sent)
}

/// Waits until every subscriber received every one of `wanted` (at most 10 s), then stops
/// them; what each received, in order.
async fn collect(
    watchers: Vec<(Received, tokio::task::JoinHandle<()>)>,
    wanted: &[&str],
) -> Vec<Vec<(String, Instant)>> {
    let wanted: HashSet<&str> = wanted.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && watchers.iter().any(|(received, _)| {
            let received = received.lock().unwrap();
            received.iter().filter(|(id, _)| wanted.contains(id.as_str())).count() < wanted.len()
        })
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watchers
        .into_iter()
        .map(|(received, task)| {
            task.abort();
            std::mem::take(&mut *received.lock().unwrap())
        })
        .collect()
}

/// For each send, how long from its start until the subscriber of the *other* replica
/// received it.
fn receipts(sent: &Sent, seen: &[Vec<(String, Instant)>]) -> Vec<Duration> {
    let arrivals: Vec<HashMap<&str, Instant>> =
        seen.iter().map(|received| received.iter().map(|(id, at)| (id.as_str(), *at)).collect()).collect();
    sent.iter()
        .filter_map(|(id, started, replica)| {
            arrivals[(replica + 1) % arrivals.len()].get(id.as_str()).map(|at| at.saturating_duration_since(*started))
        })
        .collect()
}
