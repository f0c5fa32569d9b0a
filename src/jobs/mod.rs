//! Background jobs: work the server does on its own, on a timer, until shutdown. Each job
//! is a module with a `run` function built on [`every`]; [`Jobs`] spawns them and, at
//! shutdown, waits for each and logs how it ended.
//!
//! - [`retention`]: prunes the event log past the retention window.
//! - [`delivery`]: sends scheduled messages when they are due.
//! - [`storage_health`]: reads the database for the health service.
//! - [`statistics`]: keeps SQLite's query-planner statistics current.
//! - [`keys`]: keeps the API keys in use cached where cached keys expire (SQLite).

pub mod delivery;
pub mod keys;
pub mod retention;
pub mod statistics;
pub mod storage_health;

use std::{future::Future, time::Duration};

use tokio::task::JoinHandle;

use crate::shutdown::Shutdown;

/// Runs `tick` every `interval` (the first at once) until shutdown. A tick that overruns
/// delays the next one rather than bunching them up.
pub async fn every<F, Fut>(interval: Duration, shutdown: Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        tick().await;
    }
}

/// The running jobs, by name.
#[derive(Default)]
pub struct Jobs {
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Jobs {
    /// Starts `job` as a task.
    pub fn spawn(&mut self, name: &'static str, job: impl Future<Output = ()> + Send + 'static) {
        self.running.push((name, tokio::spawn(job)));
    }

    /// Waits for every job (after shutdown started) and logs how each ended.
    pub async fn join(self) {
        for (name, handle) in self.running {
            match handle.await {
                Ok(()) => tracing::debug!(job = name, "job stopped"),
                Err(err) => tracing::error!(job = name, error = %err, "job ended abnormally"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_job_ticks_until_shutdown() {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ticks);
        let mut jobs = Jobs::default();
        jobs.spawn(
            "count",
            every(Duration::from_secs(1), shutdown, move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async {}
            }),
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        trigger.cancel();
        jobs.join().await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "at 0 s, 1 s and 2 s");
    }
}
