//! What a unit of work writes through: [`WriteTx`], its savepoint in the writer's batch
//! (`writer.rs`), or the transaction itself when the batch is the unit alone, with the
//! events it will append. Units cannot commit, roll back or keep it themselves, so how
//! they are batched is the writer's business alone.
//!
//! A unit's run is separate steps: the writer opens its savepoint (or transaction), runs
//! it, then either keeps it (appends its events with its own time and actor, announces
//! changed keys, releases the savepoint or commits) or discards it (rolls back, leaving
//! nothing behind).

use std::{future::Future, pin::Pin};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};

use super::events;
use crate::domain::{Error, Micros, events::NewEvent, now_micros};

/// What a unit of work returns: a boxed future borrowing the transaction for `'t`.
pub type UnitFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 't>>;

/// The transaction a unit of work writes in, with the events it will append.
pub struct WriteTx {
    txn: DatabaseTransaction,
    account_id: String,
    actor_id: String,
    /// The time of the change: one clock reading for every row the unit writes.
    pub now: Micros,
    events: Vec<NewEvent>,
    /// Users whose keys now act differently (revoked, another role).
    credentials_changed: Vec<String>,
    /// The conversation the unit holds: locked by the door before the unit ran
    /// (`door.rs`), or created by the unit. Its events may name no other.
    held: Option<String>,
    /// Whether the unit's own body runs: the door's locks come before it.
    started: bool,
}

/// What a kept unit leaves for the writer to do after commit.
pub(super) struct Kept {
    /// How many events it appended (when any, its account's streams must wake).
    pub appended: usize,
    /// Users whose cached keys must go.
    pub credentials_changed: Vec<String>,
}

impl WriteTx {
    /// The connection to read and write through.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Records an event to append when the unit is kept. An event of a conversation needs
    /// the conversation held (`Store::write_in`): on PostgreSQL its
    /// lock is what keeps a conversation's events in the order of its changes.
    pub fn emit(&mut self, event: NewEvent) {
        debug_assert!(
            event.conversation_id.is_none() || event.conversation_id == self.held,
            "a unit emitted an event of conversation {:?} holding {:?}: a unit that changes a \
             conversation names it to the door (Store::write_in)",
            event.conversation_id,
            self.held,
        );
        self.events.push(event);
    }

    /// Locks conversation `id` until the unit ends, before the unit's body runs: only the
    /// door's targets (`door.rs`) call it. On PostgreSQL it is an advisory lock taken before
    /// any other lock or write but a request id's (see `door.rs`); on
    /// SQLite the writer holds the whole file already.
    pub(super) async fn hold_conversation(&mut self, id: &str) -> Result<(), Error> {
        self.mark_held(id);
        super::access::lock_conversation(&self.txn, id).await
    }

    /// [`Self::hold_conversation`] and a request id's claim in one statement (a send with a
    /// request id: one round trip instead of two).
    pub(super) async fn claim_and_hold(&mut self, claimed: &str, id: &str) -> Result<(), Error> {
        self.mark_held(id);
        super::access::claim_and_lock(&self.txn, claimed, id).await
    }

    /// Says that the unit created conversation `id`: nobody else can write to it before the
    /// unit commits, so it needs no lock, and the unit may emit its events.
    pub(super) fn created_conversation(&mut self, id: &str) {
        debug_assert!(self.held.is_none(), "a unit holds one conversation; it created {id} holding {:?}", self.held);
        self.held = Some(id.to_owned());
    }

    /// Marks conversation `id` held without a lock: for the log's own tests, whose events
    /// name conversations that do not exist.
    #[cfg(test)]
    pub(super) fn pretend_held(&mut self, id: &str) {
        self.held = Some(id.to_owned());
    }

    fn mark_held(&mut self, id: &str) {
        debug_assert!(
            !self.started,
            "conversation {id} locked by a unit's body: name it to the door (Store::write_in)"
        );
        debug_assert!(self.held.is_none(), "a unit holds one conversation; it asked for {id} holding {:?}", self.held);
        self.held = Some(id.to_owned());
    }

    /// The door is done: the unit's own body runs from here on.
    pub(super) fn start(&mut self) {
        self.started = true;
    }

    /// Says that `user_id`'s keys act differently after this unit (revoked, another role):
    /// at commit they leave every replica's key cache and its account's streams re-check.
    pub fn credentials_changed(&mut self, user_id: &str) {
        self.credentials_changed.push(user_id.to_owned());
    }

    /// A unit's transaction: `txn` is its savepoint, or its own transaction.
    pub(super) fn new(txn: DatabaseTransaction, account_id: String, actor_id: String) -> Self {
        Self {
            txn,
            account_id,
            actor_id,
            now: now_micros(),
            events: Vec::new(),
            credentials_changed: Vec::new(),
            held: None,
            started: false,
        }
    }

    /// The account the unit writes in.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Appends the unit's events to the log and releases its savepoint. When appending
    /// fails the unit is rolled back and fails alone (the inner error); the outer error is
    /// the batch's: its savepoint could be neither released nor rolled back.
    pub(super) async fn keep(mut self) -> Result<Result<Kept, Error>, Error> {
        let events = std::mem::take(&mut self.events);
        let appended = events.len();
        let appended_and_announced = async {
            events::append(&self.txn, &self.account_id, &self.actor_id, self.now, events).await?;
            self.announce_credentials().await
        };
        if let Err(err) = appended_and_announced.await {
            self.txn.rollback().await?;
            return Ok(Err(err));
        }
        self.txn.commit().await?;
        Ok(Ok(Kept { appended, credentials_changed: self.credentials_changed }))
    }

    /// On PostgreSQL, tells every replica which keys act differently now, in the unit's
    /// transaction: delivered at its commit or never, so that no replica can miss a revoke
    /// that committed (a NOTIFY after commit could be lost to a crash in between). Rare
    /// enough that the notify lock it takes at commit costs nothing; event wake-ups, which
    /// every write makes, go after commit instead (see `wakeups::Announcer`).
    async fn announce_credentials(&self) -> Result<(), Error> {
        if self.credentials_changed.is_empty() || self.txn.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let payloads: Vec<String> =
            self.credentials_changed.iter().map(|user_id| format!("{} {user_id}", self.account_id)).collect();
        super::wakeups::notify(&self.txn, super::credentials::CHANNEL, &payloads).await
    }

    /// Rolls back to the unit's savepoint.
    pub(super) async fn discard(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}
