//! The one door for writes, [`Store::write`], and the group commit behind it: every write
//! of this process runs on one writer task, which takes the units
//! that are waiting (at most [`MAX_BATCH`], never waiting for more to arrive), runs them
//! one after another in one transaction, each in its own savepoint, commits once and only
//! then answers each of them and wakes the accounts whose logs grew.
//!
//! Why: a commit on SQLite with `synchronous=FULL` is a flush, and each transaction costs
//! its begin, commit and hand-offs; under load the next batch gathers while the current one
//! commits, so the flush and the transaction are shared by everything that arrived
//! meanwhile, and a lone write still goes at once. A unit that fails rolls back to its
//! savepoint and fails alone; a batch that cannot commit fails every unit in it (nothing of
//! it was written). Nobody is answered before the batch holding their write is durable, so
//! an acknowledged write survives a crash.
//!
//! On PostgreSQL the batch first takes the advisory lock of every account it writes, in one
//! fixed order (by lock key), so that two replicas' batches cannot deadlock; see
//! [`Store::write`](super::Store::write) for why the lock exists.

use std::{any::Any, collections::BTreeSet, panic::AssertUnwindSafe, sync::Arc};

use futures::FutureExt;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use super::{
    Store,
    credentials::{self, Credentials},
    tx::{UnitFuture, WriteTx},
    wakeups::{self, Hub},
};
use crate::domain::{Caller, Error};

/// The most units one batch holds: with units of the API's usual size this bounds how long
/// a batch keeps the write lock, and so how long its first unit waits for its last (a
/// large unit, such as a bulk import, holds the writer for as long as it runs).
pub const MAX_BATCH: usize = 128;

/// How many units may wait for the writer before submitters wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

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

/// Where the writer tells what its commits changed.
struct Listeners {
    hub: Arc<Hub>,
    credentials: Arc<Credentials>,
}

/// The handle to the writer task; the task ends when the handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `db`; commits wake `hub` and clear `credentials`.
    pub(super) fn start(db: DatabaseConnection, hub: Arc<Hub>, credentials: Arc<Credentials>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, Listeners { hub, credentials }, queue));
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
    ///
    /// On PostgreSQL the writer's transaction first takes an advisory lock on every account
    /// of the batch, held until commit: sequence values are handed out before commit, so
    /// without it a subscriber could read event 11 before event 10 commits and skip 10 for
    /// ever. With it, the account's writes commit in sequence order, and unread counters
    /// are never updated by two writers of one account at once.
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

async fn run(db: DatabaseConnection, listeners: Listeners, mut queue: mpsc::Receiver<Job>) {
    // Units' panics are caught; should the writer itself ever panic, every later write
    // fails as UNAVAILABLE, and the log must say why.
    let _alarm = PanicAlarm;
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        commit_batch(&db, &listeners, std::mem::take(&mut jobs)).await;
    }
}

/// Logs when dropped by a panic.
struct PanicAlarm;

impl Drop for PanicAlarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the writer task panicked: writes will fail until the server restarts");
        }
    }
}

/// Runs one batch and answers every job in it. Keys go from the cache before anyone is
/// answered, so that a revoke's caller never sees its key still working here.
async fn commit_batch(db: &DatabaseConnection, listeners: &Listeners, jobs: Vec<Job>) {
    let (pending, replies): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|job| ((job.account_id, job.actor_id, job.unit), job.reply)).unzip();
    let mut results = Vec::with_capacity(pending.len());
    let units = pending.len();
    let outcome = run_batch(db, pending, &mut results).await;
    metrics::histogram!("missive_write_batch_units").record(units as f64);
    let committed = if outcome.is_ok() { "committed" } else { "failed" };
    metrics::counter!("missive_write_batches_total", "outcome" => committed).increment(1);
    if let Ok(changes) = &outcome {
        metrics::counter!("missive_events_appended_total").increment(changes.events as u64);
        for (account_id, user_id) in &changes.credentials {
            listeners.credentials.forget_user(user_id);
            // Its streams re-check their keys now rather than at their next event.
            listeners.hub.wake(account_id);
        }
        for account_id in &changes.logs {
            listeners.hub.wake(account_id);
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

/// Runs the units in one transaction, pushing each one's result to `results` in order; what
/// the batch changed once it committed. On an error of the batch itself (begin, a
/// savepoint, commit) nothing of the batch was written.
async fn run_batch(
    db: &DatabaseConnection,
    pending: Vec<(String, String, Unit)>,
    results: &mut Vec<Result<Value, Error>>,
) -> Result<Changes, Error> {
    let accounts: BTreeSet<String> = pending.iter().map(|(account_id, _, _)| account_id.clone()).collect();
    let batch = begin(db, &accounts).await?;
    let mut changes = Changes::default();
    for (account_id, actor_id, unit) in pending {
        let mut tx = WriteTx::new(batch.begin().await?, account_id, actor_id);
        let result = AssertUnwindSafe(unit(&mut tx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::Internal("a write panicked".into())));
        match result {
            Ok(value) => {
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
            }
            Err(err) => {
                tx.discard().await?;
                results.push(Err(err));
            }
        }
    }
    announce(&batch, &changes).await?;
    batch.commit().await?;
    Ok(changes)
}

/// Begins a batch's transaction. On SQLite it is `BEGIN IMMEDIATE`: it takes the write lock
/// at once, waiting out other processes (busy timeout), instead of failing with SQLITE_BUSY
/// when its first write finds that another process wrote since its first read. On
/// PostgreSQL it takes the lock of every account of the batch, in the order of their lock
/// keys (the subquery's ORDER BY), so that all batches lock in one order.
async fn begin(db: &DatabaseConnection, accounts: &BTreeSet<String>) -> Result<DatabaseTransaction, Error> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        let rows = (1..=accounts.len()).map(|n| format!("(${n})")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT pg_advisory_xact_lock(key) FROM \
             (SELECT DISTINCT hashtext(account_id) AS key FROM (VALUES {rows}) AS batch(account_id) ORDER BY key) AS keys"
        );
        let values = accounts.iter().map(|account_id| account_id.as_str().into());
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    }
    Ok(txn)
}

/// On PostgreSQL, queues one NOTIFY per user whose keys changed and per account whose log
/// grew, delivered at commit to every replica's listener (see `events::listener`) in this
/// order: keys first, so that a replica's streams woken by the log re-check their keys
/// against a cache that has already forgotten them.
async fn announce(batch: &DatabaseTransaction, changes: &Changes) -> Result<(), Error> {
    if batch.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let logs = changes.logs.iter().map(|account_id| (wakeups::CHANNEL, account_id.clone()));
    let credentials = changes
        .credentials
        .iter()
        .map(|(account_id, user_id)| (credentials::CHANNEL, format!("{account_id} {user_id}")));
    for (channel, payload) in credentials.chain(logs) {
        batch
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [channel.into(), payload.into()],
            ))
            .await?;
    }
    Ok(())
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
                                event_seq: Set(0),
                                token_secret: Set(None),
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
