//! `missive-bench`: Missive's benchmark. It seeds a database through the store (so counters
//! and events are exactly what the API writes), starts the `missive` binary on it as a
//! separate process, drives it over gRPC from this process, and reports each scenario's
//! throughput, latency percentiles, server CPU per request and memory, next to the Health
//! baseline of the same run. Each scenario runs `--runs` times; the report gives the median
//! with the minimum and maximum.
//!
//! ```text
//! cargo build --release && target/release/missive-bench --conversations 1000 --messages 10000
//! ```
//!
//! - `seed`: the data set; `server`: the server process and its CPU and memory;
//! - `load`: closed-loop load with N calls in flight, and latency statistics;
//! - `scenarios`: what is measured (`replicas`: several servers on one PostgreSQL
//!   database); `report`: the table and the JSON.

mod load;
mod replicas;
mod report;
mod scenarios;
mod seed;
mod server;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// Missive's benchmark: seeds, serves, measures.
#[derive(Debug, Parser)]
#[command(name = "missive-bench", version, about)]
struct Args {
    /// Conversations to seed.
    #[arg(long, default_value_t = 1_000)]
    conversations: usize,
    /// Messages to seed, spread evenly over the conversations.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Members taking part in the seeded conversations (each conversation has two).
    #[arg(long, default_value_t = 200)]
    members: usize,
    /// How long each load scenario runs.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Runs of each scenario.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// An empty PostgreSQL database to use instead of a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Subscribers of the fan-out scenario.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Messages per second sent in the fan-out scenario.
    #[arg(long, default_value_t = 20)]
    fanout_rate: u32,
    /// Streams of the idle-streams scenario.
    #[arg(long, default_value_t = 10_000)]
    idle_streams: usize,
    /// Only these scenarios: health, send64, send64_muted, send16, lists, fanout, idle;
    /// with --database-url also send64_one_writer (one write transaction at a time, as
    /// before concurrent writers) and replicas (two servers, 64 in flight over both).
    /// Without --only: all but the PostgreSQL ones.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The `missive` binary to start [default: the one next to this binary].
    #[arg(long)]
    server_binary: Option<PathBuf>,
}

/// The servers under test: the one every scenario uses, and those of the PostgreSQL
/// scenarios, on the same database.
struct Servers {
    main: server::Server,
    /// `--database-writers 1`: one write transaction at a time.
    one_writer: Option<server::Server>,
    /// A second replica.
    second_replica: Option<server::Server>,
}

impl Servers {
    async fn start(
        args: &Args,
        binary: &std::path::Path,
        database_url: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let postgres_only = |name: &str| args.database_url.is_some() && args.only.iter().any(|o| o == name);
        let main = server::Server::start(binary, database_url).await?;
        let one_writer = if postgres_only("send64_one_writer") {
            Some(server::Server::start_with(binary, database_url, &["--database-writers", "1"]).await?)
        } else {
            None
        };
        let second_replica =
            if postgres_only("replicas") { Some(server::Server::start(binary, database_url).await?) } else { None };
        Ok(Self { main, one_writer, second_replica })
    }

    async fn stop(self) {
        for server in [Some(self.main), self.one_writer, self.second_replica].into_iter().flatten() {
            server.stop().await;
        }
    }
}

/// One run of every wanted scenario, each next to the Health baseline measured first.
async fn one_run(
    args: &Args,
    servers: &Servers,
    fixture: &seed::Fixture,
    plan: &scenarios::Plan,
    results: &mut report::Results,
) -> Result<(), Box<dyn std::error::Error>> {
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let server = &servers.main;
    let baseline = scenarios::health(server, plan).await?;
    let baseline_rate = baseline.rate;
    if wanted("health") {
        results.add(baseline);
    }
    for (name, in_flight, muted) in [("send64", 64, false), ("send64_muted", 64, true), ("send16", 16, false)] {
        if wanted(name) {
            results.add(scenarios::send(server, fixture, plan, in_flight, muted).await?.against(baseline_rate));
        }
    }
    if let Some(single) = &servers.one_writer {
        let measured = scenarios::send(single, fixture, plan, 64, false).await?;
        results.add(measured.renamed("send_message_64_in_flight_one_writer").against(baseline_rate));
    }
    if let Some(second) = &servers.second_replica {
        for measured in replicas::replicas(&[server, second], fixture, plan, 64).await? {
            results.add(measured.against(baseline_rate));
        }
    }
    if wanted("lists") {
        for measured in scenarios::lists(server, fixture, plan).await? {
            results.add(measured);
        }
    }
    if wanted("fanout") {
        results.add(scenarios::fanout(server, fixture, plan).await?);
    }
    if wanted("idle") {
        results.add(scenarios::idle(server, fixture, plan).await?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let database_url =
        args.database_url.clone().unwrap_or_else(|| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let started = std::time::Instant::now();
    let fixture = seed::seed(&database_url, args.conversations, args.messages, args.members).await?;
    eprintln!("seeded {} conversations, {} messages in {:.1?}", args.conversations, args.messages, started.elapsed());

    let binary = match &args.server_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("missive"),
    };
    let servers = Servers::start(&args, &binary, &database_url).await?;
    let plan = scenarios::Plan {
        duration: args.duration,
        subscribers: args.subscribers,
        fanout_rate: args.fanout_rate,
        idle_streams: args.idle_streams,
    };
    let mut results = report::Results::new(if args.database_url.is_some() { "postgres" } else { "sqlite" }, &args);
    for run in 1..=args.runs {
        eprintln!("run {run} of {}", args.runs);
        one_run(&args, &servers, &fixture, &plan, &mut results).await?;
    }
    servers.stop().await;
    let summary = results.summarize();
    println!("{}", report::table(&summary));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report::json(&results, &summary))?)?;
    }
    Ok(())
}
