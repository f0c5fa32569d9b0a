//! Shutdown: one signal that every long-running part (the server, each `Subscribe`
//! stream, each job) watches — tokio-util's cancellation token, which the live side takes
//! as it is — and the OS signals that start it.

use std::future::Future;

/// The stop signal: cancelled once the server starts shutting down. Streams and jobs wait
/// on `cancelled()` and check `is_cancelled()`; a clone watches the same signal.
pub use tokio_util::sync::CancellationToken as Shutdown;

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
