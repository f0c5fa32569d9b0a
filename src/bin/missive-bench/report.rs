//! The results: every run's figures, and per scenario the median with min and max,
//! printed as a table and written as JSON.

use std::time::SystemTime;

use serde::Serialize;

use crate::{Args, scenarios::Measured};

/// Every run's figures, with what they were measured on.
#[derive(Debug, Serialize)]
pub struct Results {
    pub date: String,
    pub machine: String,
    pub database: String,
    pub conversations: usize,
    pub messages: usize,
    pub duration_s: f64,
    pub runs: usize,
    pub measurements: Vec<Measured>,
    /// Statements per call of each scenario, from the counting pass.
    pub statements: Vec<(String, f64)>,
    /// The per-key limits the servers ran with.
    pub limits: String,
}

/// Median, minimum and maximum of one figure over the runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let median = match values.len() {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Self { median, min: values.first().copied().unwrap_or(0.0), max: values.last().copied().unwrap_or(0.0) }
    }
}

/// One scenario over every run.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub rate: Spread,
    pub p50_ms: Spread,
    pub p99_ms: Spread,
    pub cpu_us_per_call: Spread,
    pub percent_of_health: Option<Spread>,
    pub max_rss_kib: u64,
    pub errors: u64,
    pub missed: Option<u64>,
    pub duplicated: Option<u64>,
    pub kib_per_stream: Option<Spread>,
    pub open_cpu_us_per_stream: Option<Spread>,
    pub statements_per_call: Option<f64>,
    pub database_cpu_us_per_call: Option<Spread>,
}

impl Results {
    pub fn new(database: &str, args: &Args) -> Self {
        Self {
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            machine: machine(),
            database: database.to_owned(),
            conversations: args.conversations,
            messages: args.messages,
            duration_s: args.duration.as_secs_f64(),
            runs: args.runs,
            measurements: Vec::new(),
            statements: Vec::new(),
            limits: crate::server::LIFTED_LIMITS.join(" "),
        }
    }

    /// Records that each call of `scenario` ran `statements` statements.
    pub fn count(&mut self, scenario: &str, statements: f64) {
        self.statements.push((scenario.to_owned(), statements));
    }

    pub fn add(&mut self, measured: Measured) {
        self.measurements.push(measured);
    }

    /// Per scenario, in the order first measured.
    pub fn summarize(&self) -> Vec<Summary> {
        let mut names: Vec<&str> = Vec::new();
        for measured in &self.measurements {
            if !names.contains(&measured.scenario.as_str()) {
                names.push(&measured.scenario);
            }
        }
        names.into_iter().map(|name| self.summary(name)).collect()
    }

    fn summary(&self, name: &str) -> Summary {
        let runs: Vec<&Measured> = self.measurements.iter().filter(|m| m.scenario == name).collect();
        let spread = |figure: fn(&Measured) -> f64| Spread::of(runs.iter().map(|m| figure(m)).collect());
        let sum = |figure: fn(&Measured) -> Option<u64>| runs.iter().map(|m| figure(m)).sum::<Option<u64>>();
        Summary {
            scenario: name.to_owned(),
            rate: spread(|m| m.rate),
            p50_ms: spread(|m| m.latency.p50_ms),
            p99_ms: spread(|m| m.latency.p99_ms),
            cpu_us_per_call: spread(|m| m.cpu_us_per_call),
            percent_of_health: runs
                .iter()
                .all(|m| m.percent_of_health.is_some())
                .then(|| Spread::of(runs.iter().filter_map(|m| m.percent_of_health).collect())),
            max_rss_kib: runs.iter().map(|m| m.rss_kib).max().unwrap_or(0),
            errors: runs.iter().map(|m| m.errors).sum(),
            missed: sum(|m| m.missed),
            duplicated: sum(|m| m.duplicated),
            kib_per_stream: runs
                .iter()
                .all(|m| m.kib_per_stream.is_some())
                .then(|| Spread::of(runs.iter().filter_map(|m| m.kib_per_stream).collect())),
            open_cpu_us_per_stream: runs
                .iter()
                .all(|m| m.open_cpu_us_per_stream.is_some())
                .then(|| Spread::of(runs.iter().filter_map(|m| m.open_cpu_us_per_stream).collect())),
            statements_per_call: self.statements.iter().find(|(scenario, _)| scenario == name).map(|(_, n)| *n),
            database_cpu_us_per_call: runs
                .iter()
                .all(|m| m.database_cpu_us_per_call.is_some())
                .then(|| Spread::of(runs.iter().filter_map(|m| m.database_cpu_us_per_call).collect())),
        }
    }
}

/// The summaries as a Markdown table: medians, with [min–max] where it matters.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| scenario | rate /s median [min–max] | % of Health | p50 ms | p99 ms | server CPU µs/call | statements/call | RSS MiB | errors | missed/dup |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let percent =
            s.percent_of_health.map_or("–".to_owned(), |p| format!("{:.1} [{:.1}–{:.1}]", p.median, p.min, p.max));
        let delivery = match (s.missed, s.duplicated) {
            (Some(missed), Some(duplicated)) => format!("{missed}/{duplicated}"),
            _ => "–".to_owned(),
        };
        let statements = s.statements_per_call.map_or("–".to_owned(), |n| format!("{n:.1}"));
        out.push_str(&format!(
            "| {} | {:.0} [{:.0}–{:.0}] | {percent} | {:.2} | {:.2} [{:.2}–{:.2}] | {:.0} | {statements} | {:.1} | {} | {delivery} |\n",
            s.scenario,
            s.rate.median,
            s.rate.min,
            s.rate.max,
            s.p50_ms.median,
            s.p99_ms.median,
            s.p99_ms.min,
            s.p99_ms.max,
            s.cpu_us_per_call.median,
            s.max_rss_kib as f64 / 1024.0,
            s.errors,
        ));
    }
    for s in summaries {
        if let Some(cpu) = s.database_cpu_us_per_call {
            out.push_str(&format!(
                "\n{}: PostgreSQL's CPU {:.0} µs per call [{:.0}–{:.0}]\n",
                s.scenario, cpu.median, cpu.min, cpu.max
            ));
        }
    }
    out.push_str(&format!(
        "\nEvery server ran with the per-key limits lifted ({}): the benchmark's few keys carry many clients' load.\n",
        crate::server::LIFTED_LIMITS.join(" ")
    ));
    for s in summaries {
        if let Some(kib) = s.kib_per_stream {
            // The largest run: later runs reuse memory that the first run's streams freed
            // (the allocator keeps it), so only the first sees what streams really cost.
            out.push_str(&format!(
                "\n{}: {:.1} KiB per stream (the largest of the runs); CPU while idle {:.1} µs per stream over {} s; \
                 {:.0} µs of CPU to open each [{:.0}–{:.0}]\n",
                s.scenario,
                kib.max,
                s.cpu_us_per_call.median,
                crate::scenarios::IDLE_WINDOW.as_secs(),
                s.open_cpu_us_per_stream.map_or(0.0, |o| o.median),
                s.open_cpu_us_per_stream.map_or(0.0, |o| o.min),
                s.open_cpu_us_per_stream.map_or(0.0, |o| o.max),
            ));
        }
    }
    out
}

/// Everything, for machines.
pub fn json(results: &Results, summaries: &[Summary]) -> serde_json::Value {
    serde_json::json!({ "results": results, "summary": summaries })
}

/// The processor and core count, from `/proc/cpuinfo`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown processor");
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cores} cores")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_median_of_the_runs() {
        let spread = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(vec![1.0, 4.0]).median, 2.5);
    }
}
