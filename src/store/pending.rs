//! Waiting messages, as stored: a send with a schedule time is written here (not into the
//! messages table, so that nothing reading a conversation has to leave it out), found by its
//! request id, and read back as a message in state SCHEDULED, FAILED or CANCELED. The use
//! cases over
//! waiting messages (change, cancel, deliver) are `scheduled`'s; this is the part that the
//! send path (`messages`) shares with them.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, SelectStatement},
};

use super::{
    WriteTx,
    access::{self, ConversationRecord},
    body::Body,
    columns,
    entities::{scheduled_attachment, scheduled_message},
    files, views,
};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    ids,
    messages::{Attachment, FileSource, Message, MessageDraft, MessageState, NewAttachment, Rendered, sees_scheduled},
    views::MessageView,
};

/// Stores `new` (rendered, authorized) to be sent at its schedule time in `record`'s
/// conversation, and tells the sender's streams.
pub(super) async fn schedule(
    tx: &mut WriteTx,
    caller: &Caller,
    record: &ConversationRecord,
    new: Rendered,
) -> Result<Message, Error> {
    let direction = new.fields().direction_for(caller);
    // Its files get their ids when stored (`store_attachments`), and keep them when sent.
    let (id, _, mut draft) = new.into_stored();
    let files = std::mem::take(&mut draft.attachments);
    let uploads = files::resolve_forwards(tx.conn(), caller, draft.kind, files).await?;
    let schedule_time =
        draft.schedule_time.ok_or_else(|| Error::Internal("a message was scheduled without a time".into()))?;
    let row = scheduled_message::ActiveModel {
        id: Set(id),
        account_id: Set(caller.account_id.clone()),
        conversation_id: Set(record.row.id.clone()),
        sender_id: Set(caller.user_id.clone()),
        schedule_time: Set(schedule_time),
        state: Set(MessageState::Scheduled.as_str().to_owned()),
        failure_reason: Set(None),
        create_time: Set(tx.now),
        edit_time: Set(None),
        update_time: Set(tx.now),
        ..Default::default()
    };
    let row = Body::of_draft(&draft, direction).into_scheduled(row).insert(tx.conn()).await?;
    let attachments = store_attachments(tx, &row, uploads).await?;
    let message = message_from_row(row, attachments)?;
    emit(tx, EventKind::MessageScheduled, &message);
    Ok(message)
}

/// A waiting message's files, under the ids they keep when it is delivered.
async fn store_attachments(
    tx: &WriteTx,
    row: &scheduled_message::Model,
    uploads: Vec<NewAttachment>,
) -> Result<Vec<Attachment>, Error> {
    let attachments: Vec<Attachment> =
        uploads.iter().map(|upload| upload.describe(ids::new_id(ids::ATTACHMENT))).collect();
    files::hold_named(tx, &attachments).await?;
    for (position, (upload, attachment)) in uploads.into_iter().zip(&attachments).enumerate() {
        scheduled_attachment::ActiveModel {
            id: Set(attachment.id.clone()),
            account_id: Set(row.account_id.clone()),
            scheduled_message_id: Set(row.id.clone()),
            position: Set(position as i64),
            filename: Set(attachment.filename.clone()),
            media_type: Set(attachment.media_type.clone()),
            size_bytes: Set(attachment.size_bytes),
            sha256: Set(attachment.sha256.clone()),
            url: Set(attachment.url.clone()),
        }
        .insert(tx.conn())
        .await?;
        files::keep(tx, upload, attachment).await?;
    }
    Ok(attachments)
}

/// A message sent or scheduled with a request id, with what a retry of the request is
/// checked against.
#[derive(Debug, FromQueryResult)]
pub(super) struct RequestedMessage {
    /// 1 when it is a scheduled message, 0 when sent.
    pub(super) scheduled: i64,
    /// The message's id.
    pub(super) id: String,
    /// Its conversation.
    pub(super) conversation_id: String,
    /// The fingerprint of the request that sent or scheduled it.
    pub(super) request_fingerprint: Option<String>,
}

/// The query for the waiting message `sender` scheduled with this request id, as
/// [`RequestedMessage`] rows.
pub(super) fn by_request(sender: &Caller, request_id: &str) -> SelectStatement {
    scheduled_message::Entity::find()
        .select_only()
        .column_as(Expr::val(1i64), "scheduled")
        .columns([
            scheduled_message::Column::Id,
            scheduled_message::Column::ConversationId,
            scheduled_message::Column::RequestFingerprint,
        ])
        .filter(access::of_account::<scheduled_message::Entity>(&sender.account_id))
        .filter(scheduled_message::Column::SenderId.eq(&sender.user_id))
        .filter(scheduled_message::Column::SendRequestId.eq(request_id))
        .into_query()
}

/// A waiting or failed message as `caller` may see it (its own, or any for staff).
pub(super) async fn view<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<MessageView, Error> {
    let row = load_scheduled(conn, caller, id).await?;
    Ok(MessageView::from(present(conn, row).await?))
}

/// A waiting or failed message with its attachments.
pub(super) async fn present<C: ConnectionTrait>(conn: &C, row: scheduled_message::Model) -> Result<Message, Error> {
    let mut messages = present_all(conn, vec![row]).await?;
    messages.pop().ok_or_else(|| Error::Internal("presenting one scheduled message gave none".into()))
}

/// Waiting or failed messages with their attachments (described, without their bytes).
pub(super) async fn present_all<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<scheduled_message::Model>,
) -> Result<Vec<Message>, Error> {
    let Some(account_id) = rows.first().map(|row| row.account_id.clone()) else { return Ok(Vec::new()) };
    let account_id = account_id.as_str();
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let described: Vec<views::AttachmentColumns> = scheduled_attachment::Entity::find()
        .select_only()
        // Named as a sent message's attachment names its message, to read the same shape.
        .column_as(scheduled_attachment::Column::ScheduledMessageId, "message_id")
        .columns([
            scheduled_attachment::Column::Id,
            scheduled_attachment::Column::Filename,
            scheduled_attachment::Column::MediaType,
            scheduled_attachment::Column::SizeBytes,
            scheduled_attachment::Column::Sha256,
            scheduled_attachment::Column::Url,
        ])
        .filter(access::of_account::<scheduled_attachment::Entity>(account_id))
        .filter(scheduled_attachment::Column::ScheduledMessageId.is_in(ids))
        .order_by_asc(scheduled_attachment::Column::Position)
        .into_model::<views::AttachmentColumns>()
        .all(conn)
        .await?;
    let mut attachments = views::group_attachments(described);
    rows.into_iter()
        .map(|row| {
            let files = attachments.remove(&row.id).unwrap_or_default();
            message_from_row(row, files)
        })
        .collect()
}

/// A waiting message as its delivery sends it: as scheduled, with its files' bytes, under
/// its own id and its files' ids.
pub(super) async fn to_deliver<C: ConnectionTrait>(
    conn: &C,
    row: &scheduled_message::Model,
) -> Result<Rendered, Error> {
    let files = scheduled_attachment::Entity::find()
        .filter(access::of_account::<scheduled_attachment::Entity>(&row.account_id))
        .filter(scheduled_attachment::Column::ScheduledMessageId.eq(&row.id))
        .order_by_asc(scheduled_attachment::Column::Position)
        .all(conn)
        .await?;
    let mut draft = draft_from_row(row)?;
    let mut ids = Vec::with_capacity(files.len());
    for file in files {
        ids.push(file.id);
        // Its bytes are kept already (or it is a link): delivery names them again.
        let source = match file.url {
            Some(url) => FileSource::Link { url, size_bytes: file.size_bytes },
            None => FileSource::Stored { sha256: file.sha256, size_bytes: file.size_bytes },
        };
        draft.attachments.push(NewAttachment { filename: file.filename, media_type: file.media_type, source });
    }
    Ok(Rendered::scheduled(draft, row.id.clone(), ids))
}

/// A waiting message of the caller's account that the caller may see: its own, or any for
/// staff.
pub(super) async fn load_scheduled<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> Result<scheduled_message::Model, Error> {
    let row =
        access::find_in_account::<scheduled_message::Entity, _>(conn, "scheduled message", id, &caller.account_id)
            .await?;
    if sees_scheduled(caller, &row.sender_id) { Ok(row) } else { Err(Error::not_found("scheduled message", id)) }
}

/// A scheduled-message event, to its sender only.
pub(super) fn emit(tx: &mut WriteTx, kind: EventKind, message: &Message) {
    tx.emit(NewEvent {
        kind,
        conversation_id: Some(message.conversation_id.clone()),
        audience: Audience::User(message.sender_id.clone()),
        payload: EventPayload::Message(Box::new(message.clone())),
    });
}

/// The message to send, as it was scheduled (without its files; its direction is in it).
fn draft_from_row(row: &scheduled_message::Model) -> Result<MessageDraft, Error> {
    Ok(Body::take_scheduled(&mut row.clone()).into_draft(None, Some(row.schedule_time))?.0)
}

/// A waiting (or failed) message as a message not yet in its conversation: no sequence,
/// no receipts.
fn message_from_row(mut row: scheduled_message::Model, attachments: Vec<Attachment>) -> Result<Message, Error> {
    let (draft, direction) = Body::take_scheduled(&mut row).into_draft(None, Some(row.schedule_time))?;
    Ok(Message {
        id: row.id,
        account_id: row.account_id,
        conversation_id: row.conversation_id,
        sequence: 0,
        note_sequence: 0,
        sender_id: row.sender_id,
        kind: draft.kind,
        content: draft.content,
        content_type: draft.content_type,
        content_attributes: draft.content_attributes,
        private: draft.private,
        direction,
        attachments,
        metadata: draft.metadata,
        create_time: row.create_time,
        edit_time: row.edit_time,
        delete_time: None,
        read_receipts: Vec::new(),
        template: draft.template,
        envelope: draft.envelope,
        schedule_time: Some(row.schedule_time),
        state: columns::stored("message state", &row.state)?,
        failure_reason: row.failure_reason,
        handled: None,
    })
}
