//! Presence: keeps track of this replica's streams per user and turns them into the
//! presence every replica agrees on (`store::presence`), announcing each change as a
//! signal (`signals`).
//!
//! One task owns it all, fed by the streams' opens and closes, so that a user's lease is
//! taken and given up in the order its streams came and went. A user goes online at its
//! first stream; it goes offline only when its last stream has stayed closed for
//! `OFFLINE_AFTER`, so that a connection that drops and comes back sends nothing. Every
//! `RENEW_EVERY` the task renews this replica's leases and sweeps those of replicas that
//! stopped renewing (crashed, or stopped), so their users go offline too. A replica that
//! stops leaves its leases to lapse rather than giving them up: in a rolling deploy its
//! clients reconnect to another replica well within `LEASE`, and nobody flickers
//! offline and back.

use std::{collections::HashMap, sync::Arc};

use tokio::{
    sync::mpsc,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{
    signals::{SignalKind, Signals},
    sleep_until_some,
};
use crate::{
    domain::presence::{LEASE, OFFLINE_AFTER, RENEW_EVERY},
    store::{
        Store,
        presence::{self as stored, Held, Transition},
    },
};

/// What streams tell the task.
enum Change {
    Opened(Held),
    Closed(Held),
}

/// The streams' side: tells the task about each stream; cheap to clone.
#[derive(Clone)]
pub struct PresenceTracker {
    changes: mpsc::UnboundedSender<Change>,
}

/// Held by a stream while it is open: the user counts as online.
pub struct Online {
    changes: mpsc::UnboundedSender<Change>,
    user: Option<Held>,
}

impl Drop for Online {
    fn drop(&mut self) {
        if let Some(user) = self.user.take() {
            // The task is gone only when the server stops.
            let _ = self.changes.send(Change::Closed(user));
        }
    }
}

impl PresenceTracker {
    /// The tracker and the task to run (until shutdown) for it.
    pub fn new(store: Arc<Store>, signals: Arc<Signals>) -> (Self, Task) {
        let (changes, receiver) = mpsc::unbounded_channel();
        (Self { changes }, Task { store, signals, receiver, users: HashMap::new() })
    }

    /// A stream of `user_id` in `account_id` opened; it is online while the value lives.
    pub fn opened(&self, account_id: &str, user_id: &str) -> Online {
        let user = (account_id.to_owned(), user_id.to_owned());
        let _ = self.changes.send(Change::Opened(user.clone()));
        Online { changes: self.changes.clone(), user: Some(user) }
    }
}

/// A user's streams here.
struct Streams {
    open: usize,
    /// When its last stream closed, while it has none: it goes offline at
    /// `closed_at + OFFLINE_AFTER`.
    closed_at: Option<Instant>,
}

/// The task that keeps this replica's presence.
pub struct Task {
    store: Arc<Store>,
    signals: Arc<Signals>,
    receiver: mpsc::UnboundedReceiver<Change>,
    users: HashMap<Held, Streams>,
}

impl Task {
    /// Runs until shutdown. The changes that arrived together are applied together, so
    /// that a burst of reconnections (a replica restarted) is one write, not one each.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let next_offline = self.next_offline();
            tokio::select! {
                change = self.receiver.recv() => match change {
                    Some(change) => self.apply(change).await,
                    None => return,
                },
                () = sleep_until_some(next_offline) => self.let_go(Instant::now()).await,
                _ = renew.tick() => self.renew().await,
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Applies `change` and every change waiting behind it; takes the leases of the users
    /// whose first stream here opened.
    async fn apply(&mut self, change: Change) {
        let mut arrived = Vec::new();
        let mut next = Some(change);
        while let Some(change) = next {
            if let Some(user) = self.count(change) {
                arrived.push(user);
            }
            next = self.receiver.try_recv().ok();
        }
        let held = stored::hold(&self.store, self.signals.replica_id(), arrived).await;
        self.announce(held).await;
    }

    /// Counts one stream opening or closing; the user, when it is new here.
    fn count(&mut self, change: Change) -> Option<Held> {
        match change {
            Change::Opened(user) => {
                let streams = self.users.entry(user.clone()).or_insert(Streams { open: 0, closed_at: None });
                streams.open += 1;
                // A user whose last stream closed a moment ago still holds its lease.
                let first = streams.open == 1 && streams.closed_at.is_none();
                streams.closed_at = None;
                first.then_some(user)
            }
            Change::Closed(user) => {
                if let Some(streams) = self.users.get_mut(&user) {
                    streams.open = streams.open.saturating_sub(1);
                    if streams.open == 0 {
                        streams.closed_at = Some(Instant::now());
                    }
                }
                None
            }
        }
    }

    fn next_offline(&self) -> Option<Instant> {
        self.users.values().filter_map(|streams| streams.closed_at).min().map(|closed| closed + OFFLINE_AFTER)
    }

    /// Gives up the users whose last stream closed long enough ago.
    async fn let_go(&mut self, now: Instant) {
        let mut gone = Vec::new();
        self.users.retain(|user, streams| {
            let due = streams.closed_at.is_some_and(|closed| closed + OFFLINE_AFTER <= now);
            if due {
                gone.push(user.clone());
            }
            !due
        });
        let released = stored::release(&self.store, self.signals.replica_id(), gone, OFFLINE_AFTER).await;
        self.announce(released).await;
    }

    /// Renews this replica's leases, then retires other replicas' stale ones.
    async fn renew(&mut self) {
        let held: Vec<Held> = self.users.keys().cloned().collect();
        let renewed = stored::hold(&self.store, self.signals.replica_id(), held).await;
        self.announce(renewed).await;
        let swept = stored::sweep(&self.store, LEASE).await;
        self.announce(swept).await;
    }

    async fn announce(&self, transitions: Result<Vec<Transition>, crate::domain::Error>) {
        let transitions = match transitions {
            Ok(transitions) => transitions,
            // Renewing again, or the sweep, mends what this missed.
            Err(err) => {
                tracing::warn!(error = %err, "presence could not be stored; retrying at the next renewal");
                return;
            }
        };
        for Transition { account_id, user_id, presence } in transitions {
            tracing::debug!(account = %account_id, user = %user_id, online = presence.online, "presence changed");
            if let Err(err) = self.signals.publish(&account_id, SignalKind::Presence { user_id, presence }).await {
                tracing::warn!(error = %err, "a presence change could not be told to other replicas");
            }
        }
    }
}
