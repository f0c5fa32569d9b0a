//! The one door for writes: [`Store::write`] runs a unit of work, a function over a
//! [`WriteTx`], and decides how it is executed. Today each unit is its own transaction;
//! because units never hold the transaction themselves (they cannot commit, roll back or
//! keep it), the door can later run several units in one commit.
//!
//! A unit's run is separate steps: begin (take the writer's turn and the transaction), run
//! the unit, seal (append its events with its own time and actor), commit (with a NOTIFY
//! to other replicas on PostgreSQL), wake the account's subscribers. A unit that fails
//! leaves nothing behind: its transaction is rolled back.
//!
//! Units own what they need (ids as `String`, the request's values): whoever runs them may
//! do so later, elsewhere, batched with others. `write` and `write_as` differ only in what
//! the unit is given; composing one from the other would need the unit to be `'static`.

use std::{future::Future, pin::Pin};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::MutexGuard;

use super::{Store, events, wakeups};
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
}

impl WriteTx {
    /// The connection to read and write through.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Records an event to append when the unit is sealed.
    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }
}

impl Store {
    /// Runs `unit` as `caller`'s write; the unit gets the caller alongside the transaction.
    ///
    /// On PostgreSQL the transaction first takes an advisory lock on the account, held until
    /// commit: sequence values are handed out before commit, so without it a subscriber
    /// could read event 11 before event 10 commits and skip 10 for ever. With it, the
    /// account's writes commit in sequence order, and unread counters are never updated by
    /// two writers of one account at once.
    pub async fn write<T, F>(&self, caller: &Caller, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx, &'t Caller) -> UnitFuture<'t, T> + Send,
        T: Send,
    {
        let _turn = self.writers_turn().await;
        let mut tx = self.begin(&caller.account_id, &caller.user_id).await?;
        let value = unit(&mut tx, caller).await?;
        self.finish(tx).await?;
        Ok(value)
    }

    /// Runs `unit` in `account_id` as `actor_id` ("" for the operator's command line and
    /// the server's own jobs).
    pub async fn write_as<T, F>(&self, account_id: &str, actor_id: &str, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx) -> UnitFuture<'t, T> + Send,
        T: Send,
    {
        let _turn = self.writers_turn().await;
        let mut tx = self.begin(account_id, actor_id).await?;
        let value = unit(&mut tx).await?;
        self.finish(tx).await?;
        Ok(value)
    }

    /// Seals and commits a unit that succeeded, then wakes its account's subscribers.
    async fn finish(&self, mut tx: WriteTx) -> Result<(), Error> {
        let appended = tx.seal().await?;
        let account_id = tx.account_id.clone();
        tx.commit(appended).await?;
        if appended {
            self.hub.wake(&account_id);
        }
        Ok(())
    }

    /// Waits for the SQLite writer's turn (nothing on PostgreSQL).
    async fn writers_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: it takes the
    /// write lock at once, waiting out other processes (busy timeout), instead of failing
    /// with SQLITE_BUSY when its first write finds that another process wrote since its
    /// first read. On PostgreSQL it takes the account's lock (see [`Store::write`]).
    async fn begin(&self, account_id: &str, actor_id: &str) -> Result<WriteTx, Error> {
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [account_id.into()],
            ))
            .await?;
        }
        Ok(WriteTx {
            txn,
            account_id: account_id.to_owned(),
            actor_id: actor_id.to_owned(),
            now: now_micros(),
            events: Vec::new(),
        })
    }
}

impl WriteTx {
    /// Appends the unit's events to the log; whether there were any.
    async fn seal(&mut self) -> Result<bool, Error> {
        let events = std::mem::take(&mut self.events);
        let appended = !events.is_empty();
        events::append(&self.txn, &self.account_id, &self.actor_id, self.now, events).await?;
        Ok(appended)
    }

    /// Commits; when events were appended on PostgreSQL, first queues a NOTIFY that is
    /// delivered at commit to every replica's listener (see `events::listener`).
    async fn commit(self, appended: bool) -> Result<(), DbErr> {
        if appended && self.txn.get_database_backend() == DbBackend::Postgres {
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [wakeups::CHANNEL.into(), self.account_id.clone().into()],
                ))
                .await?;
        }
        self.txn.commit().await
    }
}
