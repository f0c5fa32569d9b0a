//! Staff's handled marks on messages and conversations (staff only, each change an event
//! to staff only; marking something as it already is changes nothing), and the event of a
//! conversation a customer's message reopens (`messages::insert` clears the mark in the
//! send's own update of the conversation, by `domain::handling::reopens`).

use sea_orm::ActiveValue::Set;

use super::{
    Store, WriteTx,
    access::{self, ConversationRecord},
    door::{InConversation, OfMessage},
    entities::{conversation, message},
    views,
};
use crate::domain::{
    Caller, Error, View,
    events::{Audience, EventKind, EventPayload, NewEvent},
    messages::Message,
    views::ConversationView,
};

/// The columns of a mark: set to now and the caller when `handled`, cleared otherwise.
fn mark(handled: bool, caller: &Caller, now: i64) -> (Option<i64>, Option<String>) {
    if handled { (Some(now), Some(caller.user_id.clone())) } else { (None, None) }
}

/// Marks a message handled or not (staff only).
pub async fn set_message_handled(store: &Store, caller: &Caller, id: String, handled: bool) -> Result<Message, Error> {
    caller.require_staff("mark messages handled")?;
    store
        .write_in(caller, OfMessage::new(caller, &id), move |tx, caller, (row, record)| {
            Box::pin(async move {
                if row.handle_time.is_some() == handled {
                    return views::assemble_one(tx.conn(), row, &record).await;
                }
                let (handle_time, handler_id) = mark(handled, caller, tx.now);
                let mut active: message::ActiveModel = row.into();
                active.handle_time = Set(handle_time);
                active.handler_id = Set(handler_id);
                let row = access::save(tx.conn(), tx.account_id(), active).await?;
                let message = views::assemble_one(tx.conn(), row, &record).await?;
                tx.emit(NewEvent {
                    kind: EventKind::MessageHandled,
                    conversation_id: Some(message.conversation_id.clone()),
                    audience: Audience::Staff,
                    payload: EventPayload::Message(Box::new(message.clone())),
                });
                Ok(message)
            })
        })
        .await
}

/// Marks a conversation handled or not (staff only): the staff inbox filters on it.
pub async fn set_conversation_handled(
    store: &Store,
    caller: &Caller,
    id: String,
    handled: bool,
) -> Result<ConversationView, Error> {
    caller.require_staff("mark conversations handled")?;
    store
        .write_in(caller, InConversation::new(caller, &id.clone()), move |tx, caller, mut record| {
            Box::pin(async move {
                if record.row.handle_time.is_some() != handled {
                    let (handle_time, handler_id) = mark(handled, caller, tx.now);
                    let mut active: conversation::ActiveModel = record.row.clone().into();
                    active.handle_time = Set(handle_time);
                    active.handler_id = Set(handler_id);
                    record.row = access::save(tx.conn(), tx.account_id(), active).await?;
                    emit_conversation(tx, &record)?;
                }
                Ok(())
            })
        })
        .await?;
    let record = access::load_visible(&store.db, caller, &id).await?;
    views::present_one(&store.db, caller, record, View::Basic).await
}

/// A conversation's handled mark changed (by staff, or reopened by a customer's message):
/// to staff only, with the conversation as staff see it.
pub(super) fn emit_conversation(tx: &mut WriteTx, record: &ConversationRecord) -> Result<(), Error> {
    tx.emit(NewEvent {
        kind: EventKind::ConversationHandled,
        conversation_id: Some(record.row.id.clone()),
        audience: Audience::Staff,
        payload: EventPayload::Conversation(Box::new(record.snapshot(true)?)),
    });
    Ok(())
}
