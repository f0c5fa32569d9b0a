//! The door for writes, [`Store::write`] (and `Store::write_in` for units that change a
//! conversation, `door.rs`), and the writers behind it. Every write of this process waits
//! in one queue for a writer *lane*: a task with a connection that takes the units waiting
//! (at most its batch, never waiting for more to arrive), runs them one after another in
//! one transaction (when the batch holds several, each in its own savepoint: SQLite's),
//! commits once and only then answers each of them and wakes the accounts whose logs grew.
//!
//! - **SQLite** has one lane with batches of up to [`MAX_BATCH`] (group commit): the file
//!   takes one writer at a time anyway, and a commit with `synchronous=FULL` is a flush,
//!   so the next batch gathers while the current one commits and the flush is shared by
//!   everything that arrived meanwhile; a lone write still goes at once.
//! - **PostgreSQL** has [`WriterSettings::lanes`] lanes of one unit each: writes of one
//!   account (and of every replica) run concurrently, each in its own transaction, and the
//!   database shares the WAL flushes of concurrent commits itself. One unit per
//!   transaction because two batches could lock the same rows in opposite orders; a unit
//!   takes advisory locks before any row (its request id, `access::claim_request_id`; its
//!   conversation, taken by the door, `door.rs`; a role it changes, `access::hold_role`),
//!   so units of one conversation queue there and others pass. Events stay in one order
//!   per account without any account-wide lock: see `events.rs`. With one lane,
//!   PostgreSQL batches like SQLite.
//!
//! A unit that fails rolls back to its savepoint and fails alone; a batch that cannot commit
//! fails every unit in it (nothing of it was written). Nobody is answered before the batch
//! holding their write is durable, so an acknowledged write survives a crash.
//!
//! Other replicas hear of grown logs by NOTIFY after commit, never inside the write's
//! transaction (which would take PostgreSQL's notify lock at commit, one committer at a
//! time), from the [`Announcer`](super::wakeups::Announcer), coalesced per account. A
//! changed key, which is rare and must never be missed, is announced in its unit's
//! transaction (`WriteTx::keep`).

use std::{any::Any, collections::BTreeSet, panic::AssertUnwindSafe, sync::Arc};

use futures::FutureExt;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{
    Store,
    credentials::Credentials,
    sqlite::WriterConnection,
    tx::{UnitFuture, WriteTx},
    wakeups::{Announcer, Hub},
};
use crate::domain::{Caller, Error};

/// The most units one batch holds: with units of the API's usual size this bounds how long
/// a batch keeps the write lock, and so how long its first unit waits for its last (a
/// large unit, such as a bulk import, holds the writer for as long as it runs).
pub const MAX_BATCH: usize = 128;

/// How many units may wait for a writer before submitters wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// How writes run; from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Transactions in flight at once on PostgreSQL (SQLite always has one).
    pub lanes: usize,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self { lanes: 16 }
    }
}

/// A unit's value, type-erased for the trip through the writer and back.
type Value = Box<dyn Any + Send>;

/// A unit of work as the writer runs it.
type Unit = Box<dyn for<'t> FnOnce(&'t mut WriteTx) -> UnitFuture<'t, Value> + Send>;

/// A unit waiting for the writer, with whom it writes as and where its answer goes.
struct Job {
    account_id: String,
    actor_id: String,
    unit: Unit,
    reply: oneshot::Sender<Result<Value, Error>>,
}

/// What a committed batch changed, to tell after commit.
#[derive(Default)]
struct Changes {
    /// Accounts whose logs grew.
    logs: BTreeSet<String>,
    /// Events appended, over all accounts.
    events: usize,
    /// (account, user) whose keys act differently now.
    credentials: BTreeSet<(String, String)>,
}

/// What a lane writes through, and where it tells what its commits changed.
struct Listeners {
    db: DatabaseConnection,
    /// SQLite's writer connection, whose begin and commit failures sea-orm cannot see.
    sqlite: Option<WriterConnection>,
    hub: Arc<Hub>,
    credentials: Arc<Credentials>,
    announcer: Announcer,
}

/// The handle to the writer lanes; they end when the handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the lanes on `db` (on SQLite, `sqlite` is its connection); commits wake `hub`
    /// (and, through `announcer`, other replicas) and clear `credentials`.
    pub(super) fn start(
        db: DatabaseConnection,
        sqlite: Option<WriterConnection>,
        hub: Arc<Hub>,
        credentials: Arc<Credentials>,
        announcer: Announcer,
        settings: WriterSettings,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let lanes = if db.get_database_backend() == DbBackend::Postgres { settings.lanes.max(1) } else { 1 };
        let batch = if lanes == 1 { MAX_BATCH } else { 1 };
        let queue = Arc::new(Mutex::new(queue));
        let on_thread = sqlite.is_some();
        let listeners = Arc::new(Listeners { db, sqlite, hub, credentials, announcer });
        if on_thread {
            run_on_own_thread(listeners, queue, batch);
            return Self { jobs };
        }
        for _ in 0..lanes {
            tokio::spawn(run(Arc::clone(&listeners), Arc::clone(&queue), batch));
        }
        Self { jobs }
    }

    /// Runs `unit` in `account_id` as `actor_id` in the next batch; its value once the batch
    /// committed. Once queued, the unit runs and commits even if this future is dropped
    /// meanwhile (a cancelled call); a retry with the same request id finds its result.
    async fn submit(&self, account_id: &str, actor_id: &str, unit: Unit) -> Result<Value, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job { account_id: account_id.to_owned(), actor_id: actor_id.to_owned(), unit, reply };
        self.jobs.send(job).await.map_err(|_| Error::Unavailable("the writer has stopped".into()))?;
        answer.await.map_err(|_| Error::Internal("the writer dropped a write without answering".into()))?
    }
}

impl Store {
    /// Runs `unit` as `caller`'s write; the unit gets the caller alongside the transaction.
    /// A unit that changes a conversation goes through `Store::write_in` instead.
    pub async fn write<T, F>(&self, caller: &Caller, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx, &'t Caller) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        let as_caller = caller.clone();
        self.write_as(&caller.account_id, &caller.user_id, move |tx| {
            Box::pin(async move { unit(tx, &as_caller).await })
        })
        .await
    }

    /// Runs `unit` in `account_id` as `actor_id` ("" for the operator's command line and
    /// the server's own jobs).
    pub async fn write_as<T, F>(&self, account_id: &str, actor_id: &str, unit: F) -> Result<T, Error>
    where
        F: for<'t> FnOnce(&'t mut WriteTx) -> UnitFuture<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(account_id, actor_id, move |tx| {
            tx.start();
            unit(tx)
        })
        .await
    }

    /// Runs `unit` as it is: its body starts when it says so (`WriteTx::start`), after the
    /// door's locks (`door.rs`).
    pub(super) async fn submit<T, F>(&self, account_id: &str, actor_id: &str, unit: F) -> Result<T, Error>
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

/// One lane: takes up to `batch` waiting units at a time and commits them.
async fn run(listeners: Arc<Listeners>, queue: Arc<Mutex<mpsc::Receiver<Job>>>, batch: usize) {
    // Units' panics are caught; should a lane itself ever panic, the log must say why.
    let _alarm = PanicAlarm;
    let mut jobs = Vec::with_capacity(batch);
    loop {
        // The queue is held only while taking: other lanes take while this one commits.
        let taken = queue.lock().await.recv_many(&mut jobs, batch).await;
        if taken == 0 {
            return;
        }
        commit_batch(&listeners, std::mem::take(&mut jobs)).await;
    }
}

/// SQLite's one lane, on an OS thread of its own that owns the writer's connection: every
/// statement of a batch, and its commit's flush, run there, on a runtime of the thread's
/// own, never on a tokio worker and never handed between threads. The thread ends with the
/// queue (when the store goes).
fn run_on_own_thread(listeners: Arc<Listeners>, queue: Arc<Mutex<mpsc::Receiver<Job>>>, batch: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let lane = move || match runtime {
        Ok(runtime) => runtime.block_on(run(listeners, queue, batch)),
        Err(err) => tracing::error!(error = %err, "the SQLite writer could not start: writes fail"),
    };
    if let Err(err) = std::thread::Builder::new().name("missive-writer".into()).spawn(lane) {
        tracing::error!(error = %err, "the SQLite writer's thread could not start: writes fail");
    }
}

/// Logs when dropped by a panic.
struct PanicAlarm;

impl Drop for PanicAlarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("a writer lane panicked: writes will slow or fail until the server restarts");
        }
    }
}

/// Runs one batch and answers every job in it. Keys go from the caches (this replica's,
/// then every other's by NOTIFY) before anyone is answered, so that a revoke's caller never
/// sees its key still working.
async fn commit_batch(listeners: &Listeners, jobs: Vec<Job>) {
    let (pending, replies): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|job| ((job.account_id, job.actor_id, job.unit), job.reply)).unzip();
    let mut results = Vec::with_capacity(pending.len());
    let units = pending.len();
    // What the last batch's transactions left when they were dropped (a rollback that
    // failed) is that batch's, not this one's.
    if let Err(err) = listeners.transaction_ok() {
        tracing::warn!(error = %err, "a failed batch's rollback failed too");
    }
    let outcome = run_batch(listeners, pending, &mut results).await;
    metrics::histogram!("missive_write_batch_units").record(units as f64);
    let committed = if outcome.is_ok() { "committed" } else { "failed" };
    metrics::counter!("missive_write_batches_total", "outcome" => committed).increment(1);
    if let Ok(changes) = &outcome {
        metrics::counter!("missive_events_appended_total").increment(changes.events as u64);
        forget_credentials(listeners, &changes.credentials);
        for account_id in changes.logs.iter().chain(changes.credentials.iter().map(|(account_id, _)| account_id)) {
            // Its streams re-check their keys now rather than at their next event.
            listeners.hub.wake(account_id);
            listeners.announcer.announce(account_id);
        }
    }
    let mut results = results.into_iter();
    for reply in replies {
        let answer = match (&outcome, results.next()) {
            // A unit's own failure is its answer, whatever became of the batch.
            (_, Some(Err(own))) => Err(own),
            (Ok(_), Some(Ok(value))) => Ok(value),
            (Err(batch), _) => Err(batch.clone()),
            (Ok(_), None) => Err(Error::Internal("a committed batch skipped a unit".into())),
        };
        // The submitter may have gone (a cancelled call); its write stands all the same.
        let _ = reply.send(answer);
    }
}

/// Forgets changed keys here (other replicas were told in the unit's own transaction, see
/// `WriteTx::keep`).
fn forget_credentials(listeners: &Listeners, changed: &BTreeSet<(String, String)>) {
    for (_, user_id) in changed {
        listeners.credentials.forget_user(user_id);
    }
}

/// Runs the units in one transaction, pushing each one's result to `results` in order; what
/// the batch changed once it committed. On an error of the batch itself (begin, a
/// savepoint, commit) nothing of the batch was written. A lone unit (PostgreSQL's lanes
/// take one at a time) runs in the transaction itself: its savepoint would cost two round
/// trips and guard nothing, since its failure rolls back only its own work either way.
async fn run_batch(
    listeners: &Listeners,
    mut pending: Vec<(String, String, Unit)>,
    results: &mut Vec<Result<Value, Error>>,
) -> Result<Changes, Error> {
    let mut changes = Changes::default();
    if pending.len() == 1
        && let Some((account_id, actor_id, unit)) = pending.pop()
    {
        // Keeping the unit commits the transaction.
        let tx = begin(listeners).await?;
        run_unit(WriteTx::new(tx, account_id, actor_id), unit, &mut changes, results).await?;
        listeners.transaction_ok()?;
        return Ok(changes);
    }
    let batch = begin(listeners).await?;
    for (account_id, actor_id, unit) in pending {
        let savepoint = batch.begin().await?;
        listeners.transaction_ok()?;
        run_unit(WriteTx::new(savepoint, account_id, actor_id), unit, &mut changes, results).await?;
        listeners.transaction_ok()?;
    }
    batch.commit().await?;
    listeners.transaction_ok()?;
    Ok(changes)
}

impl Listeners {
    /// On SQLite, the failure of the last begin, savepoint, release or commit, which sea-orm
    /// cannot see (`sqlite/session.rs`): a batch whose commit failed answers no one OK.
    fn transaction_ok(&self) -> Result<(), Error> {
        match &self.sqlite {
            Some(connection) => Ok(connection.take_failure()?),
            None => Ok(()),
        }
    }
}

/// Runs one unit in `tx` and keeps it (or rolls it back when it fails), pushing its result
/// and adding what it changed. The error is the transaction's own (see [`WriteTx::keep`]).
async fn run_unit(
    mut tx: WriteTx,
    unit: Unit,
    changes: &mut Changes,
    results: &mut Vec<Result<Value, Error>>,
) -> Result<(), Error> {
    let result = AssertUnwindSafe(unit(&mut tx))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::Internal("a write panicked".into())));
    let value = match result {
        Ok(value) => value,
        Err(err) => {
            tx.discard().await?;
            results.push(Err(err));
            return Ok(());
        }
    };
    let account_id = tx.account_id().to_owned();
    match tx.keep().await? {
        Ok(kept) => {
            for user_id in kept.credentials_changed {
                changes.credentials.insert((account_id.clone(), user_id));
            }
            if kept.appended > 0 {
                changes.events += kept.appended;
                changes.logs.insert(account_id);
            }
            results.push(Ok(value));
        }
        Err(err) => results.push(Err(err)),
    }
    Ok(())
}

/// Begins a batch's transaction. On SQLite it is `BEGIN IMMEDIATE` (the writer's connection
/// begins no other way): it takes the write lock at once, waiting out other processes (busy
/// timeout), instead of failing with SQLITE_BUSY when its first write finds that another
/// process wrote since its first read.
async fn begin(listeners: &Listeners) -> Result<DatabaseTransaction, Error> {
    let transaction = listeners.db.begin().await?;
    listeners.transaction_ok()?;
    Ok(transaction)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    use super::*;
    use crate::store::{Store, entities::account};

    /// Units that queue while the writer is busy run in one batch (none of them sees,
    /// from outside the batch, what another has written); the odd ones write and then fail,
    /// and only their own writes are rolled back.
    #[tokio::test]
    async fn a_failing_unit_rolls_back_alone_within_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&format!("sqlite:{}", dir.path().join("w.db").display())).await.unwrap());
        let (release, held) = oneshot::channel::<()>();
        let holder = tokio::spawn({
            let store = Arc::clone(&store);
            async move {
                store
                    .write_as("", "", move |_| {
                        Box::pin(async move {
                            let _ = held.await;
                            Ok(())
                        })
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // What each unit sees committed, read through the pool (another connection).
        let seen_outside = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut units = Vec::new();
        for n in 0..10 {
            let (store, seen_outside) = (Arc::clone(&store), Arc::clone(&seen_outside));
            let pool = store.db.clone();
            units.push(tokio::spawn(async move {
                store
                    .write_as("", "", move |tx| {
                        Box::pin(async move {
                            account::ActiveModel {
                                id: Set(format!("acc_{n}")),
                                name: Set(format!("unit {n}")),
                                create_time: Set(tx.now),
                                conversation_count: Set(0),
                                token_secret: Set(None),
                                cursor_key: Set(String::new()),
                                search_language: Set("simple".into()),
                            }
                            .insert(tx.conn())
                            .await?;
                            let committed = account::Entity::find().all(&pool).await?.len();
                            seen_outside.lock().unwrap().push(committed);
                            if n % 2 == 1 { Err(Error::invalid("n", "odd")) } else { Ok(n) }
                        })
                    })
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();

        for (n, unit) in units.into_iter().enumerate() {
            match unit.await.unwrap() {
                Ok(value) => assert_eq!((n % 2, value), (0, n)),
                Err(err) => assert!(n % 2 == 1 && matches!(err, Error::InvalidArgument(_)), "{n}: {err}"),
            }
        }
        let mut stored: Vec<String> =
            account::Entity::find().all(&store.db).await.unwrap().into_iter().map(|a| a.id).collect();
        stored.sort();
        assert_eq!(stored, ["acc_0", "acc_2", "acc_4", "acc_6", "acc_8"]);
        assert_eq!(*seen_outside.lock().unwrap(), [0; 10], "all ten ran before anything of them committed");
    }
}
