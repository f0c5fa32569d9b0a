//! Wake-ups across replicas: on PostgreSQL, after commits append events, the writer's
//! announcer sends `NOTIFY missive_events, '<account>'` (coalesced, outside the write's
//! transaction); each replica LISTENs and wakes its own streams of that account. So a
//! subscriber on replica B sees a message sent through replica A at once, not at the next
//! poll. A revoke or role change sends
//! `NOTIFY missive_credentials, '<account> <user>'`: the user's keys leave this replica's
//! cache and the account's streams re-check theirs. Signals (typing, presence) arrive on
//! `missive_signals` and go to this replica's streams.

use std::{sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use sea_orm::sqlx::postgres::PgListener;

use tokio_util::sync::CancellationToken;

use super::signals::{self, Signals};
use crate::store::{Store, credentials, wakeups};

/// Listens until shutdown, reconnecting when the connection drops (after a backoff that
/// grows while the database stays away). A notification missed while disconnected is made
/// up for by forgetting every cached key and waking every stream once reconnected: the
/// account readers then read on from their place in the log.
pub async fn run(database_url: String, store: Arc<Store>, signals: Arc<Signals>, shutdown: CancellationToken) {
    // A signal may need a read (who shares a conversation with a user whose presence
    // changed): it is handed to a task of its own, so that wake-ups and revokes never
    // wait behind it.
    tokio::select! {
        () = listen(&database_url, &store, &signals) => {}
        () = shutdown.cancelled() => {}
    }
}

/// After a notification may have been missed.
fn start_over(store: &Store) {
    store.credentials().forget_all();
    store.wakeups().wake_all();
}

/// Waits between reconnection attempts: from 100 ms, doubling with jitter, to 5 s.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

async fn listen(database_url: &str, store: &Store, signals: &Arc<Signals>) {
    let hub = store.wakeups();
    let mut delays = reconnect_delays();
    loop {
        match PgListener::connect(database_url).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen_all([wakeups::CHANNEL, credentials::CHANNEL, signals::CHANNEL]).await
                {
                    tracing::warn!(error = %err, "LISTEN failed; retrying");
                } else {
                    tracing::debug!("listening for event notifications");
                    delays = reconnect_delays();
                    // Anything committed before LISTEN took effect is found by this read.
                    start_over(store);
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) if notification.channel() == credentials::CHANNEL => {
                                if let Some((account_id, user_id)) = notification.payload().split_once(' ') {
                                    store.credentials().forget_user(user_id);
                                    hub.wake(account_id);
                                }
                            }
                            Ok(Some(notification)) if notification.channel() == signals::CHANNEL => {
                                let (signals, payload) = (Arc::clone(signals), notification.payload().to_owned());
                                tokio::spawn(async move { signals.receive(&payload).await });
                            }
                            Ok(Some(notification)) => hub.wake(notification.payload()),
                            // Reconnect here rather than let sqlx do it on the next receive: the
                            // cache must be cleared after LISTEN is back, or a revoke made in
                            // between would go unheard.
                            Ok(None) => {
                                tracing::warn!("event notification connection lost; reconnecting");
                                break;
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "event notifications failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot connect for event notifications; retrying"),
        }
        start_over(store);
        tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
    }
}
