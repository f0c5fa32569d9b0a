//! What a unit of work writes through: [`WriteTx`], its savepoint in the writer's batch
//! (`writer.rs`), or the transaction itself when the batch is the unit alone, with the
//! events it will append. Units never hold the transaction itself
//! (they cannot commit, roll back or keep it), so how they are batched is the writer's
//! business alone.
//!
//! A unit's run is separate steps: the writer opens its savepoint, runs it, then either
//! keeps it (appends its events with its own time and actor, releases the savepoint) or
//! discards it (rolls back to the savepoint, leaving nothing behind).

use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseTransaction, DbErr};

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

    /// Records an event to append when the unit is kept.
    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Says that `user_id`'s keys act differently after this unit (revoked, another role):
    /// at commit they leave every replica's key cache and its account's streams re-check.
    pub fn credentials_changed(&mut self, user_id: &str) {
        self.credentials_changed.push(user_id.to_owned());
    }

    /// A unit's transaction: `txn` is its savepoint, or its own transaction.
    pub(super) fn new(txn: DatabaseTransaction, account_id: String, actor_id: String) -> Self {
        Self { txn, account_id, actor_id, now: now_micros(), events: Vec::new(), credentials_changed: Vec::new() }
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
        if let Err(err) = events::append(&self.txn, &self.account_id, &self.actor_id, self.now, events).await {
            self.txn.rollback().await?;
            return Ok(Err(err));
        }
        self.txn.commit().await?;
        Ok(Ok(Kept { appended, credentials_changed: self.credentials_changed }))
    }

    /// Rolls back to the unit's savepoint.
    pub(super) async fn discard(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}
