//! Delivers scheduled messages when they are due (`store::scheduled::deliver_due`): the
//! first pass at start-up sends what fell due while the server was down.

use std::{sync::Arc, time::Duration};

use crate::{shutdown::Shutdown, store::Store};

/// Looks for due messages every `interval` until shutdown.
pub async fn run(store: Arc<Store>, interval: Duration, shutdown: Shutdown) {
    super::every(interval, shutdown, || async {
        match crate::store::scheduled::deliver_due(&store).await {
            Ok(0) => {}
            Ok(delivered) => tracing::debug!(delivered, "delivered scheduled messages"),
            Err(err) => tracing::warn!(error = %err, "looking for due scheduled messages failed; will retry"),
        }
    })
    .await;
}
