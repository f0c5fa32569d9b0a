//! Read state: marking messages read (receipts and the reader's counter in one unit), and
//! a reader's unread totals.

use std::collections::HashSet;

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};

use super::{
    Store, WriteTx, access,
    door::InConversation,
    entities::{message, message_read, participant},
    unread,
};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
    unread::{MarkedRead, Reader, UnreadTotals},
};

/// Messages marked read per statement, and listed per event, at most.
const READ_CHUNK: u64 = 500;

/// Marks messages read by the caller: `message_ids`, or every message when empty.
pub async fn mark_read(
    store: &Store,
    caller: &Caller,
    conversation_id: String,
    message_ids: Vec<String>,
) -> Result<MarkedRead, Error> {
    store
        .write_in(caller, InConversation::new(caller, &conversation_id), move |tx, caller, record| {
            Box::pin(async move {
                let before = record.own_row(caller)?.unread_count;
                // The role as it is in this unit, not as it was at authentication: counters
                // follow what the reader may see now.
                let reader = Reader {
                    user_id: &caller.user_id,
                    is_staff: access::is_staff_held(tx.conn(), &caller.account_id, &caller.user_id).await?,
                };
                if !message_ids.is_empty() {
                    check_messages_in(tx.conn(), &caller.account_id, reader, &conversation_id, &message_ids).await?;
                }
                let (public, private) = insert_receipts(tx, reader, &conversation_id, &message_ids).await?;
                let marked = (public.len() + private.len()) as i64;
                if marked == 0 {
                    return Ok(MarkedRead { marked, unread_count: before });
                }
                unread::adjust(tx, &conversation_id, std::slice::from_ref(&caller.user_id), -marked).await?;
                let unread_count = before - marked;
                // Members may learn that public messages were read, never that private notes
                // exist: notes go in a staff-only event, and the public one carries the
                // reader's count of public messages only.
                let public_unread = if reader.is_staff {
                    let public = Reader { is_staff: false, ..reader };
                    unread::recount(tx.conn(), &caller.account_id, &conversation_id, public).await?
                } else {
                    unread_count
                };
                emit_reads(tx, &caller.user_id, &conversation_id, &public, Audience::Conversation, public_unread);
                emit_reads(tx, &caller.user_id, &conversation_id, &private, Audience::Staff, unread_count);
                Ok(MarkedRead { marked, unread_count })
            })
        })
        .await
}

/// Inserts the reader's receipts for its unread messages (those of `only`, when not
/// empty), in bounded chunks: a conversation may hold more unread messages than one
/// statement may bind parameters for. Returns the ids marked, public and private.
async fn insert_receipts(
    tx: &WriteTx,
    reader: Reader<'_>,
    conversation_id: &str,
    only: &[String],
) -> Result<(Vec<String>, Vec<String>), Error> {
    let (mut public, mut private) = (Vec::new(), Vec::new());
    loop {
        let mut find = unread::unread_messages(tx.account_id(), conversation_id, reader);
        if !only.is_empty() {
            find = find.filter(message::Column::Id.is_in(only.to_vec()));
        }
        let chunk: Vec<UnreadColumns> = find
            .select_only()
            .columns([message::Column::Id, message::Column::Private])
            .limit(READ_CHUNK)
            .into_model::<UnreadColumns>()
            .all(tx.conn())
            .await?;
        if chunk.is_empty() {
            return Ok((public, private));
        }
        message_read::Entity::insert_many(chunk.iter().map(|row| message_read::ActiveModel {
            message_id: Set(row.id.clone()),
            user_id: Set(reader.user_id.to_owned()),
            conversation_id: Set(conversation_id.to_owned()),
            account_id: Set(tx.account_id().to_owned()),
            read_time: Set(tx.now),
        }))
        .exec_without_returning(tx.conn())
        .await?;
        for UnreadColumns { id, private: is_private } in chunk {
            if is_private { private.push(id) } else { public.push(id) }
        }
    }
}

/// An unread message as read, by column name.
#[derive(Debug, FromQueryResult)]
struct UnreadColumns {
    /// Its id.
    id: String,
    /// Whether it is a private note.
    private: bool,
}

/// One `message.read` event per chunk of ids.
fn emit_reads(
    tx: &mut WriteTx,
    user_id: &str,
    conversation_id: &str,
    ids: &[String],
    audience: Audience,
    unread_count: i64,
) {
    for ids in ids.chunks(READ_CHUNK as usize) {
        let read_time = tx.now;
        tx.emit(NewEvent {
            kind: EventKind::MessagesRead,
            conversation_id: Some(conversation_id.to_owned()),
            audience: audience.clone(),
            payload: EventPayload::MessagesRead {
                user_id: user_id.to_owned(),
                message_ids: ids.to_vec(),
                read_time,
                unread_count,
            },
        });
    }
}

/// Every id must name a message of the conversation that the reader may see.
async fn check_messages_in<C: ConnectionTrait>(
    conn: &C,
    account_id: &str,
    reader: Reader<'_>,
    conversation_id: &str,
    ids: &[String],
) -> Result<(), Error> {
    let mut find = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(access::of_account::<message::Entity>(account_id))
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::Id.is_in(ids.to_vec()));
    find = find.filter(access::visible_messages(reader.is_staff));
    let found: HashSet<String> = find.into_tuple::<String>().all(conn).await?.into_iter().collect();
    let wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    access::every_found(
        &found,
        &wanted,
        |index| format!("message_ids[{index}]"),
        |id| format!("{id} is not a message of conversation {conversation_id}"),
    )
}

/// The caller's unread messages and conversations with unread messages, archived
/// conversations excluded.
pub async fn totals(store: &Store, caller: &Caller) -> Result<UnreadTotals, Error> {
    let counters: Vec<i64> = participant::Entity::find()
        .select_only()
        .column(participant::Column::UnreadCount)
        .filter(access::of_account::<participant::Entity>(&caller.account_id))
        .filter(participant::Column::UserId.eq(&caller.user_id))
        .filter(participant::Column::Archived.eq(false))
        .filter(participant::Column::UnreadCount.gt(0))
        .into_tuple()
        .all(&store.db)
        .await?;
    Ok(UnreadTotals { messages: counters.iter().sum(), conversations: counters.len() as i64 })
}
