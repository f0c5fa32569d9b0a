//! Closed-loop load: a fixed number of calls in flight for a fixed time, each task sending
//! its next call as soon as the previous one answered; and latency statistics.

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Latency percentiles of a set of calls.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    /// The percentiles of `samples` (sorted here).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1000.0
        };
        Self { p50_ms: at(0.50), p95_ms: at(0.95), p99_ms: at(0.99) }
    }
}

/// What a load run did.
pub struct Outcome {
    /// Successful calls.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    pub elapsed: Duration,
    pub samples: Vec<Duration>,
}

/// Runs `in_flight` tasks for `duration`; task `i` calls `call(i, n)` for its n-th call.
pub async fn run<F, Fut>(in_flight: usize, duration: Duration, call: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..in_flight)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut samples, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match call(task, n).await {
                        Ok(()) => samples.push(sent.elapsed()),
                        Err(_) => errors += 1,
                    }
                    n += 1;
                }
                (samples, errors)
            })
        })
        .collect();
    let mut outcome = Outcome { calls: 0, errors: 0, elapsed: Duration::ZERO, samples: Vec::new() };
    for task in tasks {
        if let Ok((samples, errors)) = task.await {
            outcome.calls += samples.len() as u64;
            outcome.errors += errors;
            outcome.samples.extend(samples);
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(&mut samples);
        assert_eq!((latency.p50_ms, latency.p95_ms, latency.p99_ms), (50.0, 95.0, 99.0));
        assert_eq!(Latency::of(&mut []).p99_ms, 0.0);
    }
}
