//! Scheduled messages: what happens to a send with a schedule time after it was stored
//! (`pending`): its sender reads, changes, cancels or sends it at once, and at its time the
//! delivery job (`jobs::delivery`) sends it exactly as a send at that moment would: the
//! next sequence, unread counts, MESSAGE_CREATED, under the id it was given when scheduled.
//!
//! Exactly once: a delivery is a unit that re-reads the row, inserts the message and
//! deletes the row in one transaction, so a message is either waiting or sent, never both.
//! A delivery locks the message's conversation, then claims the row (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL; SQLite's writers hold the file), so of two replicas that found
//! the same due message the second finds it gone; the messages table's primary key is the
//! backstop.
//!
//! A delivery that has become impossible (the conversation deleted, the sender gone from
//! it or no longer allowed to send it) leaves the message FAILED with the reason, for the
//! sender to see and dismiss.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{ExprTrait, LockBehavior, LockType},
};

use super::{
    Store, UnitFuture, WriteTx,
    access::{self, ConversationRecord},
    columns,
    door::Target,
    entities::{conversation, scheduled_attachment, scheduled_message, user},
    files, messages, notifications,
    pending::{self, emit, load_scheduled},
    relays,
};
use crate::domain::{
    Caller, Credential, Error, Micros, View,
    events::EventKind,
    messages::{
        Message, MessageLimits, MessageState, Rendered, ScheduledPatch, may_dispatch, may_edit, sees_scheduled,
    },
    notifications::{Notice, NotificationKind},
    now_micros,
    paging::Page,
    views::MessageView,
};

/// Most due messages one pass of the delivery job starts at once.
const DUE_BATCH: u64 = 256;

/// A scheduled, failed or canceled message, or, once delivered, the message it became: its
/// sender's, or staff's; NOT_FOUND for anyone else.
pub async fn get(store: &Store, caller: &Caller, id: &str) -> Result<MessageView, Error> {
    match pending::view(&store.db, caller, id).await {
        Err(Error::NotFound { .. }) => match sent_as(store, caller, id).await? {
            Some(sent) => Ok(sent),
            None => Err(Error::not_found("scheduled message", id)),
        },
        found => found,
    }
}

/// The message a scheduled one became when delivered, if `caller` sent it or is staff.
async fn sent_as(store: &Store, caller: &Caller, id: &str) -> Result<Option<MessageView>, Error> {
    let sent = match messages::get(store, caller, id, View::Basic).await {
        Ok(sent) => sent,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    let scheduled_by_caller = sent.message.schedule_time.is_some() && sees_scheduled(caller, &sent.message.sender_id);
    Ok(scheduled_by_caller.then_some(sent))
}

/// A waiting message `caller` may act on as `may` allows (the sender, or also staff), as
/// it is once its conversation is held and then its row locked: a delivery, a cancel or
/// another change that committed meanwhile is in it, and none can start until this unit
/// ends. One delivered meanwhile is FAILED_PRECONDITION (a cancel that raced the delivery,
/// a second "send now"), once the caller is known to be allowed.
struct Waiting {
    caller: Caller,
    id: String,
    may: fn(&Caller, &str) -> Result<(), Error>,
}

impl Waiting {
    fn new(caller: &Caller, id: &str, may: fn(&Caller, &str) -> Result<(), Error>) -> Self {
        Self { caller: caller.clone(), id: id.to_owned(), may }
    }

    /// FAILED_PRECONDITION for a message the caller may act on that was sent already,
    /// NOT_FOUND for anything else.
    async fn already_sent(&self, tx: &WriteTx) -> Error {
        match access::load_message(tx.conn(), &self.caller, &self.id).await {
            Ok((row, _)) if row.schedule_time.is_some() && sees_scheduled(&self.caller, &row.sender_id) => {
                (self.may)(&self.caller, &row.sender_id)
                    .err()
                    .unwrap_or_else(|| Error::FailedPrecondition(format!("message {} was already sent", self.id)))
            }
            Ok(_) | Err(Error::NotFound { .. }) => Error::not_found("scheduled message", &self.id),
            Err(other) => other,
        }
    }
}

impl Target for Waiting {
    type Held = scheduled_message::Model;

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, scheduled_message::Model> {
        Box::pin(async move {
            let found = match load_scheduled(tx.conn(), &self.caller, &self.id).await {
                Ok(found) => found,
                Err(Error::NotFound { .. }) => return Err(self.already_sent(tx).await),
                Err(other) => return Err(other),
            };
            (self.may)(&self.caller, &found.sender_id)?;
            tx.hold_conversation(&found.conversation_id).await?;
            scheduled_message::Entity::find_by_id(self.id.clone())
                .filter(access::of_account::<scheduled_message::Entity>(tx.account_id()))
                .lock_exclusive()
                .one(tx.conn())
                .await?
                .ok_or_else(|| Error::FailedPrecondition(format!("message {} was already sent", self.id)))
        })
    }
}

/// The caller's scheduled and failed messages, soonest first; with a conversation, only
/// those there, and for staff everyone's there. (A member's own are its own business, also
/// in a conversation it has left: no visibility check, nothing else is listed.)
pub async fn list(
    store: &Store,
    caller: &Caller,
    conversation_id: Option<&str>,
    page: &Page<(Micros, String)>,
) -> Result<(Vec<MessageView>, String), Error> {
    let mut find = scheduled_message::Entity::find()
        .filter(scheduled_message::Column::AccountId.eq(&caller.account_id))
        .filter(scheduled_message::Column::State.ne(MessageState::Canceled.as_str()));
    match conversation_id {
        Some(conversation_id) => {
            find = find.filter(scheduled_message::Column::ConversationId.eq(conversation_id));
            if !caller.is_staff() {
                find = find.filter(scheduled_message::Column::SenderId.eq(&caller.user_id));
            }
        }
        None => find = find.filter(scheduled_message::Column::SenderId.eq(&caller.user_id)),
    }
    let (time, id) = (scheduled_message::Column::ScheduleTime, scheduled_message::Column::Id);
    if let Some((after_time, after_id)) = &page.after {
        find = find.filter(time.gt(*after_time).or(time.eq(*after_time).and(id.gt(after_id))));
    }
    let rows = find.order_by_asc(time).order_by_asc(id).limit(page.fetch_limit()).all(&store.db).await?;
    if let Some(conversation_id) = conversation_id {
        let found_nothing = rows.is_empty() && page.after.is_none();
        access::ensure_filter_visible(&store.db, caller, conversation_id, found_nothing).await?;
    }
    let (rows, next_page_token) = page.finish(rows, |row| (row.schedule_time, row.id.clone()));
    let messages = pending::present_all(&store.db, rows).await?.into_iter().map(MessageView::from).collect();
    Ok((messages, next_page_token))
}

/// Changes a waiting message before its time. The sender only.
pub async fn update(
    store: &Store,
    caller: &Caller,
    id: String,
    patch: ScheduledPatch,
    limits: MessageLimits,
) -> Result<MessageView, Error> {
    store
        .write_in(caller, Waiting::new(caller, &id, may_edit), move |tx, _, row| {
            Box::pin(async move {
                ensure_waiting(&row)?;
                patch.validate(columns::stored("message kind", &row.kind)?, limits)?;
                let mut active: scheduled_message::ActiveModel = row.into();
                if let Some(content) = patch.message.content {
                    active.content = Set(content);
                }
                if let Some(attributes) = &patch.message.content_attributes {
                    active.content_attributes = Set(columns::value_to_column(attributes));
                }
                if let Some(metadata) = &patch.message.metadata {
                    active.metadata = Set(columns::metadata_to_column(metadata));
                }
                if let Some(schedule_time) = patch.schedule_time {
                    active.schedule_time = Set(schedule_time);
                }
                active.edit_time = Set(Some(tx.now));
                active.update_time = Set(tx.now);
                let message =
                    pending::present(tx.conn(), access::save(tx.conn(), tx.account_id(), active).await?).await?;
                emit(tx, EventKind::ScheduledMessageUpdated, &message);
                Ok(MessageView::from(message))
            })
        })
        .await
}

/// Cancels a waiting message, or dismisses a failed one. The sender or staff. It stays, as
/// CANCELED and without its files, so that a retry of the send that scheduled it (same
/// request id) returns it rather than scheduling it again; canceling again changes nothing.
pub async fn cancel(store: &Store, caller: &Caller, id: String) -> Result<MessageView, Error> {
    store
        .write_in(caller, Waiting::new(caller, &id, may_dispatch), move |tx, _, row| {
            Box::pin(async move {
                if row.state == MessageState::Canceled.as_str() {
                    return pending::present(tx.conn(), row).await.map(MessageView::from);
                }
                let of_message = || {
                    Condition::all()
                        .add(access::of_account::<scheduled_attachment::Entity>(&row.account_id))
                        .add(scheduled_attachment::Column::ScheduledMessageId.eq(&row.id))
                };
                let digests: Vec<String> = scheduled_attachment::Entity::find()
                    .select_only()
                    .column(scheduled_attachment::Column::Sha256)
                    .filter(of_message())
                    .into_tuple()
                    .all(tx.conn())
                    .await?;
                scheduled_attachment::Entity::delete_many().filter(of_message()).exec(tx.conn()).await?;
                files::forget_unnamed(tx, digests).await?;
                let mut active: scheduled_message::ActiveModel = row.into();
                active.state = Set(MessageState::Canceled.as_str().to_owned());
                active.update_time = Set(tx.now);
                let message =
                    pending::present(tx.conn(), access::save(tx.conn(), tx.account_id(), active).await?).await?;
                emit(tx, EventKind::ScheduledMessageCanceled, &message);
                Ok(MessageView::from(message))
            })
        })
        .await
}

/// Deletes canceled messages canceled before `cutoff` (the event retention window: by then
/// no client still retries the send that scheduled them), each account in a unit of its
/// own. How many went.
pub async fn prune_canceled(store: &Store, cutoff: Micros) -> Result<u64, Error> {
    let canceled = || {
        Condition::all()
            .add(scheduled_message::Column::State.eq(MessageState::Canceled.as_str()))
            .add(scheduled_message::Column::UpdateTime.lt(cutoff))
    };
    let accounts: Vec<String> = scheduled_message::Entity::find()
        .select_only()
        .column(scheduled_message::Column::AccountId)
        .distinct()
        .filter(canceled())
        .into_tuple()
        .all(&store.db)
        .await?;
    let mut pruned = 0;
    for account_id in accounts {
        let condition = canceled().add(scheduled_message::Column::AccountId.eq(account_id.clone()));
        pruned += store
            .write_as(&account_id, "", move |tx| {
                Box::pin(async move {
                    Ok(scheduled_message::Entity::delete_many().filter(condition).exec(tx.conn()).await?.rows_affected)
                })
            })
            .await?;
    }
    Ok(pruned)
}

/// Fails the waiting messages that a change makes impossible to deliver, in that change's
/// unit, and tells their senders: all of a conversation being deleted (`sender_id` None),
/// or a member's own in a conversation it leaves.
pub(super) async fn strand(
    tx: &mut WriteTx,
    conversation_id: &str,
    sender_id: Option<&str>,
    reason: &str,
) -> Result<(), Error> {
    let mut find = scheduled_message::Entity::find()
        .filter(access::of_account::<scheduled_message::Entity>(tx.account_id()))
        .filter(scheduled_message::Column::ConversationId.eq(conversation_id))
        .filter(scheduled_message::Column::State.eq(MessageState::Scheduled.as_str()));
    if let Some(sender_id) = sender_id {
        find = find.filter(scheduled_message::Column::SenderId.eq(sender_id));
    }
    for row in find.all(tx.conn()).await? {
        fail(tx, row, reason.to_owned()).await?;
    }
    Ok(())
}

/// Why a message in a deleted conversation is not delivered.
pub(super) fn deleted_reason(conversation_id: &str) -> String {
    format!("conversation {conversation_id} was deleted")
}

/// Why a message of a sender who left its conversation is not delivered.
pub(super) fn left_reason(conversation_id: &str) -> String {
    format!("the sender no longer takes part in conversation {conversation_id}")
}

/// Delivers a waiting message at once: the message as sent, or as FAILED with the reason
/// when it can no longer be sent. The sender or staff.
pub async fn send_now(store: &Store, caller: &Caller, id: String) -> Result<MessageView, Error> {
    store
        .write_in(caller, Waiting::new(caller, &id, may_dispatch), move |tx, _, row| {
            Box::pin(async move {
                ensure_waiting(&row)?;
                deliver(tx, row).await.map(MessageView::from)
            })
        })
        .await
}

/// A message found due, as read by column name: what its delivery unit needs to start.
#[derive(Debug, FromQueryResult)]
struct DueMessage {
    /// The waiting message's id.
    id: String,
    /// Its account.
    account_id: String,
    /// Its sender, whom the delivery acts as.
    sender_id: String,
}

/// Delivers every message due by now, each in a unit of its account, and returns how many
/// were delivered (or failed); messages another replica delivered meanwhile are skipped.
pub async fn deliver_due(store: &Store) -> Result<usize, Error> {
    let mut handled = 0;
    loop {
        let due: Vec<DueMessage> = scheduled_message::Entity::find()
            .select_only()
            .columns([
                scheduled_message::Column::Id,
                scheduled_message::Column::AccountId,
                scheduled_message::Column::SenderId,
            ])
            .filter(scheduled_message::Column::State.eq(MessageState::Scheduled.as_str()))
            .filter(scheduled_message::Column::ScheduleTime.lte(now_micros()))
            .order_by_asc(scheduled_message::Column::ScheduleTime)
            .limit(DUE_BATCH)
            .into_model::<DueMessage>()
            .all(&store.db)
            .await?;
        let found = due.len() as u64;
        // Submitted together, so that the writer commits them in as few batches as it can.
        let deliveries = due.into_iter().map(|DueMessage { id, account_id, sender_id }| async move {
            store.write_in_as(&account_id, &sender_id, Due(id), |tx, row| Box::pin(deliver_if_due(tx, row))).await
        });
        let (mut delivered, mut failed) = (0, 0);
        for result in futures::future::join_all(deliveries).await {
            match result {
                Ok(done) => delivered += usize::from(done),
                Err(err) => {
                    failed += 1;
                    tracing::warn!(error = %err, "a scheduled message could not be delivered; will retry");
                }
            }
        }
        handled += delivered;
        // A full batch means more may be due; but a batch that failed, or that others
        // delivered meanwhile, waits for the next pass rather than spin on the same rows.
        if found < DUE_BATCH || failed > 0 || delivered == 0 {
            return Ok(handled);
        }
    }
}

/// A message found due, to deliver: its conversation held first, then its row claimed
/// (`FOR UPDATE SKIP LOCKED` on PostgreSQL): of replicas that found the same message due,
/// one delivers it and the others find it gone once it commits. `None` when it is gone.
struct Due(String);

impl Target for Due {
    type Held = Option<scheduled_message::Model>;

    fn hold(self, tx: &mut WriteTx) -> UnitFuture<'_, Self::Held> {
        Box::pin(async move {
            let of_account = || access::of_account::<scheduled_message::Entity>(tx.account_id());
            let found =
                scheduled_message::Entity::find_by_id(self.0.clone()).filter(of_account()).one(tx.conn()).await?;
            let Some(found) = found else { return Ok(None) };
            tx.hold_conversation(&found.conversation_id).await?;
            Ok(scheduled_message::Entity::find_by_id(self.0)
                .filter(access::of_account::<scheduled_message::Entity>(tx.account_id()))
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .one(tx.conn())
                .await?)
        })
    }
}

/// The unit of one due delivery: false when the message is no longer waiting or due (sent
/// by another replica, canceled, or moved later since it was found).
async fn deliver_if_due(tx: &mut WriteTx, row: Option<scheduled_message::Model>) -> Result<bool, Error> {
    match row {
        Some(row) if row.state == MessageState::Scheduled.as_str() && row.schedule_time <= tx.now => {
            deliver(tx, row).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Sends a waiting message as if sent now by its sender, or fails it with the reason it
/// cannot be sent.
async fn deliver(tx: &mut WriteTx, row: scheduled_message::Model) -> Result<Message, Error> {
    match prepare(tx.conn(), &row).await? {
        Ok((sender, mut record, new)) => {
            scheduled_message::Entity::delete_by_id(row.id.clone())
                .filter(access::of_account::<scheduled_message::Entity>(&row.account_id))
                .exec(tx.conn())
                .await?;
            messages::insert(tx, &sender, &mut record, new, messages::Notify::Readers).await
        }
        Err(reason) => fail(tx, row, reason).await,
    }
}

/// Who sends a waiting message now, where, and what: or why it can no longer be sent.
async fn prepare<C: ConnectionTrait>(
    conn: &C,
    row: &scheduled_message::Model,
) -> Result<Result<(Caller, ConversationRecord, Rendered), String>, Error> {
    let sender = user::Entity::find_by_id(row.sender_id.clone())
        .filter(access::of_account::<user::Entity>(&row.account_id))
        .one(conn)
        .await?;
    let Some(sender) = sender else {
        return Ok(Err(format!("the sender {} no longer exists", row.sender_id)));
    };
    if sender.deactivate_time.is_some() {
        return Ok(Err(format!("the sender {} is deactivated", row.sender_id)));
    }
    let sender = Caller {
        account_id: row.account_id.clone(),
        role: columns::stored("role", &sender.role)?,
        user_id: sender.id,
        credential: Credential::System,
    };
    let record = match access::load_visible(conn, &sender, &row.conversation_id).await {
        Ok(record) => record,
        Err(Error::NotFound { .. }) => {
            let exists = conversation::Entity::find_by_id(row.conversation_id.clone())
                .filter(access::of_account::<conversation::Entity>(&row.account_id))
                .one(conn)
                .await?
                .is_some();
            return Ok(Err(if exists {
                format!("the sender can no longer write in conversation {}", row.conversation_id)
            } else {
                deleted_reason(&row.conversation_id)
            }));
        }
        Err(other) => return Err(other),
    };
    let new = pending::to_deliver(conn, row).await?;
    if let Err(Error::PermissionDenied(why)) = new.fields().authorize(&sender) {
        return Ok(Err(format!("the sender may no longer send it: {why}")));
    }
    // Suppressed since it was scheduled: it fails, rather than being retried forever.
    if let Some(envelope) = &new.fields().envelope {
        let direction = new.fields().direction_for(&sender);
        match relays::ensure_not_suppressed(conn, &row.account_id, envelope, direction).await {
            Err(Error::FailedPrecondition(why)) => return Ok(Err(why)),
            checked => checked?,
        }
    }
    Ok(Ok((sender, record, new)))
}

/// Marks a waiting message FAILED with `reason` and tells its sender.
async fn fail(tx: &mut WriteTx, row: scheduled_message::Model, reason: String) -> Result<Message, Error> {
    let mut active: scheduled_message::ActiveModel = row.into();
    active.state = Set(MessageState::Failed.as_str().to_owned());
    active.failure_reason = Set(Some(reason));
    active.update_time = Set(tx.now);
    let message = pending::present(tx.conn(), access::save(tx.conn(), tx.account_id(), active).await?).await?;
    emit(tx, EventKind::ScheduledMessageFailed, &message);
    let notice = Notice {
        user_id: message.sender_id.clone(),
        actor_id: String::new(),
        kind: NotificationKind::ScheduledMessageFailed,
        conversation_id: Some(message.conversation_id.clone()),
        message_id: Some(message.id.clone()),
        report_id: None,
        summary: format!("A scheduled message could not be sent: {}", message.failure_reason.as_deref().unwrap_or("")),
    };
    notifications::notify(tx, vec![notice]).await?;
    Ok(message)
}

/// FAILED_PRECONDITION unless the message is still waiting.
fn ensure_waiting(row: &scheduled_message::Model) -> Result<(), Error> {
    if row.state == MessageState::Scheduled.as_str() {
        return Ok(());
    }
    Err(Error::FailedPrecondition(if row.state == MessageState::Canceled.as_str() {
        format!("message {} was canceled and will not be sent", row.id)
    } else {
        format!(
            "message {} failed ({}) and will not be sent: cancel it to dismiss it",
            row.id,
            row.failure_reason.as_deref().unwrap_or("no reason recorded")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{messages::MessageDraft, users::Role},
        store::{
            accounts, conversations,
            testing::{caller, conversation},
        },
    };

    fn later(content: &str, after_micros: Micros) -> crate::domain::messages::NewMessage {
        let draft = MessageDraft { schedule_time: Some(now_micros() + after_micros), ..MessageDraft::text(content) };
        draft.validate(MessageLimits { max_attachment_bytes: 1, schedule_horizon: i64::MAX }).unwrap()
    }

    /// A canceled message stays for retries, then goes with the retention window.
    #[tokio::test]
    async fn canceled_messages_are_pruned_after_the_window() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let seller = caller(&store, &account_id, Role::Member).await;
        let id = conversation(&store, &seller, &[]).await;
        let waiting = messages::send(&store, &seller, id.clone(), later("a", 3_600_000_000)).await.unwrap();
        let kept = messages::send(&store, &seller, id, later("b", 3_600_000_000)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let before_cancel = now_micros();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let canceled = cancel(&store, &seller, waiting.message.id.clone()).await.unwrap();
        assert_eq!(canceled.message.state, MessageState::Canceled);

        assert_eq!(prune_canceled(&store, before_cancel).await.unwrap(), 0, "canceled after the cutoff");
        assert_eq!(prune_canceled(&store, now_micros() + 1).await.unwrap(), 1);
        assert!(matches!(get(&store, &seller, &waiting.message.id).await, Err(Error::NotFound { .. })));
        assert_eq!(get(&store, &seller, &kept.message.id).await.unwrap().message.state, MessageState::Scheduled);
    }

    /// Two deliveries of one due message (two replicas' job passes) send it once.
    #[tokio::test]
    async fn a_due_message_is_delivered_once_and_keeps_its_id() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let buyer = caller(&store, &account_id, Role::Member).await;
        let seller = caller(&store, &account_id, Role::Member).await;
        let id = conversation(&store, &buyer, &[&seller]).await;
        let scheduled = messages::send(&store, &buyer, id.clone(), later("soon", 50_000)).await.unwrap();
        assert_eq!(scheduled.message.state, MessageState::Scheduled);
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;

        let first = store.write_in_as(&account_id, &buyer.user_id, Due(scheduled.message.id.clone()), |tx, row| {
            Box::pin(deliver_if_due(tx, row))
        });
        let second = store.write_in_as(&account_id, &buyer.user_id, Due(scheduled.message.id.clone()), |tx, row| {
            Box::pin(deliver_if_due(tx, row))
        });
        let (first, second) = tokio::join!(first, second);

        assert_eq!([first.unwrap(), second.unwrap()].iter().filter(|delivered| **delivered).count(), 1);
        let sent = messages::get(&store, &seller, &scheduled.message.id, View::Basic).await.unwrap();
        assert_eq!((sent.message.sequence, sent.message.state), (1, MessageState::Sent));
        assert_eq!(sent.message.schedule_time, scheduled.message.schedule_time);
        let view = conversations::get(&store, &seller, &id, View::Basic).await.unwrap();
        assert_eq!(view.viewer.unwrap().unread_count, 1);
        assert_eq!(deliver_due(&store).await.unwrap(), 0, "nothing is left to deliver");
    }
}
