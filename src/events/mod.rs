//! The live side of the event log. The store's writer wakes its
//! [`Hub`](crate::store::Hub) after each commit; one reader per account ([`feed`]) then
//! reads the new span of the log once and hands it to every `Subscribe` stream of the
//! account, which filters it in memory. A slow subscriber costs the server one bounded
//! queue and, once it falls behind the feed, its own reads; it never slows writers or other
//! subscribers.
//!
//! - [`feed`]: one log reader per account with streams.
//! - [`stream`]: one `Subscribe` stream: replay from a cursor, then live, with heartbeats.
//! - [`listener`]: PostgreSQL LISTEN/NOTIFY, so streams on every replica wake at once.
//! - [`signals`]: typing and presence, told to streams live and never logged.
//! - [`presence`]: who is online, from the streams open on every replica.

pub mod feed;
pub mod listener;
pub mod presence;
pub mod signals;
pub mod stream;

pub use feed::{FeedSettings, Feeds};

/// Sleeps until `at`; never completes for `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending::<()>().await,
    }
}
pub use stream::{StreamItem, StreamSettings, StreamStats};
