//! The server under test: the `missive` binary in its own process, so that its CPU time
//! and memory are its own, read from `/proc`. It logs at `warn`, as under production load,
//! except for the counting pass, whose server writes its statement log to a file.
//!
//! The benchmark's one key per simulated client carries far more calls than the per-key
//! limits let one client make (500 calls/s by default), so every server under test runs with
//! those limits lifted ([`LIFTED_LIMITS`]); the report says so.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A running server.
pub struct Server {
    child: Child,
    pid: u32,
    /// Its gRPC address (`http://127.0.0.1:PORT`).
    pub url: String,
    ticks_per_second: f64,
}

impl Server {
    /// Starts `binary` serving `database_url` on a free loopback port and waits until its
    /// health service answers.
    pub async fn start(binary: &Path, database_url: &str) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_with(binary, database_url, &[]).await
    }

    /// Starts `binary` with `flags` besides, as [`Server::start`] does.
    pub async fn start_with(
        binary: &Path,
        database_url: &str,
        flags: &[&str],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        Self::spawn(binary, database_url, flags, None).await
    }

    /// Starts `binary` writing every statement it runs to `log` (see [`statements_in`]).
    pub async fn start_counting(
        binary: &Path,
        database_url: &str,
        log: &Path,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        Self::spawn(binary, database_url, &[], Some(log)).await
    }

    async fn spawn(
        binary: &Path,
        database_url: &str,
        flags: &[&str],
        statement_log: Option<&Path>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let (filter, stderr) = match statement_log {
            Some(path) => ("warn,missive::sql=trace", Stdio::from(std::fs::File::create(path)?)),
            None => ("warn", Stdio::inherit()),
        };
        let child = Command::new(binary)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
            .args(LIFTED_LIMITS)
            .args(flags)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                format!("cannot start {}: {err} (build it first: cargo build --release)", binary.display())
            })?;
        let pid = child.id().ok_or("the server exited at once")?;
        let url = format!("http://127.0.0.1:{port}");
        let ticks_per_second = clock_ticks_per_second();
        let server = Self { child, pid, url, ticks_per_second };
        for _ in 0..100 {
            if let Ok(channel) = server.channel().await {
                let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if answer.is_ok() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not answer its health check within 10 s".into())
    }

    /// A new HTTP/2 connection.
    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(self.url.clone()).expect("a valid URL").connect().await
    }

    /// CPU seconds the server has used so far (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        (ticks(11) + ticks(12)) / self.ticks_per_second
    }

    /// The server's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the server (SIGKILL: its data is not needed after the run).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The per-key limits every server under test runs with: far above any scenario's load.
pub const LIFTED_LIMITS: [&str; 4] = ["--calls-per-second", "1000000", "--call-burst", "1000000"];

/// CPU seconds every PostgreSQL process of this machine has used so far (user + system),
/// from `/proc`: the database's side of a scenario on a local server.
pub fn postgres_cpu_seconds() -> f64 {
    let ticks = clock_ticks_per_second();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(')')?;
            (name == "postgres").then_some(rest.to_owned())
        })
        .map(|rest| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let tick = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            (tick(11) + tick(12)) / ticks
        })
        .sum()
}

/// How many statements the statement log at `path` holds so far.
pub fn statements_in(path: &Path) -> u64 {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    log.lines().filter(|line| line.contains("missive::sql")).count() as u64
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
