//! Read state: read receipts, unread counters, and their recount.
//!
//! A participant's `unread_count` is kept in the transaction of every change that moves it
//! (send, read, delete, join, role change) and must always equal [`recount`]: the messages
//! of the conversation that `domain::messages::counts_for` the participant and that it has
//! no receipt for.

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Store, WriteTx,
    conversations::{load_visible, not_participating, staff_among},
    entities::{message, message_read, participant},
    messages::adjust_unread,
};
use crate::domain::{
    Caller, Error,
    events::{Audience, EventKind, EventPayload, NewEvent},
};

/// Messages marked read per statement, and listed per event, at most.
const READ_CHUNK: u64 = 500;

/// A participant whose stored counter differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadDrift {
    pub conversation_id: String,
    pub user_id: String,
    pub stored: i64,
    pub recounted: i64,
}

/// The messages of a conversation that count as unread for `user_id`.
fn unread_messages(conversation_id: &str, user_id: &str, is_staff: bool) -> sea_orm::Select<message::Entity> {
    let mut find = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::SenderId.ne(user_id))
        .filter(message::Column::DeleteTime.is_null())
        .filter(
            message::Column::Id.not_in_subquery(
                Query::select()
                    .column(message_read::Column::MessageId)
                    .from(message_read::Entity)
                    .and_where(Expr::col(message_read::Column::ConversationId).eq(conversation_id))
                    .and_where(Expr::col(message_read::Column::UserId).eq(user_id))
                    .to_owned(),
            ),
        );
    if !is_staff {
        find = find.filter(message::Column::Private.eq(false));
    }
    find
}

/// Counts, from the messages themselves, what `user_id` has unread in a conversation.
pub(super) async fn recount<C: ConnectionTrait>(
    conn: &C,
    conversation_id: &str,
    user_id: &str,
    is_staff: bool,
) -> Result<i64, Error> {
    Ok(unread_messages(conversation_id, user_id, is_staff).count(conn).await? as i64)
}

/// Recounts every counter of one user (after its role changed what it may see).
pub(super) async fn recount_user(tx: &WriteTx<'_>, user_id: &str) -> Result<(), Error> {
    let is_staff = !staff_among(tx.conn(), vec![user_id.to_owned()]).await?.is_empty();
    let memberships =
        participant::Entity::find().filter(participant::Column::UserId.eq(user_id)).all(tx.conn()).await?;
    for membership in memberships {
        let unread = recount(tx.conn(), &membership.conversation_id, user_id, is_staff).await?;
        if unread != membership.unread_count {
            let mut active: participant::ActiveModel = membership.into();
            active.unread_count = Set(unread);
            sea_orm::ActiveModelTrait::update(active, tx.conn()).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Marks messages read by the caller: `message_ids`, or every message when empty.
    /// Returns how many went from unread to read and the caller's unread count after.
    pub async fn mark_read(
        &self,
        caller: &Caller,
        conversation_id: &str,
        message_ids: &[String],
    ) -> Result<(i64, i64), Error> {
        let mut tx = self.write(caller).await?;
        let loaded = load_visible(tx.conn(), caller, conversation_id).await?;
        let member = loaded.member(&caller.user_id).cloned().ok_or_else(|| not_participating(conversation_id))?;
        // The role as it is in this transaction, not as it was at authentication: counters
        // follow what the reader may see now.
        let is_staff = !staff_among(tx.conn(), vec![caller.user_id.clone()]).await?.is_empty();
        if !message_ids.is_empty() {
            check_messages_in(tx.conn(), is_staff, conversation_id, message_ids).await?;
        }
        let mut public_read = Vec::new();
        let mut private_read = Vec::new();
        // In bounded chunks: a conversation may hold more unread messages than one statement
        // may bind parameters for.
        loop {
            let mut find = unread_messages(conversation_id, &caller.user_id, is_staff);
            if !message_ids.is_empty() {
                find = find.filter(message::Column::Id.is_in(message_ids.to_vec()));
            }
            let chunk: Vec<(String, bool)> = find
                .select_only()
                .columns([message::Column::Id, message::Column::Private])
                .limit(READ_CHUNK)
                .into_tuple()
                .all(tx.conn())
                .await?;
            if chunk.is_empty() {
                break;
            }
            message_read::Entity::insert_many(chunk.iter().map(|(id, _)| message_read::ActiveModel {
                message_id: Set(id.clone()),
                user_id: Set(caller.user_id.clone()),
                conversation_id: Set(conversation_id.to_owned()),
                read_time: Set(tx.now),
            }))
            .exec_without_returning(tx.conn())
            .await?;
            for (id, private) in chunk {
                if private { private_read.push(id) } else { public_read.push(id) }
            }
        }
        let marked = (public_read.len() + private_read.len()) as i64;
        if marked == 0 {
            tx.commit().await?;
            return Ok((0, member.unread_count));
        }
        adjust_unread(&tx, conversation_id, std::slice::from_ref(&caller.user_id), -marked).await?;
        let unread_count = member.unread_count - marked;
        // Members may learn that public messages were read, never that private notes exist:
        // notes go in a staff-only event, and the public one carries the reader's count of
        // public messages only.
        let public_unread = if is_staff {
            unread_messages(conversation_id, &caller.user_id, false).count(tx.conn()).await? as i64
        } else {
            unread_count
        };
        for (ids, staff_only, unread_count) in [(public_read, false, public_unread), (private_read, true, unread_count)]
        {
            for ids in ids.chunks(READ_CHUNK as usize).filter(|ids| !ids.is_empty()) {
                tx.emit(NewEvent {
                    kind: EventKind::MessagesRead,
                    conversation_id: Some(conversation_id.to_owned()),
                    audience: Audience { staff_only, ..Audience::default() },
                    payload: EventPayload::MessagesRead {
                        user_id: caller.user_id.clone(),
                        message_ids: ids.to_vec(),
                        read_time: tx.now,
                        unread_count,
                    },
                });
            }
        }
        tx.commit().await?;
        Ok((marked, unread_count))
    }

    /// The caller's unread messages and conversations with unread messages, archived
    /// conversations excluded.
    pub async fn unread_count(&self, caller: &Caller) -> Result<(i64, i64), Error> {
        let counters: Vec<i64> = participant::Entity::find()
            .select_only()
            .column(participant::Column::UnreadCount)
            .filter(participant::Column::UserId.eq(&caller.user_id))
            .filter(participant::Column::Archived.eq(false))
            .filter(participant::Column::UnreadCount.gt(0))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok((counters.iter().sum(), counters.len() as i64))
    }

    /// Every participant of the account whose stored unread counter differs from a recount
    /// from the messages. Empty when the counters are right, as they always should be.
    pub async fn unread_drift(&self, account_id: &str) -> Result<Vec<UnreadDrift>, Error> {
        let members =
            participant::Entity::find().filter(participant::Column::AccountId.eq(account_id)).all(&self.db).await?;
        let staff: HashSet<String> = staff_among(&self.db, members.iter().map(|m| m.user_id.clone()).collect()).await?;
        let mut drift = Vec::new();
        for member in members {
            let recounted =
                recount(&self.db, &member.conversation_id, &member.user_id, staff.contains(&member.user_id)).await?;
            if recounted != member.unread_count {
                drift.push(UnreadDrift {
                    conversation_id: member.conversation_id,
                    user_id: member.user_id,
                    stored: member.unread_count,
                    recounted,
                });
            }
        }
        Ok(drift)
    }
}

/// Every id must name a message of the conversation that the reader may see.
async fn check_messages_in<C: ConnectionTrait>(
    conn: &C,
    is_staff: bool,
    conversation_id: &str,
    ids: &[String],
) -> Result<(), Error> {
    let mut find = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::Id.is_in(ids.to_vec()));
    if !is_staff {
        find = find.filter(message::Column::Private.eq(false));
    }
    let found: HashSet<String> = find.into_tuple::<String>().all(conn).await?.into_iter().collect();
    let mut violations = crate::domain::error::Violations::new();
    for (index, id) in ids.iter().enumerate() {
        if !found.contains(id) {
            violations.add(
                format!("message_ids[{index}]"),
                format!("{id} is not a message of conversation {conversation_id}"),
            );
        }
    }
    violations.finish()
}
