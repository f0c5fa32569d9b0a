//! Shutdown: one signal that every long-running part (the server, each `Subscribe`
//! stream, each job) watches, and the OS signals that start it.

use std::future::Future;

use tokio::sync::watch;

/// Starts the shutdown; dropping it starts it too.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Watches for the shutdown; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new, not yet started, shutdown.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger(sender), Shutdown(receiver))
}

impl Trigger {
    /// Starts the shutdown (again is harmless).
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Completes once the shutdown has started (or its trigger is gone).
    pub async fn until_stopping(&self) {
        let mut receiver = self.0.clone();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }

    /// Whether the shutdown has started.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before binding, so that a signal
/// that arrives as soon as the port answers is not fatal.
pub fn signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals =
            signal(SignalKind::interrupt()).and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGINT/SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_watcher_sees_the_stop() {
        let (trigger, shutdown) = channel();
        let watcher = shutdown.clone();
        assert!(!watcher.is_stopping());
        trigger.stop();
        watcher.until_stopping().await;
        assert!(shutdown.is_stopping());
        let (trigger, shutdown) = channel();
        drop(trigger);
        shutdown.until_stopping().await;
    }
}
