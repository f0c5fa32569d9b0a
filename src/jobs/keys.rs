//! Keeps the keys in use cached where cached keys expire (processes sharing one SQLite
//! file): every half of an entry's life, each account's cached keys are read again in one
//! statement (`store::users::refresh_keys`). Without it every idle stream re-read its key
//! at each heartbeat; with it a change made through another process still ends its
//! streams within the cache's age. (PostgreSQL replicas hear of changes by NOTIFY.)

use std::sync::Arc;

use crate::{
    shutdown::Shutdown,
    store::{Store, credentials::SHARED_FILE_MAX_AGE, users},
};

/// Refreshes every half of [`SHARED_FILE_MAX_AGE`] until shutdown.
pub async fn run(store: Arc<Store>, shutdown: Shutdown) {
    super::every(SHARED_FILE_MAX_AGE / 2, shutdown, || async {
        if let Err(err) = users::refresh_keys(&store).await {
            tracing::warn!(error = %err, "re-reading the cached API keys failed; they expire instead");
        }
    })
    .await;
}
