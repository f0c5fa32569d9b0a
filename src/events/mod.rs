//! The live side of the event log. Live delivery is a wake-up, not the data: writers wake
//! the [`Hub`] after commit, and each `Subscribe` stream then reads what it may see from the
//! log itself. So a slow subscriber costs the server one bounded queue, never a growing
//! buffer, and never slows writers or other subscribers.
//!
//! - [`hub`]: per-account wake-ups.
//! - [`stream`]: one `Subscribe` stream: replay from a cursor, then live, with heartbeats.
//! - [`retention`]: prunes events older than the retention window.
//! - [`listener`]: PostgreSQL LISTEN/NOTIFY, so streams on every replica wake at once.

pub mod hub;
pub mod listener;
pub mod retention;
pub mod stream;

pub use hub::Hub;
pub use stream::{StreamItem, StreamSettings, StreamStats};

/// Completes once the server is shutting down (or the signal's sender is gone).
pub(crate) async fn until_stopping(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
