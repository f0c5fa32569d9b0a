//! The live side of the event log. Live delivery is a wake-up, not the data: the store's
//! door wakes its [`Hub`](crate::store::Hub) after commit, and each `Subscribe` stream then
//! reads what it may see from the log itself. So a slow subscriber costs the server one
//! bounded queue, never a growing buffer, and never slows writers or other subscribers.
//!
//! - [`stream`]: one `Subscribe` stream: replay from a cursor, then live, with heartbeats.
//! - [`listener`]: PostgreSQL LISTEN/NOTIFY, so streams on every replica wake at once.

pub mod listener;
pub mod stream;

pub use stream::{StreamItem, StreamSettings, StreamStats};
