//! Signals: what streams are told but the log never holds: typing, and presence changes.
//! They are live only (never replayed on resume) and may be lost to a stream that is
//! behind; what they say can always be read again (a participant's `online` on
//! GetConversation).
//!
//! A signal reaches this replica's streams of its account at once and, on PostgreSQL,
//! the other replicas' through `NOTIFY` on [`CHANNEL`], sent outside any transaction. Each
//! replica names itself in what it sends and skips its own. A presence change carries
//! only the user: each replica with streams of the account looks up, once, which
//! conversations the user takes part in, and each stream judges by that whether its
//! caller shares one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{
    domain::{Error, events::Membership, presence::Presence},
    store::{self, Store},
};

/// The PostgreSQL NOTIFY channel signals cross replicas on.
pub const CHANNEL: &str = "missive_signals";

/// Signals kept for a stream that is slow to take them; older ones are dropped for it.
const BACKLOG: usize = 256;

/// What happened, as sent between replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalKind {
    /// A participant typing in a conversation, or stopping.
    Typing { conversation_id: String, user_id: String, typing: bool },
    /// A user's presence changed.
    Presence { user_id: String, presence: Presence },
}

/// A signal as a stream receives it.
#[derive(Debug, Clone)]
pub struct Signal {
    /// What happened.
    pub kind: SignalKind,
    /// For a presence change: the conversations the user takes part in, to tell who
    /// shares one with it.
    pub membership: Option<Arc<Membership>>,
}

/// A signal on the wire between replicas.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The replica that sent it.
    replica: String,
    account: String,
    #[serde(flatten)]
    kind: SignalKind,
}

/// This replica's signal channels, one per account with streams.
pub struct Signals {
    store: Arc<Store>,
    replica_id: String,
    accounts: Mutex<HashMap<String, broadcast::Sender<Arc<Signal>>>>,
}

impl Signals {
    /// Signals of replica `replica_id`.
    pub fn new(store: Arc<Store>, replica_id: String) -> Arc<Self> {
        Arc::new(Self { store, replica_id, accounts: Mutex::new(HashMap::new()) })
    }

    /// This replica's id, as it names itself to the others.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Receives the account's signals from now on.
    pub fn subscribe(&self, account_id: &str) -> broadcast::Receiver<Arc<Signal>> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        accounts.retain(|_, sender| sender.receiver_count() > 0);
        accounts.entry(account_id.to_owned()).or_insert_with(|| broadcast::channel(BACKLOG).0).subscribe()
    }

    /// Tells this replica's streams of the account, then the other replicas'.
    pub async fn publish(&self, account_id: &str, kind: SignalKind) -> Result<(), Error> {
        self.deliver(account_id, kind.clone()).await;
        if self.store.backend() == sea_orm::DbBackend::Postgres {
            let wire = Wire { replica: self.replica_id.clone(), account: account_id.to_owned(), kind };
            let payload = serde_json::to_string(&wire)
                .map_err(|err| Error::Internal(format!("could not encode a signal: {err}")))?;
            self.store.notify(CHANNEL, payload).await?;
        }
        Ok(())
    }

    /// A signal another replica sent (a NOTIFY payload).
    pub async fn receive(&self, payload: &str) {
        match serde_json::from_str::<Wire>(payload) {
            Ok(wire) if wire.replica != self.replica_id => self.deliver(&wire.account, wire.kind).await,
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "an unreadable signal was ignored"),
        }
    }

    /// Hands the signal to the account's streams here, if it has any.
    async fn deliver(&self, account_id: &str, kind: SignalKind) {
        let Some(sender) = self.sender(account_id) else {
            return;
        };
        let membership = match &kind {
            SignalKind::Presence { user_id, .. } => {
                match store::participants::membership(&self.store, account_id, user_id).await {
                    Ok(membership) => Some(Arc::new(membership)),
                    Err(err) => {
                        tracing::warn!(error = %err, "a presence change was not told: its conversations could not be read");
                        return;
                    }
                }
            }
            SignalKind::Typing { .. } => None,
        };
        // Nobody listening any more is fine: signals are live only.
        let _ = sender.send(Arc::new(Signal { kind, membership }));
    }

    fn sender(&self, account_id: &str) -> Option<broadcast::Sender<Arc<Signal>>> {
        let accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        accounts.get(account_id).filter(|sender| sender.receiver_count() > 0).cloned()
    }
}
