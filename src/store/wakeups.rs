//! Per-account wake-ups: the writer wakes an account after a commit appended events to its
//! log or changed what one of its keys acts as; the account's log reader (in `events`)
//! listens. Other replicas hear of the commit from the [`Announcer`], by PostgreSQL NOTIFY
//! on [`CHANNEL`] after commit. It lives with the store because the store owns the commit;
//! `events` only listens and forwards other replicas' notifications.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::{Notify, watch};

use crate::domain::Error;

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

/// Sends each of `payloads` on PostgreSQL channel `channel`, in one statement: delivered to
/// every replica listening when `db`'s transaction commits (at once outside one).
pub async fn notify<C: ConnectionTrait>(db: &C, channel: &str, payloads: &[String]) -> Result<(), Error> {
    if payloads.is_empty() {
        return Ok(());
    }
    let rows = (2..payloads.len() + 2).map(|n| format!("(${n})")).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT pg_notify($1, payload) FROM (VALUES {rows}) AS sent(payload)");
    let values = std::iter::once(channel.into()).chain(payloads.iter().map(|payload| payload.as_str().into()));
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    Ok(())
}

/// How long an announcer waits after announcing before it announces again: the accounts
/// that commit meanwhile go in the next NOTIFY together, each once.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(5);

/// Tells other replicas (PostgreSQL NOTIFY on [`CHANNEL`]) which accounts' logs grew:
/// one statement for every account that changed since the last one, at most one per
/// [`ANNOUNCE_EVERY`], so that a busy account costs one notification per few milliseconds
/// however many writes it commits. A NOTIFY that fails is tried again with the next; the
/// listeners' polls and their catch-up after reconnecting cover what never arrives.
#[derive(Clone)]
pub struct Announcer {
    pending: Option<Arc<Pending>>,
}

#[derive(Default)]
struct Pending {
    accounts: Mutex<BTreeSet<String>>,
    added: Notify,
}

impl Announcer {
    /// Starts announcing on `db` if it is PostgreSQL; for SQLite, an announcer that tells
    /// nobody (processes sharing a file poll).
    pub fn start(db: &DatabaseConnection) -> Self {
        if db.get_database_backend() != DbBackend::Postgres {
            return Self { pending: None };
        }
        let pending = Arc::new(Pending::default());
        tokio::spawn(announce(db.clone(), Arc::downgrade(&pending)));
        Self { pending: Some(pending) }
    }

    /// Queues `account_id` for the next announcement.
    pub fn announce(&self, account_id: &str) {
        if let Some(pending) = &self.pending {
            let mut accounts = pending.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !accounts.contains(account_id) {
                accounts.insert(account_id.to_owned());
            }
            pending.added.notify_one();
        }
    }
}

/// Announces until every [`Announcer`] is gone.
async fn announce(db: DatabaseConnection, pending: Weak<Pending>) {
    loop {
        let Some(waiting) = pending.upgrade() else { return };
        // Wait for an account, but not for ever: the last announcer may go meanwhile.
        let _ = tokio::time::timeout(Duration::from_secs(1), waiting.added.notified()).await;
        let accounts: Vec<String> = {
            let mut accounts = waiting.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::take(&mut *accounts).into_iter().collect()
        };
        if accounts.is_empty() {
            continue;
        }
        if let Err(err) = notify(&db, CHANNEL, &accounts).await {
            tracing::warn!(error = %err, "could not announce new events to other replicas; will retry");
            waiting.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(accounts);
            drop(waiting);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        drop(waiting);
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}
