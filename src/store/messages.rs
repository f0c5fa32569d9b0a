//! Messages: send (with attachments and unread counters in the same unit), read back as a
//! viewer sees them, edit, delete to a tombstone, fetch attachment bytes.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
    sea_query::{Expr, ExprTrait, UnionType},
};

use super::{
    Listing, Store, WriteTx,
    access::{self, ConversationRecord},
    body::Body,
    columns,
    door::{InConversation, OfMessage},
    entities::{attachment, conversation, message, message_read},
    files, handling, notifications,
    pending::{self, RequestedMessage},
    relays, templates, unread, views,
};
use crate::domain::{
    Caller, Error, View,
    conversations::Mute,
    events::{Audience, EventKind, EventPayload, NewEvent},
    handling::reopens as reopens_handled,
    idempotency::RequestKey,
    messages::{
        Attachment, AttachmentContent, Direction, Message, MessageDraft, MessageKind, MessagePatch, MessageQuery,
        NewAttachment, NewMessage, Rendered, may_delete, may_edit, sees_notes,
    },
    notifications::Notice,
    paging::Page,
    unread::MessageFacts,
    views::MessageView,
};

/// Whom a new message notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notify {
    /// Those it counts as unread for, unless they muted the conversation.
    Readers,
    /// Nobody: an import of history is not news.
    Nobody,
}

/// What a send did: a new message (sent or scheduled), or the one an earlier send with the
/// same request id made (read back after the unit).
enum Sent {
    New(Box<Message>),
    Earlier(Earlier),
}

/// A message an earlier send with the same request id made.
pub(super) enum Earlier {
    /// In its conversation.
    Sent(String),
    /// Still scheduled (or failed).
    Scheduled(String),
}

/// Sends a message, or schedules it when it has a schedule time. A retried send with the
/// same request id returns the first message.
pub async fn send(
    store: &Store,
    caller: &Caller,
    conversation_id: String,
    new: NewMessage,
) -> Result<MessageView, Error> {
    new.fields().authorize(caller)?;
    // The request id first: it holds a retry of the same request until this one has
    // committed, so that the retry finds what this one sent (also when the retry names
    // another conversation, or one it may no longer see).
    let sent = match new.fields().request_id.clone() {
        Some(key) => {
            let target = InConversation::new(caller, &conversation_id).claiming("message", &key.id);
            store
                .write_in(caller, target, move |tx, caller, record| {
                    Box::pin(async move {
                        if let Some(found) = find_earlier(tx.conn(), caller, &key.id).await? {
                            return found.answer(&conversation_id, &key);
                        }
                        send_new(tx, caller, record?, new).await
                    })
                })
                .await?
        }
        None => {
            let target = InConversation::new(caller, &conversation_id);
            store
                .write_in(caller, target, move |tx, caller, record| Box::pin(send_new(tx, caller, record, new)))
                .await?
        }
    };
    match sent {
        Sent::New(message) => Ok(MessageView::from(*message)),
        Sent::Earlier(Earlier::Sent(id)) => get(store, caller, &id, View::Basic).await,
        // Delivered since, perhaps: then it is in its conversation.
        Sent::Earlier(Earlier::Scheduled(id)) => match pending::view(&store.db, caller, &id).await {
            Err(Error::NotFound { .. }) => get(store, caller, &id, View::Basic).await,
            found => found,
        },
    }
}

impl Earlier {
    fn id(&self) -> &str {
        match self {
            Earlier::Sent(id) | Earlier::Scheduled(id) => id,
        }
    }
}

/// The unit's part of a send that is not a retry: render, then schedule or insert.
async fn send_new(
    tx: &mut WriteTx,
    caller: &Caller,
    mut record: ConversationRecord,
    new: NewMessage,
) -> Result<Sent, Error> {
    new.check_schedule_time("schedule_time")?;
    let new = templates::render_message(tx.conn(), caller, new).await?;
    let message = if new.fields().schedule_time.is_some() {
        // Refused now rather than failed at its time (delivery checks again: `scheduled`).
        if let Some(envelope) = &new.fields().envelope {
            relays::ensure_not_suppressed(tx.conn(), &caller.account_id, envelope, new.fields().direction_for(caller))
                .await?;
        }
        pending::schedule(tx, caller, &record, new).await?
    } else {
        insert(tx, caller, &mut record, new, Notify::Readers).await?
    };
    Ok(Sent::New(Box::new(message)))
}

/// Imports messages into one conversation in one unit, each written exactly as a send
/// writes it (sequence, attachments, counters, event) but notifying nobody (history is
/// not news), for seeding benchmarks and bulk imports. Imports are not idempotent: a
/// message with a request id is refused.
pub async fn import(
    store: &Store,
    caller: &Caller,
    conversation_id: String,
    messages: Vec<NewMessage>,
) -> Result<usize, Error> {
    for (index, new) in messages.iter().enumerate() {
        new.fields().authorize(caller).map_err(|err| err.within(&format!("messages[{index}].")))?;
        if new.fields().request_id.is_some() {
            return Err(Error::invalid(format!("messages[{index}].request_id"), "imports carry no request ids"));
        }
        if new.fields().schedule_time.is_some() {
            return Err(Error::invalid(format!("messages[{index}].schedule_time"), "imports are sent now"));
        }
    }
    store
        .write_in(caller, InConversation::new(caller, &conversation_id), move |tx, caller, mut record| {
            Box::pin(async move {
                let count = messages.len();
                for (index, new) in messages.into_iter().enumerate() {
                    let new = templates::render_message(tx.conn(), caller, new)
                        .await
                        .map_err(|err| err.within(&format!("messages[{index}].")))?;
                    insert(tx, caller, &mut record, new, Notify::Nobody).await?;
                }
                Ok(count)
            })
        })
        .await
}

/// Refuses a request id the caller already sent a message with; `field` names it.
pub(super) async fn ensure_unused_request_id(
    tx: &WriteTx,
    caller: &Caller,
    request_id: &str,
    field: &str,
) -> Result<(), Error> {
    match find_earlier(tx.conn(), caller, request_id).await? {
        Some(found) => Err(Error::invalid(field, format!("was already used for message {}", found.earlier.id()))),
        None => Ok(()),
    }
}

/// What a sender's request id sent or scheduled before.
struct EarlierSend {
    earlier: Earlier,
    conversation_id: String,
    /// The fingerprint of the request that sent it.
    fingerprint: Option<String>,
}

impl EarlierSend {
    /// The answer to a retry naming `conversation_id`: the earlier message, unless the
    /// retry is not one (another conversation, another request).
    fn answer(self, conversation_id: &str, key: &RequestKey) -> Result<Sent, Error> {
        if self.conversation_id != conversation_id {
            return Err(Error::invalid(
                "request_id",
                format!("was already used for message {} in another conversation", self.earlier.id()),
            ));
        }
        let what = format!("message {}", self.earlier.id());
        key.check_retry("request_id", &what, self.fingerprint.as_deref())?;
        Ok(Sent::Earlier(self.earlier))
    }
}

/// The message `sender` sent or scheduled with this request id, if any: one statement over
/// both tables (a sent message wins; a delivered scheduled message is one).
async fn find_earlier<C: ConnectionTrait>(
    conn: &C,
    sender: &Caller,
    request_id: &str,
) -> Result<Option<EarlierSend>, Error> {
    let sent = message::Entity::find()
        .select_only()
        .column_as(Expr::val(0i64), "scheduled")
        .columns([message::Column::Id, message::Column::ConversationId, message::Column::RequestFingerprint])
        .filter(access::of_account::<message::Entity>(&sender.account_id))
        .filter(message::Column::SenderId.eq(&sender.user_id))
        .filter(message::Column::SendRequestId.eq(request_id))
        .into_query();
    let mut both = pending::by_request(sender, request_id);
    both.union(UnionType::All, sent);
    let found = RequestedMessage::find_by_statement(conn.get_database_backend().build(&both)).all(conn).await?;
    Ok(found.into_iter().min_by_key(|row| row.scheduled).map(|row| EarlierSend {
        earlier: if row.scheduled == 0 { Earlier::Sent(row.id) } else { Earlier::Scheduled(row.id) },
        conversation_id: row.conversation_id,
        fingerprint: row.request_fingerprint,
    }))
}

/// Inserts a message into a conversation the caller may write to, with its attachments,
/// the conversation's summary and every participant's unread counter, and emits its
/// event. `record` is kept up to date. Idempotency is the caller's to check first.
pub(super) async fn insert(
    tx: &mut WriteTx,
    caller: &Caller,
    record: &mut ConversationRecord,
    new: Rendered,
    notify: Notify,
) -> Result<Message, Error> {
    let direction = new.fields().direction_for(caller);
    let (id, attachment_ids, mut draft) = new.into_stored();
    let files = std::mem::take(&mut draft.attachments);
    draft.attachments = files::resolve_forwards(tx.conn(), caller, draft.kind, files).await?;
    if let Some(envelope) = &draft.envelope {
        if let Some(external_id) = &envelope.external_id {
            relays::ensure_external_id_free(tx.conn(), &caller.account_id, envelope.channel, external_id).await?;
        }
        relays::ensure_not_suppressed(tx.conn(), &caller.account_id, envelope, direction).await?;
    }
    let row = insert_row(tx, caller, &record.row, id, &draft, direction).await?;
    if let Some(data) = draft.raw_payload.clone() {
        relays::keep_raw_payload(tx, &row.id, data).await?;
    }
    let attachments = insert_attachments(tx, &row, draft.attachments, attachment_ids).await?;
    let reopens = record.row.handle_time.is_some() && reopens_handled(direction, row.private);
    advance_summary(tx, record, &row, reopens).await?;
    if reopens {
        handling::emit_conversation(tx, record)?;
    }
    let staff = access::staff_held(tx.conn(), tx.account_id(), record.participant_ids()).await?;
    let facts = MessageFacts { sender_id: &row.sender_id, private: row.private, deleted: false };
    let readers = unread::readers_of(facts, &record.participants, &staff);
    unread::adjust(tx, &record.row.id, &readers, 1).await?;
    for participant in record.participants.iter_mut().filter(|p| readers.contains(&p.user_id)) {
        participant.unread_count += 1;
    }
    let receipts = views::receipts(&record.participants, &row, &staff, &views::Reads::new());
    let message = views::message_from_row(row, attachments, receipts)?;
    emit(tx, EventKind::MessageCreated, &message);
    if notify == Notify::Nobody {
        return Ok(message);
    }
    // Whoever it counts as unread for is told, unless they muted the conversation.
    let notices = record
        .participants
        .iter()
        .filter(|p| readers.contains(&p.user_id) && Mute::in_force(p.muted, p.mute_expire_time, tx.now).is_none())
        .map(|p| Notice::new_message(&p.user_id, &message))
        .collect();
    notifications::notify(tx, notices).await?;
    Ok(message)
}

/// The message row. A public message takes the next public sequence; a private note keeps
/// the sequence of the message before it and takes the next note sequence, so that
/// members, who never see notes, see no gaps that would tell them notes exist.
async fn insert_row(
    tx: &WriteTx,
    caller: &Caller,
    conversation: &conversation::Model,
    id: String,
    draft: &MessageDraft,
    direction: Direction,
) -> Result<message::Model, Error> {
    let (sequence, note_sequence) = if draft.private {
        (conversation.message_sequence, conversation.note_sequence + 1)
    } else {
        (conversation.message_sequence + 1, 0)
    };
    let row = message::ActiveModel {
        id: Set(id),
        account_id: Set(caller.account_id.clone()),
        conversation_id: Set(conversation.id.clone()),
        sequence: Set(sequence),
        note_sequence: Set(note_sequence),
        sender_id: Set(caller.user_id.clone()),
        create_time: Set(tx.now),
        edit_time: Set(None),
        delete_time: Set(None),
        external_id: Set(draft.envelope.as_ref().and_then(|envelope| envelope.external_id.clone())),
        schedule_time: Set(draft.schedule_time),
        delivery_state: Set(relays::first_delivery(&draft.envelope, direction, draft.private)),
        delivery_update_time: Set(None),
        ..Default::default()
    };
    Ok(Body::of_draft(draft, direction).into_message(row).insert(tx.conn()).await?)
}

/// The message's files, each under its id in `ids` (by position).
async fn insert_attachments(
    tx: &WriteTx,
    message: &message::Model,
    uploads: Vec<NewAttachment>,
    ids: Vec<String>,
) -> Result<Vec<Attachment>, Error> {
    let attachments: Vec<Attachment> = uploads.iter().zip(ids).map(|(upload, id)| upload.describe(id)).collect();
    files::hold_named(tx, &attachments).await?;
    for (position, (upload, described)) in uploads.into_iter().zip(&attachments).enumerate() {
        attachment::ActiveModel {
            id: Set(described.id.clone()),
            account_id: Set(message.account_id.clone()),
            message_id: Set(message.id.clone()),
            position: Set(position as i64),
            filename: Set(described.filename.clone()),
            media_type: Set(described.media_type.clone()),
            size_bytes: Set(described.size_bytes),
            sha256: Set(described.sha256.clone()),
            url: Set(described.url.clone()),
        }
        .insert(tx.conn())
        .await?;
        files::keep(tx, upload, described).await?;
    }
    Ok(attachments)
}

/// The conversation's sequences, update times and last messages after `message`, and its
/// handled mark cleared when the message reopens it.
async fn advance_summary(
    tx: &WriteTx,
    record: &mut ConversationRecord,
    message: &message::Model,
    reopens: bool,
) -> Result<(), Error> {
    let mut summary: conversation::ActiveModel = record.row.clone().into();
    if reopens {
        summary.handle_time = Set(None);
        summary.handler_id = Set(None);
    }
    summary.message_sequence = Set(message.sequence);
    summary.note_sequence = Set(message.note_sequence);
    summary.update_time = Set(tx.now);
    summary.last_message_id = Set(Some(message.id.clone()));
    if message.private {
        summary.note_count = Set(record.row.note_count + 1);
    } else {
        summary.public_update_time = Set(tx.now);
        summary.last_public_message_id = Set(Some(message.id.clone()));
    }
    record.row = access::save(tx.conn(), tx.account_id(), summary).await?;
    Ok(())
}

/// A message event: private notes to staff only.
fn emit(tx: &mut WriteTx, kind: EventKind, message: &Message) {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(message.conversation_id.clone()),
        audience: Audience::for_message(message.private),
        payload: EventPayload::Message(Box::new(message.clone())),
    });
}

/// A message as `caller` sees it, or NOT_FOUND.
pub async fn get(store: &Store, caller: &Caller, id: &str, view: View) -> Result<MessageView, Error> {
    let (row, record) = access::load_message(&store.db, caller, id).await?;
    let mut messages = views::present_messages(&store.db, caller, vec![row], record, view).await?;
    messages.pop().ok_or_else(|| Error::not_found("message", id))
}

/// Lists a conversation's messages in sequence order, tombstones included, private notes
/// for staff only.
pub async fn list(
    store: &Store,
    caller: &Caller,
    query: &MessageQuery,
    page: &Page<(i64, i64)>,
    view: View,
) -> Result<Listing<MessageView>, Error> {
    let record = access::load_visible(&store.db, caller, &query.conversation_id).await?;
    let mut find = message::Entity::find()
        .filter(access::of_account::<message::Entity>(&caller.account_id))
        .filter(message::Column::ConversationId.eq(&query.conversation_id));
    find = find.filter(access::visible_messages(caller.is_staff()));
    if let Some(before) = query.before {
        find = find.filter(message::Column::CreateTime.lt(before));
    }
    if let Some(after) = query.after {
        find = find.filter(message::Column::CreateTime.gt(after));
    }
    let total = match (query.before, query.after) {
        // Public messages are numbered 1..n without gaps, tombstones included.
        (None, None) if sees_notes(caller.is_staff()) => (record.row.message_sequence + record.row.note_count) as u64,
        (None, None) => record.row.message_sequence as u64,
        // A time window is counted, within the conversation's index.
        _ => find.clone().count(&store.db).await?,
    };
    let (sequence, note) = (message::Column::Sequence, message::Column::NoteSequence);
    if let Some((after_sequence, after_note)) = page.after {
        find = find.filter(if query.newest_first {
            sequence.lt(after_sequence).or(sequence.eq(after_sequence).and(note.lt(after_note)))
        } else {
            sequence.gt(after_sequence).or(sequence.eq(after_sequence).and(note.gt(after_note)))
        });
    }
    find = if query.newest_first {
        find.order_by_desc(sequence).order_by_desc(note)
    } else {
        find.order_by_asc(sequence).order_by_asc(note)
    };
    let rows = find.limit(page.fetch_limit()).all(&store.db).await?;
    let (rows, next_page_token) = page.finish(rows, |row| (row.sequence, row.note_sequence));
    let items = views::present_messages(&store.db, caller, rows, record, view).await?;
    Ok(Listing { items, next_page_token, total })
}

/// Edits the caller's own message.
pub async fn update(store: &Store, caller: &Caller, id: String, patch: MessagePatch) -> Result<MessageView, Error> {
    store
        .write_in(caller, OfMessage::new(caller, &id), move |tx, caller, (row, record)| {
            Box::pin(async move {
                may_edit(caller, &row.sender_id)?;
                if row.delete_time.is_some() {
                    return Err(Error::FailedPrecondition(format!("message {id} is deleted and cannot be edited")));
                }
                patch.validate(columns::stored::<MessageKind>("message kind", &row.kind)?)?;
                let mut active: message::ActiveModel = row.into();
                if let Some(content) = patch.content {
                    active.content = Set(content);
                }
                if let Some(attributes) = &patch.content_attributes {
                    active.content_attributes = Set(columns::value_to_column(attributes));
                }
                if let Some(metadata) = &patch.metadata {
                    active.metadata = Set(columns::metadata_to_column(metadata));
                }
                active.edit_time = Set(Some(tx.now));
                let row = access::save(tx.conn(), tx.account_id(), active).await?;
                let message = views::assemble_one(tx.conn(), row, &record).await?;
                emit(tx, EventKind::MessageUpdated, &message);
                notifications::restate(tx, &message).await?;
                Ok(MessageView::from(message))
            })
        })
        .await
}

/// Deletes a message to a tombstone: content, attributes and attachments go, the row and
/// its place in the conversation stay. The sender or staff; deleting again changes nothing.
pub async fn delete(store: &Store, caller: &Caller, id: String) -> Result<MessageView, Error> {
    store
        .write_in(caller, OfMessage::new(caller, &id), move |tx, caller, (row, record)| {
            Box::pin(async move {
                may_delete(caller, &row.sender_id)?;
                if row.delete_time.is_none() {
                    tombstone(tx, row, &record).await
                } else {
                    views::assemble_one(tx.conn(), row, &record).await
                }
                .map(MessageView::from)
            })
        })
        .await
}

/// Deletes a live message to a tombstone and emits its event: whoever had not read it
/// stops counting it.
pub(super) async fn tombstone(
    tx: &mut WriteTx,
    row: message::Model,
    record: &ConversationRecord,
) -> Result<Message, Error> {
    let read_by: Vec<String> = message_read::Entity::find()
        .select_only()
        .column(message_read::Column::UserId)
        .filter(access::of_account::<message_read::Entity>(&row.account_id))
        .filter(message_read::Column::MessageId.eq(&row.id))
        .into_tuple()
        .all(tx.conn())
        .await?;
    let staff = access::staff_held(tx.conn(), tx.account_id(), record.participant_ids()).await?;
    let facts = MessageFacts { sender_id: &row.sender_id, private: row.private, deleted: row.delete_time.is_some() };
    let mut unread_by = unread::readers_of(facts, &record.participants, &staff);
    unread_by.retain(|user_id| !read_by.contains(user_id));
    unread::adjust(tx, &row.conversation_id, &unread_by, -1).await?;
    let digests: Vec<String> = attachment::Entity::find()
        .select_only()
        .column(attachment::Column::Sha256)
        .filter(access::of_account::<attachment::Entity>(&row.account_id))
        .filter(attachment::Column::MessageId.eq(&row.id))
        .into_tuple()
        .all(tx.conn())
        .await?;
    attachment::Entity::delete_many()
        .filter(access::of_account::<attachment::Entity>(&row.account_id))
        .filter(attachment::Column::MessageId.eq(&row.id))
        .exec(tx.conn())
        .await?;
    files::forget_unnamed(tx, digests).await?;
    relays::forget_raw_payload(tx, &row.id).await?;
    let mut active: message::ActiveModel = row.into();
    active.content = Set(String::new());
    active.content_attributes = Set(None);
    active.delete_time = Set(Some(tx.now));
    let row = access::save(tx.conn(), tx.account_id(), active).await?;
    let message = views::assemble_one(tx.conn(), row, record).await?;
    emit(tx, EventKind::MessageDeleted, &message);
    notifications::restate(tx, &message).await?;
    Ok(message)
}

/// An attachment's description, its message's id and its bytes (none for a link).
pub async fn attachment(store: &Store, caller: &Caller, id: &str) -> Result<AttachmentContent, Error> {
    let row = files::readable_row(&store.db, caller, id).await?;
    let data = match row.url {
        Some(_) => Vec::new(),
        None => files::bytes(&store.db, &caller.account_id, &row.sha256).await?,
    };
    let message_id = row.message_id.clone();
    Ok(AttachmentContent { attachment: views::attachment_from_row(row), message_id, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{messages::MessageLimits, users::Role},
        store::{
            accounts, conversations,
            testing::{caller, conversation},
            unread,
        },
    };

    fn text(content: &str) -> NewMessage {
        MessageDraft::text(content).validate(MessageLimits { max_attachment_bytes: 1, schedule_horizon: 0 }).unwrap()
    }

    #[tokio::test]
    async fn an_import_writes_what_sends_would() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let buyer = caller(&store, &account_id, Role::Member).await;
        let seller = caller(&store, &account_id, Role::Member).await;
        let id = conversation(&store, &buyer, &[&seller]).await;

        let imported = import(&store, &buyer, id.clone(), vec![text("one"), text("two"), text("three")]).await;
        assert_eq!(imported.unwrap(), 3);
        let sent = send(&store, &buyer, id.clone(), text("four")).await.unwrap();

        assert_eq!(sent.message.sequence, 4, "imports take sequences like sends");
        assert_eq!(
            conversations::get(&store, &seller, &id, View::Basic).await.unwrap().viewer.unwrap().unread_count,
            4
        );
        assert!(unread::drift(&store, &account_id).await.unwrap().is_empty());
        let mut replayed = MessageDraft::text("again");
        replayed.request_id = Some(RequestKey::stored("r1".into(), None));
        let replayed = replayed.validate(MessageLimits { max_attachment_bytes: 1, schedule_horizon: 0 }).unwrap();
        assert!(matches!(import(&store, &buyer, id, vec![replayed]).await, Err(Error::InvalidArgument(_))));
    }

    /// A database from before the note counter gets it filled in when migrated.
    #[tokio::test]
    async fn the_note_counter_is_filled_in_for_existing_notes() {
        use migrations::MigratorTrait;

        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = accounts::create(&store, "a").await.unwrap();
        let agent = caller(&store, &account_id, Role::Agent).await;
        let id = conversation(&store, &agent, &[]).await;
        let mut note = MessageDraft::text("a note");
        note.private = true;
        let note = note.validate(MessageLimits { max_attachment_bytes: 1, schedule_horizon: 0 }).unwrap();
        send(&store, &agent, id.clone(), note.clone()).await.unwrap();
        send(&store, &agent, id.clone(), text("public")).await.unwrap();
        send(&store, &agent, id.clone(), note).await.unwrap();
        let notes =
            async || conversation::Entity::find_by_id(id.clone()).one(&store.db).await.unwrap().unwrap().note_count;
        assert_eq!(notes().await, 2);

        migrations::Migrator::down(&store.db, Some(1)).await.unwrap();
        migrations::Migrator::up(&store.db, None).await.unwrap();

        assert_eq!(notes().await, 2);
    }
}
