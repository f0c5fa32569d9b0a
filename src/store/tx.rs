//! The one door for writes: [`Store::write`] runs a unit of work, a function over a
//! [`WriteTx`]. The door hands units to the group-commit writer (`writer.rs`), which runs
//! each in a savepoint of a shared transaction; units never hold the transaction
//! themselves (they cannot commit, roll back or keep it), so how they are batched is the
//! writer's business alone.
//!
//! A unit's run is separate steps: the writer opens its savepoint, runs it, then either
//! keeps it (appends its events with its own time and actor, releases the savepoint) or
//! discards it (rolls back to the savepoint, leaving nothing behind).
//!
//! Units own what they need (ids as `String`, the request's values): they run later, on
//! the writer's task, batched with others.

use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseTransaction, DbErr};

use super::{Store, events, writer::Value};
use crate::domain::{Caller, Error, Micros, events::NewEvent, now_micros};

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
    /// Whether it appended events (its account's streams must wake).
    pub appended: bool,
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

    /// A unit's transaction: `txn` is its savepoint.
    pub(super) fn new(txn: DatabaseTransaction, account_id: String, actor_id: String) -> Self {
        Self { txn, account_id, actor_id, now: now_micros(), events: Vec::new(), credentials_changed: Vec::new() }
    }

    /// The account the unit writes in.
    pub(super) fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Appends the unit's events to the log and releases its savepoint. When appending
    /// fails the unit is rolled back and fails alone (the inner error); the outer error is
    /// the batch's: its savepoint could be neither released nor rolled back.
    pub(super) async fn keep(mut self) -> Result<Result<Kept, Error>, Error> {
        let events = std::mem::take(&mut self.events);
        let appended = !events.is_empty();
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

impl Store {
    /// Runs `unit` as `caller`'s write; the unit gets the caller alongside the transaction.
    ///
    /// On PostgreSQL the writer's transaction first takes an advisory lock on every account
    /// of the batch, held until commit: sequence values are handed out before commit, so without it a
    /// subscriber could read event 11 before event 10 commits and skip 10 for ever. With
    /// it, the account's writes commit in sequence order, and unread counters are never
    /// updated by two writers of one account at once.
    pub async fn write<T, F>(&self, caller: &Caller, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx, &'t Caller) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        let as_caller = caller.clone();
        let value = self
            .writer
            .submit(
                &caller.account_id,
                &caller.user_id,
                Box::new(move |tx| Box::pin(async move { unit(tx, &as_caller).await.map(erase) })),
            )
            .await?;
        Ok(restore(value))
    }

    /// Runs `unit` in `account_id` as `actor_id` ("" for the operator's command line and
    /// the server's own jobs).
    pub async fn write_as<T, F>(&self, account_id: &str, actor_id: &str, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        let value = self
            .writer
            .submit(account_id, actor_id, Box::new(move |tx| Box::pin(async move { unit(tx).await.map(erase) })))
            .await?;
        Ok(restore(value))
    }
}

fn erase<T: Send + 'static>(value: T) -> Value {
    Box::new(value)
}

/// The writer answers a unit with that unit's own value, so the type always matches.
fn restore<T: 'static>(value: Value) -> T {
    *value.downcast::<T>().expect("the writer answers each unit with its own value")
}
