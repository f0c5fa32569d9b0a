//! One log reader per account: for each account with open streams on this replica, one task
//! reads the account's new events once per wake-up (a commit batch here, a notification
//! from another replica, or a poll), decodes them once, and hands the same batch to every
//! stream of the account, which filters it in memory. So a commit costs the account one
//! read however many streams watch it, and idle streams cost no queries (one poll per
//! account per [`FeedSettings::poll_interval`]).
//!
//! The channel is bounded: a stream that falls more than [`BACKLOG`] batches behind loses
//! its place and reads the log itself until it has caught up (see `stream.rs`); nothing
//! waits for it and nothing is buffered for it without bound. Each batch says which span
//! of the log it covers, so a stream can tell a gap from what it already has.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    domain::{
        Error,
        events::{LoggedEvent, Narrowing, Position},
    },
    store::{self, Store},
};

/// Batches kept for streams that are slow to take them.
pub const BACKLOG: usize = 64;

/// How long a reader whose read failed waits before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How soon a reader looks again when committed events wait for an older transaction
/// (PostgreSQL): first after this, then twice as long each time, up to [`HELD_BACK_MOST`].
/// The older transaction's end wakes nobody when it appended nothing to this account.
const HELD_BACK_FIRST: Duration = Duration::from_millis(2);
const HELD_BACK_MOST: Duration = Duration::from_millis(100);

/// How readers read.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// Read the log this often even without a wake-up (events of other replicas when a
    /// notification was lost).
    pub poll_interval: Duration,
    /// Events read at a time.
    pub batch_size: u64,
}

/// A span of an account's log: every event after `after` up to `through`, with audiences.
#[derive(Debug)]
pub struct FeedBatch {
    /// The position the span starts after.
    pub after: Position,
    /// The position it ends at (a stream's next cursor).
    pub through: Position,
    /// Its events, in order; empty when the wake-up brought none (a revoke: streams then
    /// re-check their keys).
    pub events: Vec<LoggedEvent>,
    /// Read on a timer, not after a wake-up (events held back for an older transaction,
    /// or the poll): its events may have committed after a revoke whose notification this
    /// replica has not handled yet, so streams check their keys against the database.
    pub unannounced: bool,
}

/// The readers of this replica, one per account with streams.
pub struct Feeds {
    store: Arc<Store>,
    settings: FeedSettings,
    accounts: Mutex<HashMap<String, Weak<Feed>>>,
}

/// An account's reader, alive while a stream holds it.
struct Feed {
    batches: broadcast::Sender<Arc<FeedBatch>>,
    /// Stops the reader task when the last stream lets go.
    _stop: DropGuard,
}

/// A stream's place in its account's feed.
pub struct Subscription {
    batches: broadcast::Receiver<Arc<FeedBatch>>,
    _feed: Arc<Feed>,
}

/// What a subscription yields.
pub enum Received {
    /// The next batch.
    Batch(Arc<FeedBatch>),
    /// The stream fell behind and batches were lost to it: read the log to catch up.
    Lost,
}

impl Subscription {
    /// The next batch of the account, waiting for one.
    pub async fn next(&mut self) -> Received {
        match self.batches.recv().await {
            Ok(batch) => Received::Batch(batch),
            Err(broadcast::error::RecvError::Lagged(_)) => Received::Lost,
            // The sender lives in the feed this subscription holds.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Feeds {
    /// No readers yet; they start with the first stream of each account.
    pub fn new(store: Arc<Store>, settings: FeedSettings) -> Arc<Self> {
        Arc::new(Self { store, settings, accounts: Mutex::new(HashMap::new()) })
    }

    /// Joins the account's feed, starting its reader if it has none. Batches read from
    /// now on reach the subscription; what came before, the stream reads itself.
    pub fn subscribe(&self, account_id: &str) -> Subscription {
        let mut accounts = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(feed) = accounts.get(account_id).and_then(Weak::upgrade) {
            return Subscription { batches: feed.batches.subscribe(), _feed: feed };
        }
        accounts.retain(|_, feed| feed.strong_count() > 0);
        let (batches, receiver) = broadcast::channel(BACKLOG);
        let stop = CancellationToken::new();
        let reader = Reader {
            store: Arc::clone(&self.store),
            settings: self.settings,
            account_id: account_id.to_owned(),
            batches: batches.clone(),
        };
        let account = account_id.to_owned();
        let stopped = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = reader.run() => {}
                () = stopped.cancelled() => {}
            }
            tracing::trace!(account = %account, "log reader stopped");
        });
        let feed = Arc::new(Feed { batches, _stop: stop.drop_guard() });
        accounts.insert(account_id.to_owned(), Arc::downgrade(&feed));
        Subscription { batches: receiver, _feed: feed }
    }
}

struct Reader {
    store: Arc<Store>,
    settings: FeedSettings,
    account_id: String,
    batches: broadcast::Sender<Arc<FeedBatch>>,
}

impl Reader {
    async fn run(self) {
        // Listen before the first read, so that a commit in between still wakes the reader.
        let mut wakeups = self.store.wakeups().listen(&self.account_id);
        let mut position = loop {
            match store::events::head(&self.store, &self.account_id).await {
                Ok(head) => break head,
                Err(err) => self.pause(&err).await,
            }
        };
        // The first batch goes out even if empty: a stream that joined before this reader
        // read the head sees from its `after` whether commits came between its own read
        // and the head, and reads them.
        let mut woken = true;
        let mut held_back_wait = HELD_BACK_FIRST;
        loop {
            let held_back = match self.read_after(&mut position, woken).await {
                Ok(held_back) => held_back,
                Err(err) => {
                    // The wake-up that led here is spent: read again rather than wait.
                    self.pause(&err).await;
                    continue;
                }
            };
            let wait = if held_back { held_back_wait } else { self.settings.poll_interval };
            held_back_wait = if held_back { (held_back_wait * 2).min(HELD_BACK_MOST) } else { HELD_BACK_FIRST };
            woken = tokio::select! {
                () = wakeups.next() => true,
                () = tokio::time::sleep(wait) => false,
            };
        }
    }

    /// Reads and hands out everything after `position`, moving it on; whether committed
    /// events wait for an older transaction. After a wake-up an empty batch goes out too:
    /// the wake-up may have been a revoke.
    async fn read_after(&self, position: &mut Position, woken: bool) -> Result<bool, Error> {
        loop {
            let batch = store::events::read(
                &self.store,
                &self.account_id,
                *position,
                self.settings.batch_size,
                &Narrowing::none(),
            )
            .await?;
            let full = batch.events.len() as u64 == self.settings.batch_size;
            if !batch.events.is_empty() || woken {
                // No stream listening is not an error: the next stream reads the log itself.
                let _ = self.batches.send(Arc::new(FeedBatch {
                    after: *position,
                    through: batch.position,
                    events: batch.events,
                    unannounced: !woken,
                }));
            }
            *position = batch.position;
            if !full {
                return Ok(batch.held_back);
            }
        }
    }

    async fn pause(&self, err: &Error) {
        tracing::warn!(account = %self.account_id, error = %err, "reading the event log failed; retrying");
        tokio::time::sleep(RETRY_AFTER).await;
    }
}
