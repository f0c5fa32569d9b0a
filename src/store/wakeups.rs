//! Per-account wake-ups: the writer wakes an account after a commit appended events to its
//! log or changed what one of its keys acts as; the account's log reader (in `events`)
//! listens. It lives with the store because the store owns the commit; `events` only
//! listens and, for other replicas, forwards PostgreSQL notifications on [`CHANNEL`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

/// The PostgreSQL NOTIFY channel on which commits announce their account to other
/// replicas.
pub const CHANNEL: &str = "missive_events";

/// Wakes an account's log reader after a commit appended events to its log.
///
/// A `watch` channel per account carries only a counter: waking coalesces (a stream that
/// was busy sees one change however many commits happened) and costs writers nothing but
/// a lock held for a map lookup. A std Mutex, not a tokio one, because it is never held
/// across an await.
#[derive(Debug, Default)]
pub struct Hub {
    accounts: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    /// A hub nobody listens to yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Wakes whoever listens for the account. Cheap when nobody listens.
    pub fn wake(&self, account_id: &str) {
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = accounts.get(account_id) {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Wakes every listener of every account: after a wake-up may have been missed.
    pub fn wake_all(&self) {
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for sender in accounts.values() {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Listens for the account's wake-ups until the returned value is dropped.
    pub fn listen(self: &Arc<Self>, account_id: &str) -> Wakeups {
        let mut accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sender = accounts.entry(account_id.to_owned()).or_insert_with(|| watch::channel(0).0);
        Wakeups { receiver: sender.subscribe(), hub: Arc::clone(self), account_id: account_id.to_owned() }
    }
}

/// One stream's wake-ups. Dropping the last one of an account frees its channel.
pub struct Wakeups {
    receiver: watch::Receiver<u64>,
    hub: Arc<Hub>,
    account_id: String,
}

impl Wakeups {
    /// Waits for the next wake-up (returns at once if one came since the last call).
    pub async fn next(&mut self) {
        // The sender lives in the hub's map for as long as this receiver exists, so
        // `changed` cannot fail; if it ever did, waiting would spin, so wait for ever.
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        let mut accounts = self.hub.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // This receiver still counts until the end of this function.
        if accounts.get(&self.account_id).is_some_and(|sender| sender.receiver_count() <= 1) {
            accounts.remove(&self.account_id);
        }
    }
}

/// Sends `payload` on PostgreSQL channel `channel`, outside any transaction: delivered to
/// every replica listening at once.
pub async fn notify(store: &super::Store, channel: &str, payload: &str) -> Result<(), crate::domain::Error> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [channel.into(), payload.into()],
    );
    store.db.execute_raw(statement).await?;
    Ok(())
}
