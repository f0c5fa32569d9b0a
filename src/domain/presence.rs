//! Presence: whether a user is online (has at least one open `Subscribe` stream on any
//! replica) and when it was last seen; and typing, its ephemeral sibling. The rules of
//! timing live here; keeping track is `store::presence`, telling streams is
//! `events::signals`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Micros;

/// A user's presence as shown to others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// It has an open stream now.
    pub online: bool,
    /// When it went offline last; `None` while online or if it never was.
    pub last_seen_time: Option<Micros>,
}

impl Presence {
    /// As stored on the user: the last seen time only shows while offline.
    pub fn from_columns(online: bool, last_seen_time: Option<Micros>) -> Self {
        Self { online, last_seen_time: if online { None } else { last_seen_time } }
    }
}

/// How long a user's last stream must stay closed before it counts as offline: a
/// connection that drops and comes back within this (a phone changing networks) changes
/// nothing, so a flapping connection sends no presence events.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(3);

/// How often a replica renews the presence of the users it holds streams of.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// A replica that has not renewed its users' presence for this long is gone (crashed,
/// cut off): its users count as offline, unless another replica holds them.
pub const LEASE: Duration = Duration::from_secs(30);

/// Typing signals one user may send: a burst of this many, then one per
/// [`TYPING_REFILL`]. Clients send one every few seconds while the user types.
pub const TYPING_BURST: u32 = 5;

/// See [`TYPING_BURST`].
pub const TYPING_REFILL: Duration = Duration::from_millis(500);
