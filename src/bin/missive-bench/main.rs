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
mod search;
mod seed;
mod server;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

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
    /// Only these scenarios: health, send64, send64_muted, send16, lists, search, fanout, idle;
    /// with --database-url also send64_one_writer (one write transaction at a time, as
    /// before concurrent writers) and replicas (two servers, 64 in flight over both).
    /// Without --only: all but the PostgreSQL ones.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Drop the search index after seeding (SQLite: its triggers; PostgreSQL: the GIN
    /// index, the tsvector column and the timeline index), to measure what it costs a send.
    #[arg(long)]
    without_search_index: bool,
    /// The `missive` binary to start [default: the one next to this binary].
    #[arg(long)]
    server_binary: Option<PathBuf>,
}

/// The scenarios, by the names `--only` takes.
const SCENARIOS: [&str; 7] = ["send64", "send64_muted", "send16", "lists", "search", "fanout", "idle"];

/// One run of every wanted scenario. Each scenario gets servers of its own, started for it
/// and stopped after it, so that no scenario inherits another's streams, caches or memory;
/// each rate stands next to the Health baseline measured on the same server just before.
async fn one_run(
    args: &Args,
    binary: &Path,
    database_url: &str,
    fixture: &seed::Fixture,
    plan: &scenarios::Plan,
    results: &mut report::Results,
) -> Result<(), Failure> {
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let postgres_only = |name: &str| args.database_url.is_some() && args.only.iter().any(|o| o == name);
    if wanted("health") {
        let server = server::Server::start(binary, database_url).await?;
        results.add(scenarios::health(&server, plan).await?);
        server.stop().await;
    }
    for name in SCENARIOS.into_iter().filter(|name| wanted(name)) {
        let server = server::Server::start(binary, database_url).await?;
        let baseline = scenarios::health(&server, plan).await?.rate;
        let database_cpu = server::postgres_cpu_seconds();
        let measured = scenario(name, &server, fixture, plan).await?;
        // The database's CPU over the scenario, per call, where the scenario is one figure.
        let database_cpu =
            (args.database_url.is_some() && measured.len() == 1).then(|| server::postgres_cpu_seconds() - database_cpu);
        for mut measured in measured {
            measured.database_cpu_us_per_call = database_cpu.map(|cpu| cpu * 1e6 / measured.calls.max(1) as f64);
            results.add(measured.against(baseline));
        }
        server.stop().await;
    }
    if postgres_only("send64_one_writer") {
        let server = server::Server::start_with(binary, database_url, &["--database-writers", "1"]).await?;
        let baseline = scenarios::health(&server, plan).await?.rate;
        let measured = scenarios::send(&server, fixture, plan, 64, false).await?;
        results.add(measured.renamed("send_message_64_in_flight_one_writer").against(baseline));
        server.stop().await;
    }
    if postgres_only("replicas") {
        let (first, second) =
            (server::Server::start(binary, database_url).await?, server::Server::start(binary, database_url).await?);
        let baseline = scenarios::health(&first, plan).await?.rate;
        for measured in replicas::replicas(&[&first, &second], fixture, plan, 64).await? {
            results.add(measured.against(baseline));
        }
        first.stop().await;
        second.stop().await;
    }
    Ok(())
}

/// The scenario `name` on `server`.
async fn scenario(
    name: &str,
    server: &server::Server,
    fixture: &seed::Fixture,
    plan: &scenarios::Plan,
) -> Result<Vec<scenarios::Measured>, Failure> {
    Ok(match name {
        "send64" => vec![scenarios::send(server, fixture, plan, 64, false).await?],
        "send64_muted" => vec![scenarios::send(server, fixture, plan, 64, true).await?],
        "send16" => vec![scenarios::send(server, fixture, plan, 16, false).await?],
        "lists" => scenarios::lists(server, fixture, plan).await?,
        "search" => search::search(server, fixture, plan).await?,
        "fanout" => vec![scenarios::fanout(server, fixture, plan).await?],
        "idle" => vec![scenarios::idle(server, fixture, plan).await?],
        other => return Err(format!("no scenario {other}").into()),
    })
}

/// The statements each scenario's calls run, counted once after the measured runs on a
/// server that logs them (`missive::sql`), with a short, smaller load: counts, not times.
/// Idle streams count what opening them and then [`scenarios::IDLE_WINDOW`] of idling ran,
/// per stream; the fan-out is not counted (its agents are made through the API first).
async fn count_statements(
    args: &Args,
    binary: &Path,
    database_url: &str,
    fixture: &seed::Fixture,
    results: &mut report::Results,
) -> Result<(), Failure> {
    let log = tempfile::NamedTempFile::new()?;
    let server = server::Server::start_counting(binary, database_url, log.path()).await?;
    let plan = scenarios::Plan {
        duration: Duration::from_secs(2),
        subscribers: 100,
        fanout_rate: args.fanout_rate,
        idle_streams: args.idle_streams,
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    for name in SCENARIOS.into_iter().filter(|name| wanted(name) && *name != "fanout") {
        if name == "lists" || name == "search" {
            // Each call alone: these scenarios measure several in one.
            let calls = if name == "lists" {
                scenarios::pages(&server, fixture).await?.into_iter().map(|(n, c)| (n.to_owned(), c)).collect()
            } else {
                search::calls(&server, fixture).await?
            };
            for measured in scenarios::counted(&server, calls, &plan, log.path()).await {
                results.count(&measured.0, measured.1);
            }
            continue;
        }
        let before = server::statements_in(log.path());
        for measured in scenario(name, &server, fixture, &plan).await? {
            let statements = server::statements_in(log.path()) - before;
            results.count(&measured.scenario, statements as f64 / measured.calls.max(1) as f64);
        }
    }
    server.stop().await;
    Ok(())
}

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let database_url =
        args.database_url.clone().unwrap_or_else(|| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let started = std::time::Instant::now();
    let fixture = seed::seed(&database_url, args.conversations, args.messages, args.members).await?;
    eprintln!("seeded {} conversations, {} messages in {:.1?}", args.conversations, args.messages, started.elapsed());
    if args.without_search_index {
        seed::drop_search_index(&database_url).await?;
    }

    let binary = match &args.server_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("missive"),
    };
    let plan = scenarios::Plan {
        duration: args.duration,
        subscribers: args.subscribers,
        fanout_rate: args.fanout_rate,
        idle_streams: args.idle_streams,
    };
    let mut results = report::Results::new(if args.database_url.is_some() { "postgres" } else { "sqlite" }, &args);
    for run in 1..=args.runs {
        eprintln!("run {run} of {}", args.runs);
        one_run(&args, &binary, &database_url, &fixture, &plan, &mut results).await?;
    }
    eprintln!("counting statements");
    count_statements(&args, &binary, &database_url, &fixture, &mut results).await?;
    let summary = results.summarize();
    println!("{}", report::table(&summary));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report::json(&results, &summary))?)?;
    }
    Ok(())
}
