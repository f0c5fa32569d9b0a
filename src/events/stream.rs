//! One `Subscribe` stream: every visible event after a cursor, then live ones, with no gap
//! and no duplicate. Replay reads the log; live events come from the account's feed
//! (`feed.rs`), which reads each span of the log once for every stream of the account. Both
//! are spans of the one log in position order, so the stream only has to keep its position:
//! it takes from a feed batch what lies after it, and reads the log itself when a batch
//! starts beyond it (it fell behind). Each event is judged in memory by
//! `Audience::admits`, with the caller's membership followed from the events themselves
//! and the caller's key re-checked (from the key cache) before every batch. Signals
//! (typing, presence; `signals.rs`) come between events, live only, at the stream's
//! position; while the stream is open its caller counts as online (`presence.rs`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::Poll,
    time::Duration,
};

use tokio::{
    sync::{broadcast, mpsc},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    feed::{FeedBatch, Feeds, Received, Subscription},
    presence::{Online, PresenceTracker},
    signals::{Signal, SignalKind, Signals},
    sleep_until_some,
};
use crate::{
    domain::{
        Caller, Credential, Error,
        events::{Event, EventFilter, EventKind, EventPayload, LoggedEvent, Membership, Narrowing, Position},
        now_micros,
    },
    store::{self, Store, credentials::Generation},
};

/// The longest a stream delivers signals without checking its key again.
const KEY_RECHECK: Duration = store::credentials::SHARED_FILE_MAX_AGE;

/// What a stream sends.
#[derive(Debug)]
pub enum StreamItem {
    /// An event the caller may see.
    Event(Box<Event>),
    /// No change; the stream's position, safe to resume from.
    Heartbeat {
        /// The cursor to resume after.
        position: Position,
    },
    /// The stream ends with this error. Boxed, like events, so that a stream's queue of
    /// idle slots stays small.
    End(Box<Error>),
    /// The server's shutdown ended the stream, after everything queued before it: not the
    /// end of the events, so the client resumes from its last cursor (on another replica,
    /// or on this one once it is back).
    ShuttingDown,
}

/// How streams behave; from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Sent on a stream idle this long.
    pub heartbeat_interval: Duration,
    /// Events read from the log at a time, when catching up.
    pub batch_size: u64,
    /// Events queued for a stream's client at most. What a slow subscriber can make the
    /// server hold: this queue, the batch being delivered, and its place in its account's
    /// feed, which keeps at most `feed::BACKLOG` batches for every stream of the account
    /// together.
    pub queue_capacity: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self { heartbeat_interval: Duration::from_secs(15), batch_size: 200, queue_capacity: 32 }
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
    /// After this position.
    After(Position),
    /// After the account's event with this number: a cursor handed out before events had
    /// positions (when the log numbered each account's events 1, 2, 3…).
    AfterNumber(i64),
    /// At the head of the log: live events only.
    Live,
}

/// Everything a stream needs from the server.
#[derive(Clone)]
pub struct StreamContext {
    /// The log to read when catching up.
    pub store: Arc<Store>,
    /// The live events of each account.
    pub feeds: Arc<Feeds>,
    /// How streams behave.
    pub settings: StreamSettings,
    /// Counters over every stream.
    pub stats: Arc<StreamStats>,
    /// Typing and presence, live only.
    pub signals: Arc<Signals>,
    /// Who is online, from the streams open.
    pub presence: PresenceTracker,
    /// Ends every stream, which then tells its client the server is shutting down.
    pub shutdown: CancellationToken,
}

/// Checks the cursor and starts the stream's task; what it hands over, for the client. A
/// cursor past the head of the log is INVALID_ARGUMENT; one from before the pruned part is
/// FAILED_PRECONDITION.
pub async fn open(
    context: StreamContext,
    caller: Caller,
    start: Start,
    filter: EventFilter,
) -> Result<impl futures::Stream<Item = StreamItem> + Send + 'static, Error> {
    // Join the feed before the first read, so that what commits in between reaches the
    // stream one way or the other.
    let subscription = context.feeds.subscribe(&caller.account_id);
    let signals = context.signals.subscribe(&caller.account_id);
    if matches!(start, Start::Live) {
        store::events::settle(&context.store, Duration::from_secs(1)).await?;
    }
    let head = store::events::head(&context.store, &caller.account_id).await?;
    let position = match start {
        Start::Live => head,
        Start::After(cursor) => cursor,
        Start::AfterNumber(number) => numbered(&context.store, &caller, number).await?,
    };
    // A cursor of a transaction still running would be a position no stream gave out.
    if position > head {
        return Err(Error::invalid("after", "the cursor is ahead of the event log"));
    }
    // The head is never older than what was pruned: only a resumed stream must check.
    if !matches!(start, Start::Live) {
        ensure_retained(&context.store, &caller, position).await?;
    }
    let membership = membership_of(&context.store, &caller).await?;
    let (sender, receiver) = mpsc::channel(context.settings.queue_capacity);
    let online = context.presence.opened(&caller.account_id, &caller.user_id);
    let checked = (context.store.credentials().generation(), Instant::now());
    let stream = Stream {
        signals,
        checked,
        _online: online,
        context,
        caller,
        filter,
        position,
        sender,
        subscription,
        membership,
        opened_at: head,
        last_sent: Instant::now(),
    };
    let shutdown = stream.context.shutdown.clone();
    let span = tracing::info_span!("subscribe", account = %stream.caller.account_id, user = %stream.caller.user_id);
    tokio::spawn(stream.run(matches!(start, Start::Live)).instrument(span));
    Ok(handed_over(receiver, shutdown))
}

/// What the stream's task queued, then [`StreamItem::ShuttingDown`] when the task stopped
/// for the server's shutdown. The task stops only for that, for an error (which it queues
/// as [`StreamItem::End`], the client's last item), or because the client left (then
/// nobody reads this): so a queue that ends during shutdown was cut by it. Told here,
/// behind the queue, rather than queued by the task: the queue may be full, and a client
/// that reads slowly still gets everything handed over before the cut.
fn handed_over(
    mut receiver: mpsc::Receiver<StreamItem>,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = StreamItem> + Send + 'static {
    let mut ended = false;
    futures::stream::poll_fn(move |cx| {
        if ended {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(receiver.poll_recv(cx));
        if item.is_none() {
            ended = true;
            return Poll::Ready(shutdown.is_cancelled().then_some(StreamItem::ShuttingDown));
        }
        Poll::Ready(item)
    })
}

/// What the caller takes part in: what a member may see, and for everyone whose typing
/// and presence it is told (staff see every conversation, but are told of those only
/// where they take part).
async fn membership_of(store: &Store, caller: &Caller) -> Result<Membership, Error> {
    store::participants::membership(store, &caller.account_id, &caller.user_id).await
}

/// FAILED_PRECONDITION: the cursor lies before what pruning left.
fn pruned_away() -> Error {
    Error::FailedPrecondition(
        "the cursor is older than the event retention window (its events were pruned): \
         resync with the unary API, then subscribe without a cursor"
            .into(),
    )
}

async fn ensure_retained(store: &Store, caller: &Caller, cursor: Position) -> Result<(), Error> {
    if cursor < store::events::pruned(store, &caller.account_id).await?.through {
        return Err(pruned_away());
    }
    Ok(())
}

/// Where a cursor from before positions (an account number) resumes: after the event it
/// names. Numbers after every numbered event name nothing that was handed out.
async fn numbered(store: &Store, caller: &Caller, number: i64) -> Result<Position, Error> {
    let pruned = store::events::pruned(store, &caller.account_id).await?;
    if number < pruned.through_number {
        return Err(pruned_away());
    }
    if let Some(position) = store::events::numbered(store, &caller.account_id, number).await? {
        return Ok(position);
    }
    // Nothing numbered is left at or after the cursor. If anything was pruned since
    // positions came, what the cursor named may be gone with it: resync.
    if pruned.through > Position::START {
        return Err(pruned_away());
    }
    // Otherwise it named the start, or the last number when pruning took everything up to
    // it (a heartbeat's): every event left comes after it.
    if number == 0 || number == pruned.through_number {
        return Ok(Position::START);
    }
    Err(Error::invalid("after", "the cursor is ahead of the event log"))
}

struct Stream {
    context: StreamContext,
    caller: Caller,
    filter: EventFilter,
    /// Every event up to here was delivered or filtered out.
    position: Position,
    sender: mpsc::Sender<StreamItem>,
    subscription: Subscription,
    /// The conversations a member takes part in: as of `opened_at`, then followed.
    membership: Membership,
    /// The head of the log when the stream opened, before its membership was loaded.
    opened_at: Position,
    /// When the client was last sent something: heartbeats fill silences.
    last_sent: Instant,
    /// The account's typing and presence signals.
    signals: broadcast::Receiver<Arc<Signal>>,
    /// The caller counts as online while this lives.
    _online: Online,
    /// When the caller's key was last checked: the key cache's generation then, and the
    /// time (see `consider_signal`).
    checked: (Generation, Instant),
}

impl Stream {
    async fn run(mut self, live: bool) {
        let stats = Arc::clone(&self.context.stats);
        stats.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("missive_streams_open").increment(1);
        if let Err(err) = self.pump(live).await {
            tracing::debug!(error = %err, "stream ended with an error");
            // Behind whatever the client has not read yet; given up if it leaves or the
            // server stops.
            tokio::select! {
                _ = self.sender.send(StreamItem::End(Box::new(err))) => {}
                () = self.context.shutdown.cancelled() => {}
            }
        }
        // Closed (presence told, the queue's end handed over) before it stops counting as
        // open: whoever sees the count drop knows the rest has happened.
        drop(self);
        stats.active.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("missive_streams_open").decrement(1);
    }

    /// Runs until the client leaves (Ok), the server shuts down (Ok) or reading fails.
    async fn pump(&mut self, live: bool) -> Result<(), Error> {
        // A live stream announces its position at once; a resumed one once it has caught up,
        // so that a client can tell the replay is over.
        if live && !self.heartbeat().await {
            return Ok(());
        }
        // A live stream starts at the head it read after joining the feed: everything
        // after it arrives through the feed (a batch past its position catches up), so
        // there is nothing to read first.
        if !live && !Box::pin(self.catch_up()).await? {
            return Ok(());
        }
        if !live && !self.heartbeat().await {
            return Ok(());
        }
        loop {
            let heartbeat_due = self.last_sent + self.context.settings.heartbeat_interval;
            let token_expiry = self.token_expiry();
            let more = tokio::select! {
                received = self.subscription.next() => {
                    if let Received::Batch(batch) = &received
                        && batch.unannounced
                        && !batch.events.is_empty()
                    {
                        // Not the key cache, which a revoke's notification may not have
                        // reached yet (see `FeedBatch::unannounced`).
                        self.context.store.credentials().forget_user(&self.caller.user_id);
                    }
                    // The reads are boxed, here and below: an idle stream's task then holds
                    // only what waiting needs, not the largest query's state.
                    Box::pin(self.recheck_caller()).await?;
                    match received {
                        Received::Batch(batch) => Box::pin(self.take(&batch)).await?,
                        Received::Lost => Box::pin(self.catch_up()).await?,
                    }
                }
                _ = tokio::time::sleep_until(heartbeat_due) => {
                    Box::pin(self.recheck_caller()).await?;
                    self.heartbeat().await
                }
                // A stream opened with a user token ends when the token does (the re-check
                // fails): the client mints a new one and resumes from its cursor.
                _ = sleep_until_some(token_expiry) => {
                    Box::pin(self.recheck_caller()).await?;
                    true
                }
                signal = next_signal(&mut self.signals) => Box::pin(self.consider_signal(&signal)).await?,
                () = self.context.shutdown.cancelled() => false,
                _ = self.sender.closed() => false,
            };
            if !more {
                return Ok(());
            }
        }
    }

    /// When the caller's user token expires, if it holds one.
    fn token_expiry(&self) -> Option<Instant> {
        let Credential::UserToken(grant) = &self.caller.credential else {
            return None;
        };
        let left = u64::try_from(grant.expire_time.saturating_sub(now_micros())).unwrap_or(0);
        Some(Instant::now() + Duration::from_micros(left))
    }

    /// The caller as its key acts now (UNAUTHENTICATED once revoked); a member's
    /// membership is reloaded when its role changed. A stream outlives the call that opened
    /// it, so this runs before every batch it delivers; the key cache makes it cheap.
    async fn recheck_caller(&mut self) -> Result<(), Error> {
        self.checked = (self.context.store.credentials().generation(), Instant::now());
        let now = store::users::reauthenticate(&self.context.store, &self.caller).await?;
        if now.role != self.caller.role {
            self.membership = membership_of(&self.context.store, &now).await?;
        }
        self.caller = now;
        Ok(())
    }

    /// Delivers what a feed batch holds after the position, reading the log first when the
    /// batch starts beyond it. False when the client left or the server is shutting down.
    async fn take(&mut self, batch: &FeedBatch) -> Result<bool, Error> {
        if batch.after > self.position && !Box::pin(self.catch_up()).await? {
            return Ok(false);
        }
        let position = self.position;
        for logged in batch.events.iter().filter(|logged| logged.event.position > position) {
            if !self.consider(logged).await {
                return Ok(false);
            }
        }
        self.position = self.position.max(batch.through);
        Ok(true)
    }

    /// Delivers everything the log holds after the position, read by this stream itself.
    /// False when the client left or the server is shutting down.
    async fn catch_up(&mut self) -> Result<bool, Error> {
        let (store, batch_size) = (Arc::clone(&self.context.store), self.context.settings.batch_size);
        loop {
            let from = self.position;
            let narrowing = Narrowing::for_viewer(&self.caller, &self.filter);
            let batch = store::events::read(&store, &self.caller.account_id, from, batch_size, &narrowing).await?;
            // Pruning may have run between the cursor check and this read.
            ensure_retained(&store, &self.caller, from).await?;
            // After the read, not before: a revoke and a message committed between a check
            // and the read would let the message through. This replica hears its own
            // revokes at commit; another replica's by the NOTIFY sent at that commit, so a
            // read racing that NOTIFY's arrival is the one window left (issue 12).
            let role = self.caller.role;
            Box::pin(self.recheck_caller()).await?;
            if self.caller.role != role {
                // Read with the old role's narrowing: read again with the new one.
                continue;
            }
            let full = batch.events.len() as u64 == batch_size;
            for logged in &batch.events {
                if !self.consider(logged).await {
                    return Ok(false);
                }
            }
            self.position = self.position.max(batch.position);
            if !full {
                return Ok(true);
            }
        }
    }

    /// Follows what the event changed of the caller's membership and delivers it if the
    /// caller may see it and asked for it. False when the client left or the server is
    /// shutting down.
    async fn consider(&mut self, logged: &LoggedEvent) -> bool {
        let event = &logged.event;
        // Membership was loaded as of `opened_at`: events up to there are judged by it, as
        // replays always were; later ones move it.
        if event.position > self.opened_at {
            self.membership.follow(&self.caller.user_id, event);
        }
        let takes_part = self.membership.takes_part(event.conversation_id.as_deref());
        if logged.audience.admits(&self.caller, takes_part)
            && self.filter.selects(event, &self.caller)
            && !self.deliver(StreamItem::Event(Box::new(event.clone().seen_by(&self.caller)))).await
        {
            return false;
        }
        self.position = event.position;
        true
    }

    /// Delivers a signal at the stream's position if it is for this stream (see
    /// [`Stream::signal_event`]). False when the client left or the server is shutting
    /// down. Like every event, a signal goes only to a key that still works
    /// (UNAUTHENTICATED once revoked): before one is delivered, the key is checked again
    /// when any key changed since its last check (the cache's generation moved: a revoke, a
    /// role change, a deactivation here or, on PostgreSQL, on another replica), and at
    /// least every second (processes sharing a SQLite file hear nothing of each other's
    /// revokes). Signals are frequent and live only, and a check of a user token reads the
    /// database: they are not worth one each, and those not for this stream none at all.
    async fn consider_signal(&mut self, signal: &Signal) -> Result<bool, Error> {
        let Some(mut event) = self.signal_event(signal) else { return Ok(true) };
        let (generation, at) = self.checked;
        if generation != self.context.store.credentials().generation() || at.elapsed() >= KEY_RECHECK {
            Box::pin(self.recheck_caller()).await?;
            // A changed role may have changed what the caller may see.
            let Some(still) = self.signal_event(signal) else { return Ok(true) };
            event = still;
        }
        Ok(self.deliver(StreamItem::Event(Box::new(event))).await)
    }

    /// The event `signal` makes for this stream, if it concerns the caller (it takes part
    /// in the conversation someone types in; it shares a conversation with the user whose
    /// presence changed) and the caller asked for it; never the caller's own.
    fn signal_event(&self, signal: &Signal) -> Option<Event> {
        let (kind, user_id, conversation_id, payload, visible) = match &signal.kind {
            SignalKind::Typing { conversation_id, user_id, typing } => (
                EventKind::Typing,
                user_id,
                Some(conversation_id.clone()),
                EventPayload::Typing { user_id: user_id.clone(), typing: *typing },
                self.membership.takes_part(Some(conversation_id)),
            ),
            SignalKind::Presence { user_id, presence } => (
                EventKind::PresenceChanged,
                user_id,
                None,
                EventPayload::Presence { user_id: user_id.clone(), presence: *presence },
                signal.membership.as_ref().is_some_and(|theirs| theirs.shares_with(&self.membership)),
            ),
        };
        if !visible || *user_id == self.caller.user_id {
            return None;
        }
        let event = Event {
            position: self.position,
            kind,
            create_time: now_micros(),
            actor_id: user_id.clone(),
            conversation_id,
            payload,
        };
        self.filter.selects(&event, &self.caller).then_some(event)
    }

    /// Sends the stream's position. False when the client left or the server is stopping.
    async fn heartbeat(&mut self) -> bool {
        let position = self.position;
        self.deliver(StreamItem::Heartbeat { position }).await
    }

    /// Queues one item for the client, waiting while the queue is full. False when the
    /// client left or the server is shutting down.
    async fn deliver(&mut self, item: StreamItem) -> bool {
        let is_event = matches!(item, StreamItem::Event(_));
        let sent = tokio::select! {
            sent = self.sender.send(item) => sent.is_ok(),
            () = self.context.shutdown.cancelled() => false,
        };
        if sent {
            self.last_sent = Instant::now();
            self.context.stats.queued_total.fetch_add(1, Ordering::Relaxed);
            if is_event {
                metrics::counter!("missive_events_delivered_total").increment(1);
            }
        }
        let queued = self.context.settings.queue_capacity - self.sender.capacity();
        self.context.stats.peak_queued.fetch_max(queued, Ordering::Relaxed);
        sent
    }
}

/// The next signal; signals a slow stream missed are skipped (they are live only).
async fn next_signal(signals: &mut broadcast::Receiver<Arc<Signal>>) -> Arc<Signal> {
    loop {
        match signals.recv().await {
            Ok(signal) => return signal,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            // The sender lives in `Signals` for as long as this receiver does.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
