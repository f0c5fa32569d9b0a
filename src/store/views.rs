//! The read model, shared by the aggregates: rows turned into what a caller sees —
//! messages with their attachments and read receipts, conversations with the caller's
//! own state and the newest message it may see, users as much as the caller may see of
//! them, and the expansions of a full view.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

use super::{
    access::{self, ConversationRecord},
    body::Body,
    columns,
    entities::{attachment, message, message_read, participant, user},
};
use crate::domain::{
    Caller, Error, View,
    channels::Envelope,
    conversations::{Mute, ViewerState},
    handling::Handling,
    messages::{Attachment, Message, MessageState, ReadReceipt, sees_notes, visible_to},
    now_micros,
    presence::Presence,
    users::{Profile, User},
    views::{ConversationView, MessageView},
};

pub fn user_from_row(row: user::Model) -> Result<User, Error> {
    Ok(User {
        role: columns::stored("role", &row.role)?,
        id: row.id,
        account_id: row.account_id,
        display_name: row.display_name,
        external_id: row.external_id,
        email: row.email,
        phone: row.phone,
        create_time: row.create_time,
        update_time: row.update_time,
        deactivate_time: row.deactivate_time,
        profile: Profile { avatar_url: row.avatar_url, verified: row.verified },
    })
}

/// The users with these ids in the caller's account, as much of each as the caller may
/// see (members see no one else's contact details).
pub async fn users_by_id<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    mut ids: Vec<String>,
) -> Result<HashMap<String, User>, Error> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = user::Entity::find()
        .filter(user::Column::AccountId.eq(&caller.account_id))
        .filter(user::Column::Id.is_in(ids))
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let user = user_from_row(row)?;
            let user = if caller.is_staff() || user.id == caller.user_id { user } else { user.public_view() };
            Ok((user.id.clone(), user))
        })
        .collect()
}

pub fn attachment_from_row(row: attachment::Model) -> Attachment {
    Attachment {
        id: row.id,
        filename: row.filename,
        media_type: row.media_type,
        size_bytes: row.size_bytes,
        sha256: row.sha256,
        url: row.url,
    }
}

/// Read times by (message, user).
pub type Reads = HashMap<(String, String), i64>;

/// The read state of a message for each participant other than its sender who may see it.
pub fn receipts(
    participants: &[participant::Model],
    row: &message::Model,
    staff: &HashSet<String>,
    reads: &Reads,
) -> Vec<ReadReceipt> {
    participants
        .iter()
        .filter(|p| p.user_id != row.sender_id && visible_to(row.private, staff.contains(&p.user_id)))
        .map(|p| ReadReceipt {
            user_id: p.user_id.clone(),
            read_time: reads.get(&(row.id.clone(), p.user_id.clone())).copied(),
        })
        .collect()
}

/// A message row as a domain message with its attachments and receipts.
pub fn message_from_row(
    mut row: message::Model,
    attachments: Vec<Attachment>,
    read_receipts: Vec<ReadReceipt>,
) -> Result<Message, Error> {
    let delivery = columns::delivery_of(&row)?;
    let (draft, direction) = Body::take_message(&mut row).into_draft(row.external_id, row.schedule_time)?;
    Ok(Message {
        read_receipts,
        attachments,
        template: draft.template,
        envelope: draft.envelope.map(|envelope| Envelope { delivery, ..envelope }),
        handled: Handling::from_columns(row.handle_time, row.handler_id),
        schedule_time: draft.schedule_time,
        state: MessageState::Sent,
        failure_reason: None,
        kind: draft.kind,
        content_type: draft.content_type,
        direction,
        content_attributes: draft.content_attributes,
        metadata: draft.metadata,
        id: row.id,
        account_id: row.account_id,
        conversation_id: row.conversation_id,
        sequence: row.sequence,
        note_sequence: row.note_sequence,
        sender_id: row.sender_id,
        content: draft.content,
        private: draft.private,
        create_time: row.create_time,
        edit_time: row.edit_time,
        delete_time: row.delete_time,
    })
}

/// Message rows as domain messages. `conversations` must hold the conversation of every
/// row (for the receipts).
pub async fn assemble<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<message::Model>,
    conversations: &[ConversationRecord],
) -> Result<Vec<Message>, Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // One account's messages, always.
    let account_id = rows[0].account_id.clone();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut attachments = attachments_of(conn, &account_id, &ids).await?;
    let reads: Reads = message_read::Entity::find()
        .filter(access::of_account::<message_read::Entity>(&account_id))
        .filter(message_read::Column::MessageId.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| ((r.message_id, r.user_id), r.read_time))
        .collect();
    let staff = if rows.iter().any(|r| r.private) {
        let participants = conversations.iter().flat_map(ConversationRecord::participant_ids).collect();
        access::staff_among(conn, &account_id, participants).await?
    } else {
        HashSet::new()
    };
    rows.into_iter()
        .map(|row| {
            let participants = conversations
                .iter()
                .find(|c| c.row.id == row.conversation_id)
                .map_or(&[][..], |c| c.participants.as_slice());
            let receipts = receipts(participants, &row, &staff, &reads);
            let attachments = attachments.remove(&row.id).unwrap_or_default();
            message_from_row(row, attachments, receipts)
        })
        .collect()
}

/// One message row as a domain message.
pub async fn assemble_one<C: ConnectionTrait>(
    conn: &C,
    row: message::Model,
    record: &ConversationRecord,
) -> Result<Message, Error> {
    assemble(conn, vec![row], std::slice::from_ref(record))
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("assembling one message gave none".into()))
}

/// The attachments of these messages (without their bytes), in order, by message.
async fn attachments_of<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    ids: &[String],
) -> Result<HashMap<String, Vec<Attachment>>, Error> {
    let rows: Vec<AttachmentColumns> = attachment::Entity::find()
        .select_only()
        .columns([
            attachment::Column::MessageId,
            attachment::Column::Id,
            attachment::Column::Filename,
            attachment::Column::MediaType,
            attachment::Column::SizeBytes,
            attachment::Column::Sha256,
            attachment::Column::Url,
        ])
        .filter(access::of_account::<attachment::Entity>(account_id))
        .filter(attachment::Column::MessageId.is_in(ids.to_vec()))
        .order_by_asc(attachment::Column::MessageId)
        .order_by_asc(attachment::Column::Position)
        .into_model::<AttachmentColumns>()
        .all(conn)
        .await?;
    Ok(group_attachments(rows))
}

/// An attachment's description as read, by column name (a sent or a waiting message's:
/// the waiting one's message column is read as `message_id`).
#[derive(Debug, FromQueryResult)]
pub(super) struct AttachmentColumns {
    /// The message it belongs to.
    message_id: String,
    /// Its id.
    id: String,
    /// Its file name.
    filename: String,
    /// Its media type.
    media_type: String,
    /// Its size in bytes.
    size_bytes: i64,
    /// Its SHA-256 digest ("" for a link).
    sha256: String,
    /// A link's address.
    url: Option<String>,
}

/// Attachment descriptions, in the order read, by message.
pub fn group_attachments(rows: Vec<AttachmentColumns>) -> HashMap<String, Vec<Attachment>> {
    let mut attachments: HashMap<String, Vec<Attachment>> = HashMap::new();
    for AttachmentColumns { message_id, id, filename, media_type, size_bytes, sha256, url } in rows {
        let attachment = Attachment { id, filename, media_type, size_bytes, sha256, url };
        attachments.entry(message_id).or_default().push(attachment);
    }
    attachments
}

/// Conversations as `caller` sees them: its own state and the newest message it may see;
/// a full view also expands the participants' users.
pub async fn present<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    records: Vec<ConversationRecord>,
    view: View,
) -> Result<Vec<ConversationView>, Error> {
    let last_ids: Vec<String> = records
        .iter()
        .filter_map(|c| {
            if sees_notes(caller.is_staff()) {
                c.row.last_message_id.clone()
            } else {
                c.row.last_public_message_id.clone()
            }
        })
        .collect();
    let last_rows = if last_ids.is_empty() {
        Vec::new()
    } else {
        message::Entity::find()
            .filter(access::of_account::<message::Entity>(&caller.account_id))
            .filter(message::Column::Id.is_in(last_ids))
            .all(conn)
            .await?
    };
    let mut last_by_conversation: HashMap<String, Message> =
        assemble(conn, last_rows, &records).await?.into_iter().map(|m| (m.conversation_id.clone(), m)).collect();
    let participant_ids: Vec<String> = records.iter().flat_map(ConversationRecord::participant_ids).collect();
    let presence = presence_of(conn, &caller.account_id, &participant_ids).await?;
    let users = match view {
        View::Full => users_by_id(conn, caller, participant_ids).await?,
        View::Basic | View::Related => HashMap::new(),
    };
    let now = now_micros();
    records
        .into_iter()
        .map(|record| {
            let viewer = record.participant(&caller.user_id).map(|p| ViewerState {
                label: p.label.clone(),
                unread_count: p.unread_count,
                archived: p.archived,
                mute: Mute::in_force(p.muted, p.mute_expire_time, now),
            });
            let conversation = record.snapshot(caller.is_staff())?;
            let users = conversation
                .participants
                .iter()
                .filter_map(|p| users.get(&p.user_id).map(|u| (p.user_id.clone(), u.clone())))
                .collect();
            let presence = conversation
                .participants
                .iter()
                .filter_map(|p| presence.get(&p.user_id).map(|shown| (p.user_id.clone(), *shown)))
                .collect();
            let last_message = last_by_conversation.remove(&conversation.id).map(|m| m.seen_by(caller));
            Ok(ConversationView { conversation, viewer, last_message, users, presence })
        })
        .collect()
}

/// The presence of these users of the account, by id: one read, whatever the view.
async fn presence_of<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    user_ids: &[String],
) -> Result<HashMap<String, Presence>, Error> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let unique: HashSet<&String> = user_ids.iter().collect();
    let rows: Vec<PresenceColumns> = user::Entity::find()
        .select_only()
        .columns([user::Column::Id, user::Column::Online, user::Column::LastSeenTime])
        .filter(user::Column::AccountId.eq(account_id))
        .filter(user::Column::Id.is_in(unique))
        .into_model::<PresenceColumns>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|row| (row.id, Presence::from_columns(row.online, row.last_seen_time))).collect())
}

/// A user's presence as read, by column name.
#[derive(Debug, FromQueryResult)]
struct PresenceColumns {
    /// The user's id.
    id: String,
    /// Whether it is online.
    online: bool,
    /// When it was last seen, if ever.
    last_seen_time: Option<i64>,
}

/// One conversation as `caller` sees it.
pub async fn present_one<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    record: ConversationRecord,
    view: View,
) -> Result<ConversationView, Error> {
    present(conn, caller, vec![record], view)
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("presenting one conversation gave none".into()))
}

/// Messages of one conversation as `caller` sees them; a full view also expands each
/// sender and the conversation.
pub async fn present_messages<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    rows: Vec<message::Model>,
    record: ConversationRecord,
    view: View,
) -> Result<Vec<MessageView>, Error> {
    present_across(conn, caller, rows, vec![record], view).await
}

/// Messages of any of `records`' conversations as `caller` sees them, in the order of
/// `rows`; a related or full view also expands each sender and conversation, a full one
/// the conversation's participants too: each kind read once for the page, so that the
/// statements do not grow with the page.
pub async fn present_across<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    rows: Vec<message::Model>,
    records: Vec<ConversationRecord>,
    view: View,
) -> Result<Vec<MessageView>, Error> {
    let messages: Vec<Message> = assemble(conn, rows, &records).await?.into_iter().map(|m| m.seen_by(caller)).collect();
    if view == View::Basic {
        return Ok(messages.into_iter().map(MessageView::from).collect());
    }
    let senders = users_by_id(conn, caller, messages.iter().map(|m| m.sender_id.clone()).collect()).await?;
    let conversation_view = if view == View::Full { View::Full } else { View::Basic };
    let conversations: HashMap<String, Box<ConversationView>> = present(conn, caller, records, conversation_view)
        .await?
        .into_iter()
        .map(|shown| (shown.conversation.id.clone(), Box::new(shown)))
        .collect();
    let mut shown = Vec::with_capacity(messages.len());
    for message in messages {
        let conversation = conversations.get(&message.conversation_id).cloned();
        shown.push(MessageView { sender: senders.get(&message.sender_id).cloned(), conversation, message });
    }
    Ok(shown)
}
