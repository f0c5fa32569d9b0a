//! Messages: send (with attachments and unread counters in the same transaction), read
//! back as a viewer sees them, edit, delete to a tombstone, fetch attachment bytes.

use std::collections::{HashMap, HashSet};

use sea_orm::Condition;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use sha2::{Digest, Sha256};

use super::{
    Store, WriteTx,
    conversations::{Loaded, load_visible, staff_among},
    entities::{attachment, message, message_read, participant},
    find_in_account, json,
};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    ids,
    messages::{
        self as rules, Attachment, ContentType, Direction, Message, MessageKind, MessagePatch, MessageQuery,
        NewMessage, ReadReceipt,
    },
    paging::Page,
};

/// Inserts a message into a conversation the caller may write to, with its attachments,
/// the conversation's summary and every participant's unread counter, and appends the
/// event. `loaded` is kept up to date; `prefix` is the message's path in the request.
///
/// A public message takes the next public sequence; a private note keeps the sequence of
/// the message before it and takes the next note sequence, so that members, who never see
/// notes, see no gaps that would tell them notes exist.
pub(super) async fn insert_message(
    tx: &mut WriteTx<'_>,
    caller: &Caller,
    loaded: &mut Loaded,
    new: NewMessage,
    prefix: &str,
) -> Result<Message, Error> {
    if let Some(request_id) = &new.request_id
        && let Some(earlier) = find_sent(tx.conn(), &caller.user_id, request_id).await?
    {
        return Err(Error::invalid(
            format!("{prefix}request_id"),
            format!("was already used for message {}", earlier.id),
        ));
    }
    let direction = new.direction_for(caller);
    let new = new.into_parts();
    let (sequence, note_sequence) = if new.private {
        (loaded.row.message_sequence, loaded.row.note_sequence + 1)
    } else {
        (loaded.row.message_sequence + 1, 0)
    };
    let id = ids::new_id(ids::MESSAGE);
    let row = message::ActiveModel {
        id: Set(id.clone()),
        account_id: Set(caller.account_id.clone()),
        conversation_id: Set(loaded.row.id.clone()),
        sequence: Set(sequence),
        note_sequence: Set(note_sequence),
        sender_id: Set(caller.user_id.clone()),
        kind: Set(new.kind.as_str().to_owned()),
        content: Set(new.content.clone()),
        content_type: Set(new.content_type.as_str().to_owned()),
        content_attributes: Set(json::value_to_column(&new.content_attributes)),
        private: Set(new.private),
        direction: Set(direction.as_str().to_owned()),
        metadata: Set(json::metadata_to_column(&new.metadata)),
        send_request_id: Set(new.request_id.clone()),
        create_time: Set(tx.now),
        edit_time: Set(None),
        delete_time: Set(None),
    }
    .insert(tx.conn())
    .await?;

    let mut attachments = Vec::with_capacity(new.attachments.len());
    for (position, upload) in new.attachments.into_iter().enumerate() {
        let stored = attachment::ActiveModel {
            id: Set(ids::new_id(ids::ATTACHMENT)),
            account_id: Set(caller.account_id.clone()),
            message_id: Set(id.clone()),
            position: Set(position as i32),
            filename: Set(upload.filename),
            media_type: Set(upload.media_type),
            size_bytes: Set(upload.data.len() as i64),
            sha256: Set(hex::encode(Sha256::digest(&upload.data))),
            data: Set(upload.data),
        }
        .insert(tx.conn())
        .await?;
        attachments.push(attachment_from_row(
            stored.id,
            stored.filename,
            stored.media_type,
            stored.size_bytes,
            stored.sha256,
        ));
    }

    let mut summary: super::entities::conversation::ActiveModel = loaded.row.clone().into();
    summary.message_sequence = Set(sequence);
    summary.note_sequence = Set(note_sequence);
    summary.update_time = Set(tx.now);
    summary.last_message_id = Set(Some(id.clone()));
    if !new.private {
        summary.public_update_time = Set(tx.now);
        summary.last_public_message_id = Set(Some(id.clone()));
    }
    loaded.row = summary.update(tx.conn()).await?;

    let staff = staff_among(tx.conn(), loaded.members.iter().map(|m| m.user_id.clone()).collect()).await?;
    let readers: Vec<String> = loaded
        .members
        .iter()
        .filter(|m| rules::counts_for(&caller.user_id, new.private, false, &m.user_id, staff.contains(&m.user_id)))
        .map(|m| m.user_id.clone())
        .collect();
    adjust_unread(tx, &loaded.row.id, &readers, 1).await?;
    for member in loaded.members.iter_mut().filter(|m| readers.contains(&m.user_id)) {
        member.unread_count += 1;
    }

    let message = Message {
        id,
        account_id: caller.account_id.clone(),
        conversation_id: loaded.row.id.clone(),
        sequence,
        note_sequence,
        sender_id: caller.user_id.clone(),
        kind: new.kind,
        content: row.content,
        content_type: new.content_type,
        content_attributes: new.content_attributes,
        private: new.private,
        direction,
        attachments,
        metadata: new.metadata,
        create_time: tx.now,
        edit_time: None,
        delete_time: None,
        read_receipts: receipts(&loaded.members, &caller.user_id, new.private, &staff, &HashMap::new(), &row.id),
        sender: None,
        conversation: None,
    };
    emit_message(tx, EventKind::MessageCreated, &message);
    Ok(message)
}

/// The message `sender_id` sent with this request id, if any.
async fn find_sent<C: ConnectionTrait>(
    conn: &C,
    sender_id: &str,
    request_id: &str,
) -> Result<Option<message::Model>, Error> {
    Ok(message::Entity::find()
        .filter(message::Column::SenderId.eq(sender_id))
        .filter(message::Column::SendRequestId.eq(request_id))
        .one(conn)
        .await?)
}

/// Adds `delta` to the unread counters of `readers` in a conversation.
pub(super) async fn adjust_unread(
    tx: &WriteTx<'_>,
    conversation_id: &str,
    readers: &[String],
    delta: i64,
) -> Result<(), Error> {
    if readers.is_empty() {
        return Ok(());
    }
    participant::Entity::update_many()
        .col_expr(participant::Column::UnreadCount, Expr::col(participant::Column::UnreadCount).add(delta))
        .filter(participant::Column::ConversationId.eq(conversation_id))
        .filter(participant::Column::UserId.is_in(readers.to_vec()))
        .exec(tx.conn())
        .await?;
    Ok(())
}

fn emit_message(tx: &mut WriteTx<'_>, kind: EventKind, message: &Message) {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(message.conversation_id.clone()),
        audience: Audience { staff_only: message.private, ..Audience::default() },
        payload: EventPayload::Message(Box::new(message.clone())),
    });
}

fn attachment_from_row(
    id: String,
    filename: String,
    media_type: String,
    size_bytes: i64,
    sha256: String,
) -> Attachment {
    Attachment { id, filename, media_type, size_bytes, sha256 }
}

/// The read state of a message for each participant other than its sender who may see it.
fn receipts(
    members: &[participant::Model],
    sender_id: &str,
    private: bool,
    staff: &HashSet<String>,
    reads: &HashMap<(String, String), i64>,
    message_id: &str,
) -> Vec<ReadReceipt> {
    members
        .iter()
        .filter(|m| m.user_id != sender_id && (!private || staff.contains(&m.user_id)))
        .map(|m| ReadReceipt {
            user_id: m.user_id.clone(),
            read_time: reads.get(&(message_id.to_owned(), m.user_id.clone())).copied(),
        })
        .collect()
}

/// Turns message rows into domain messages with their attachments and read receipts.
/// `conversations` must hold the conversation of every row.
pub(super) async fn assemble<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<message::Model>,
    conversations: &[Loaded],
) -> Result<Vec<Message>, Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let attachment_rows: Vec<(String, String, String, String, i64, String)> = attachment::Entity::find()
        .select_only()
        .columns([
            attachment::Column::MessageId,
            attachment::Column::Id,
            attachment::Column::Filename,
            attachment::Column::MediaType,
            attachment::Column::SizeBytes,
            attachment::Column::Sha256,
        ])
        .filter(attachment::Column::MessageId.is_in(ids.clone()))
        .order_by_asc(attachment::Column::MessageId)
        .order_by_asc(attachment::Column::Position)
        .into_tuple()
        .all(conn)
        .await?;
    let mut attachments: HashMap<String, Vec<Attachment>> = HashMap::new();
    for (message_id, id, filename, media_type, size_bytes, sha256) in attachment_rows {
        attachments
            .entry(message_id)
            .or_default()
            .push(attachment_from_row(id, filename, media_type, size_bytes, sha256));
    }
    let reads: HashMap<(String, String), i64> = message_read::Entity::find()
        .filter(message_read::Column::MessageId.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| ((r.message_id, r.user_id), r.read_time))
        .collect();
    let staff = if rows.iter().any(|r| r.private) {
        staff_among(conn, conversations.iter().flat_map(|l| l.members.iter().map(|m| m.user_id.clone())).collect())
            .await?
    } else {
        HashSet::new()
    };
    let no_members = Vec::new();
    rows.into_iter()
        .map(|row| {
            let members = conversations
                .iter()
                .find(|l| l.row.id == row.conversation_id)
                .map(|l| &l.members)
                .unwrap_or(&no_members);
            Ok(Message {
                read_receipts: receipts(members, &row.sender_id, row.private, &staff, &reads, &row.id),
                attachments: attachments.remove(&row.id).unwrap_or_default(),
                kind: MessageKind::from_stored(&row.kind)?,
                content_type: ContentType::from_stored(&row.content_type)?,
                direction: Direction::from_stored(&row.direction)?,
                content_attributes: json::value_from_column(row.content_attributes.as_deref())?,
                metadata: json::metadata_from_column(&row.metadata)?,
                id: row.id,
                account_id: row.account_id,
                conversation_id: row.conversation_id,
                sequence: row.sequence,
                note_sequence: row.note_sequence,
                sender_id: row.sender_id,
                content: row.content,
                private: row.private,
                create_time: row.create_time,
                edit_time: row.edit_time,
                delete_time: row.delete_time,
                sender: None,
                conversation: None,
            })
        })
        .collect()
}

async fn assemble_one<C: ConnectionTrait>(conn: &C, row: message::Model, loaded: &Loaded) -> Result<Message, Error> {
    assemble(conn, vec![row], std::slice::from_ref(loaded))
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("assembling one message gave none".into()))
}

/// Reads a message `caller` may see, with its conversation: NOT_FOUND otherwise (a
/// member never learns that a private note exists).
async fn load_message<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<(message::Model, Loaded), Error> {
    let row = find_in_account::<message::Entity, _>(conn, "message", id, &caller.account_id, |m| &m.account_id).await?;
    let loaded = load_visible(conn, caller, &row.conversation_id).await.map_err(|err| match err {
        Error::NotFound { .. } => Error::not_found("message", id),
        other => other,
    })?;
    if row.private && !caller.is_staff() {
        return Err(Error::not_found("message", id));
    }
    Ok((row, loaded))
}

impl Store {
    /// One message row as `caller` sees it, or NOT_FOUND; `full` expands its sender and
    /// conversation.
    pub(super) async fn message_for(&self, caller: &Caller, row: message::Model, full: bool) -> Result<Message, Error> {
        self.get_message(caller, &row.id, full).await
    }

    async fn present_messages(
        &self,
        caller: &Caller,
        rows: Vec<message::Model>,
        loaded: Loaded,
        full: bool,
    ) -> Result<Vec<Message>, Error> {
        let mut messages = assemble(&self.db, rows, std::slice::from_ref(&loaded)).await?;
        if full {
            let senders = self.users_by_id(caller, messages.iter().map(|m| m.sender_id.clone()).collect()).await?;
            let conversation = self.present(caller, vec![loaded], true).await?.pop().map(Box::new);
            for message in &mut messages {
                message.sender = senders.get(&message.sender_id).cloned();
                message.conversation = conversation.clone();
            }
        }
        Ok(messages)
    }

    /// Sends a message. A retried send with the same request id returns the first message.
    pub async fn send_message(
        &self,
        caller: &Caller,
        conversation_id: &str,
        new: NewMessage,
    ) -> Result<Message, Error> {
        new.authorize(caller, "")?;
        let mut tx = self.write(caller).await?;
        if let Some(request_id) = &new.request_id
            && let Some(earlier) = find_sent(tx.conn(), &caller.user_id, request_id).await?
        {
            drop(tx);
            if earlier.conversation_id != conversation_id {
                return Err(Error::invalid(
                    "request_id",
                    format!("was already used for message {} in another conversation", earlier.id),
                ));
            }
            return self.message_for(caller, earlier, false).await;
        }
        let mut loaded = load_visible(tx.conn(), caller, conversation_id).await?;
        let message = insert_message(&mut tx, caller, &mut loaded, new, "").await?;
        tx.commit().await?;
        Ok(message)
    }

    pub async fn get_message(&self, caller: &Caller, id: &str, full: bool) -> Result<Message, Error> {
        let (row, loaded) = load_message(&self.db, caller, id).await?;
        let mut messages = self.present_messages(caller, vec![row], loaded, full).await?;
        messages.pop().ok_or_else(|| Error::not_found("message", id))
    }

    /// Lists a conversation's messages in sequence order, tombstones included, private
    /// notes for staff only. Returns the page, the next page token and the total.
    pub async fn list_messages(
        &self,
        caller: &Caller,
        query: &MessageQuery,
        page: &Page<(i64, i64)>,
        full: bool,
    ) -> Result<(Vec<Message>, String, u64), Error> {
        let loaded = load_visible(&self.db, caller, &query.conversation_id).await?;
        let mut find = message::Entity::find().filter(message::Column::ConversationId.eq(&query.conversation_id));
        if !caller.is_staff() {
            find = find.filter(message::Column::Private.eq(false));
        }
        if let Some(before) = query.before {
            find = find.filter(message::Column::CreateTime.lt(before));
        }
        if let Some(after) = query.after {
            find = find.filter(message::Column::CreateTime.gt(after));
        }
        let total = find.clone().count(&self.db).await?;
        if let Some((sequence, note_sequence)) = page.after {
            let (sequence_col, note_col) = (message::Column::Sequence, message::Column::NoteSequence);
            find = find.filter(if query.newest_first {
                Condition::any()
                    .add(sequence_col.lt(sequence))
                    .add(sequence_col.eq(sequence).and(note_col.lt(note_sequence)))
            } else {
                Condition::any()
                    .add(sequence_col.gt(sequence))
                    .add(sequence_col.eq(sequence).and(note_col.gt(note_sequence)))
            });
        }
        find = if query.newest_first {
            find.order_by_desc(message::Column::Sequence).order_by_desc(message::Column::NoteSequence)
        } else {
            find.order_by_asc(message::Column::Sequence).order_by_asc(message::Column::NoteSequence)
        };
        let rows = find.limit(page.fetch_limit()).all(&self.db).await?;
        let (rows, next) = page.finish(rows, |row| (row.sequence, row.note_sequence));
        let messages = self.present_messages(caller, rows, loaded, full).await?;
        Ok((messages, next, total))
    }

    /// Edits the caller's own message.
    pub async fn update_message(&self, caller: &Caller, id: &str, patch: MessagePatch) -> Result<Message, Error> {
        let mut tx = self.write(caller).await?;
        let (row, loaded) = load_message(tx.conn(), caller, id).await?;
        if row.sender_id != caller.user_id {
            return Err(Error::PermissionDenied("only the sender may edit a message".into()));
        }
        if row.delete_time.is_some() {
            return Err(Error::FailedPrecondition(format!("message {id} is deleted and cannot be edited")));
        }
        patch.validate(MessageKind::from_stored(&row.kind)?)?;
        let mut active: message::ActiveModel = row.into();
        if let Some(content) = patch.content {
            active.content = Set(content);
        }
        if let Some(attributes) = &patch.content_attributes {
            active.content_attributes = Set(json::value_to_column(attributes));
        }
        if let Some(metadata) = &patch.metadata {
            active.metadata = Set(json::metadata_to_column(metadata));
        }
        active.edit_time = Set(Some(tx.now));
        let row = active.update(tx.conn()).await?;
        let message = assemble_one(tx.conn(), row, &loaded).await?;
        emit_message(&mut tx, EventKind::MessageUpdated, &message);
        tx.commit().await?;
        Ok(message)
    }

    /// Deletes a message to a tombstone: content, attributes and attachments go, the row
    /// and its place in the conversation stay. The sender or staff.
    pub async fn delete_message(&self, caller: &Caller, id: &str) -> Result<Message, Error> {
        let mut tx = self.write(caller).await?;
        let (row, loaded) = load_message(tx.conn(), caller, id).await?;
        if row.sender_id != caller.user_id && !caller.is_staff() {
            return Err(Error::PermissionDenied("only the sender or staff may delete a message".into()));
        }
        if row.delete_time.is_some() {
            let message = assemble_one(tx.conn(), row, &loaded).await?;
            return Ok(message);
        }
        // Whoever had not read it stops counting it.
        let readers: HashSet<String> = message_read::Entity::find()
            .filter(message_read::Column::MessageId.eq(id))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(|r| r.user_id)
            .collect();
        let staff = staff_among(tx.conn(), loaded.members.iter().map(|m| m.user_id.clone()).collect()).await?;
        let unread_by: Vec<String> = loaded
            .members
            .iter()
            .filter(|m| rules::counts_for(&row.sender_id, row.private, false, &m.user_id, staff.contains(&m.user_id)))
            .filter(|m| !readers.contains(&m.user_id))
            .map(|m| m.user_id.clone())
            .collect();
        adjust_unread(&tx, &row.conversation_id, &unread_by, -1).await?;
        attachment::Entity::delete_many().filter(attachment::Column::MessageId.eq(id)).exec(tx.conn()).await?;
        let mut active: message::ActiveModel = row.into();
        active.content = Set(String::new());
        active.content_attributes = Set(None);
        active.delete_time = Set(Some(tx.now));
        let row = active.update(tx.conn()).await?;
        let message = assemble_one(tx.conn(), row, &loaded).await?;
        emit_message(&mut tx, EventKind::MessageDeleted, &message);
        tx.commit().await?;
        Ok(message)
    }

    /// An attachment's description, its message's id and its bytes.
    pub async fn get_attachment(&self, caller: &Caller, id: &str) -> Result<(Attachment, String, Vec<u8>), Error> {
        let row =
            find_in_account::<attachment::Entity, _>(&self.db, "attachment", id, &caller.account_id, |a| &a.account_id)
                .await?;
        load_message(&self.db, caller, &row.message_id).await.map_err(|err| match err {
            Error::NotFound { .. } => Error::not_found("attachment", id),
            other => other,
        })?;
        let description = attachment_from_row(row.id, row.filename, row.media_type, row.size_bytes, row.sha256);
        Ok((description, row.message_id, row.data))
    }
}
