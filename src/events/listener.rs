//! Wake-ups across replicas: on PostgreSQL every commit that appends events also sends a
//! `NOTIFY missive_events, '<account>'`, delivered at commit; each replica LISTENs and wakes
//! its own streams of that account. So a subscriber on replica B sees a message sent through
//! replica A at once, not at the next poll.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::postgres::PgListener;

use tokio_util::sync::CancellationToken;

use crate::store::{Hub, wakeups::CHANNEL};

/// Listens until shutdown, reconnecting when the connection drops. A notification missed
/// while disconnected is made up for by waking every stream once reconnected.
pub async fn run(database_url: String, hub: Arc<Hub>, shutdown: CancellationToken) {
    tokio::select! {
        () = listen(&database_url, &hub) => {}
        () = shutdown.cancelled() => {}
    }
}

async fn listen(database_url: &str, hub: &Hub) {
    loop {
        match PgListener::connect(database_url).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN failed; retrying");
                } else {
                    tracing::debug!("listening for event notifications");
                    // Anything committed before LISTEN took effect is found by this read.
                    hub.wake_all();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => hub.wake(notification.payload()),
                            Ok(None) => {
                                tracing::warn!("event notification connection lost; reconnecting");
                                hub.wake_all();
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
        hub.wake_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
