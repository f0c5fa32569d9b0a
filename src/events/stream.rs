//! One `Subscribe` stream: every visible event after a cursor from the log, then live ones,
//! with no gap and no duplicate, because both come from the same log read in sequence
//! order; live delivery only says "read again".

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    domain::{
        Caller, Error,
        events::{Event, EventFilter},
    },
    store::{self, Store, wakeups::Wakeups},
};

/// How stale a stream's view of its caller's key and role may get.
const REAUTHENTICATE_AFTER: Duration = Duration::from_secs(1);

/// What a stream sends.
#[derive(Debug)]
pub enum StreamItem {
    /// An event the caller may see.
    Event(Box<Event>),
    /// No change; the stream's position, safe to resume from.
    Heartbeat {
        /// The cursor to resume after.
        position: i64,
    },
}

/// How streams behave; from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Sent on a stream idle this long.
    pub heartbeat_interval: Duration,
    /// Re-read the log this often even without a wake-up, to see events written by other
    /// replicas sharing the database.
    pub poll_interval: Duration,
    /// Events read from the log at a time.
    pub batch_size: u64,
    /// Events queued for a stream's client at most. With one batch being delivered this
    /// bounds what a slow subscriber can make the server hold: queue + batch events.
    pub queue_capacity: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(15),
            poll_interval: Duration::from_secs(30),
            batch_size: 200,
            queue_capacity: 32,
        }
    }
}

/// Counters over all streams, for operators and for the tests that prove the bounds.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Streams running now.
    pub active: AtomicUsize,
    /// The most items ever queued for one stream.
    pub peak_queued: AtomicUsize,
    /// Items handed to clients' queues, over all streams. A client that stops reading stops
    /// this count after its queue and its HTTP/2 flow-control window fill up.
    pub queued_total: AtomicU64,
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// After this cursor.
    After(i64),
    /// At the head of the log: live events only.
    Live,
}

/// Everything a stream needs from the server.
#[derive(Clone)]
pub struct StreamContext {
    /// The log to read, and its wake-ups.
    pub store: Arc<Store>,
    /// How streams behave.
    pub settings: StreamSettings,
    /// Counters over every stream.
    pub stats: Arc<StreamStats>,
    /// Ends every stream cleanly.
    pub shutdown: CancellationToken,
}

/// Checks the cursor and starts the stream's task. A cursor past the head of the log is
/// INVALID_ARGUMENT; one from before the pruned part is FAILED_PRECONDITION.
pub async fn open(
    context: StreamContext,
    caller: Caller,
    start: Start,
    filter: EventFilter,
) -> Result<mpsc::Receiver<Result<StreamItem, Error>>, Error> {
    // Listen before the first read, so that a commit between the read and the wait still
    // wakes the stream.
    let wakeups = context.store.wakeups().listen(&caller.account_id);
    let head = store::events::head(&context.store, &caller.account_id).await?;
    let position = match start {
        Start::Live => head,
        Start::After(cursor) => {
            if cursor > head {
                return Err(Error::invalid("after", format!("cursor {cursor} is ahead of the event log (at {head})")));
            }
            ensure_retained(&context.store, &caller, cursor).await?;
            cursor
        }
    };
    let (sender, receiver) = mpsc::channel(context.settings.queue_capacity);
    let stream = Stream { context, caller, filter, position, sender, wakeups, last_sent: Instant::now() };
    let span = tracing::info_span!("subscribe", account = %stream.caller.account_id, user = %stream.caller.user_id);
    tokio::spawn(stream.run(matches!(start, Start::Live)).instrument(span));
    Ok(receiver)
}

async fn ensure_retained(store: &Store, caller: &Caller, cursor: i64) -> Result<(), Error> {
    let pruned_through = store::events::pruned_through(store, &caller.account_id).await?;
    if cursor < pruned_through {
        return Err(Error::FailedPrecondition(format!(
            "cursor {cursor} is older than the event retention window (events up to {pruned_through} were pruned): \
             resync with the unary API, then subscribe without a cursor"
        )));
    }
    Ok(())
}

struct Stream {
    context: StreamContext,
    caller: Caller,
    filter: EventFilter,
    position: i64,
    sender: mpsc::Sender<Result<StreamItem, Error>>,
    wakeups: Wakeups,
    /// When the client was last sent something: heartbeats fill silences.
    last_sent: Instant,
}

impl Stream {
    async fn run(mut self, live: bool) {
        self.context.stats.active.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = self.pump(live).await {
            tracing::debug!(error = %err, "stream ended with an error");
            // Behind whatever the client has not read yet; given up if it leaves or the
            // server stops.
            tokio::select! {
                _ = self.sender.send(Err(err)) => {}
                () = self.context.shutdown.cancelled() => {}
            }
        }
        self.context.stats.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Runs until the client leaves (Ok), the server shuts down (Ok) or reading fails.
    async fn pump(&mut self, live: bool) -> Result<(), Error> {
        // A live stream announces its position at once; a resumed one once it has caught up,
        // so that a client can tell the replay is over.
        if live && !self.heartbeat().await {
            return Ok(());
        }
        let mut announced = live;
        let mut authenticated_at = Instant::now();
        loop {
            // A stream outlives the call that opened it: its key may be revoked or its user's
            // role changed since. Check again before reading, at most once a second.
            if authenticated_at.elapsed() >= REAUTHENTICATE_AFTER {
                self.caller = store::users::reauthenticate(&self.context.store, &self.caller.key_id).await?;
                authenticated_at = Instant::now();
            }
            if !self.catch_up().await? {
                return Ok(());
            }
            if !announced {
                if !self.heartbeat().await {
                    return Ok(());
                }
                announced = true;
            }
            // Wait for news, a heartbeat's time, or the end.
            let heartbeat_due = self.last_sent + self.context.settings.heartbeat_interval;
            tokio::select! {
                _ = self.wakeups.next() => {}
                _ = tokio::time::sleep(self.context.settings.poll_interval) => {}
                _ = tokio::time::sleep_until(heartbeat_due) => {
                    if !self.heartbeat().await {
                        return Ok(());
                    }
                }
                () = self.context.shutdown.cancelled() => return Ok(()),
                _ = self.sender.closed() => return Ok(()),
            }
        }
    }

    /// Delivers everything the log holds after the position, batch by batch. False when
    /// the client left or the server is shutting down.
    async fn catch_up(&mut self) -> Result<bool, Error> {
        let batch_size = self.context.settings.batch_size;
        loop {
            let from = self.position;
            let batch = store::events::read(&self.context.store, &self.caller, from, &self.filter, batch_size).await?;
            // Pruning may have run between the cursor check and this read.
            ensure_retained(&self.context.store, &self.caller, from).await?;
            let full = batch.events.len() as u64 == batch_size;
            for event in batch.events {
                if !self.deliver(StreamItem::Event(Box::new(event))).await {
                    return Ok(false);
                }
            }
            self.position = batch.position;
            if !full {
                return Ok(true);
            }
        }
    }

    /// Sends the stream's position. False when the client left or the server is stopping.
    async fn heartbeat(&mut self) -> bool {
        let position = self.position;
        self.deliver(StreamItem::Heartbeat { position }).await
    }

    /// Queues one item for the client, waiting while the queue is full. False when the
    /// client left or the server is shutting down.
    async fn deliver(&mut self, item: StreamItem) -> bool {
        let sent = tokio::select! {
            sent = self.sender.send(Ok(item)) => sent.is_ok(),
            () = self.context.shutdown.cancelled() => false,
        };
        if sent {
            self.last_sent = Instant::now();
            self.context.stats.queued_total.fetch_add(1, Ordering::Relaxed);
        }
        let queued = self.context.settings.queue_capacity - self.sender.capacity();
        self.context.stats.peak_queued.fetch_max(queued, Ordering::Relaxed);
        sent
    }
}
